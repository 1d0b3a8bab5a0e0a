"""A commit's manifest is built from the previous one plus the patch: the same bytes as from
the whole tree, for every kind of change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ih5.manifest import IH5Manifest, IH5MFRecord, IH5Skeleton, manifest_path
from ih5.manifest._fragments import from_manifest_bytes

Change = Callable[[IH5MFRecord], None]


def full_skeleton_json(rec: IH5MFRecord) -> dict[str, object]:
    """The skeleton of the whole resolved tree, built the slow way (pydantic, json)."""
    return IH5Skeleton.from_tree(rec.chain.root).to_json_data()


def reference_bytes(manifest: IH5Manifest) -> bytes:
    """What ``json.dumps(indent=2)`` of the manifest document gives."""
    data = {
        "manifest_uuid": str(manifest.manifest_uuid),
        "user_block": json.loads(manifest.user_block.to_text()),
        "skeleton": manifest.skeleton.to_json_data(),
        "manifest_exts": manifest.manifest_exts,
    }
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def base(path: Path) -> None:
    with IH5MFRecord(path, "w") as rec:
        rec["a/b/ds"] = np.arange(3)
        rec["a/b/ds"].attrs["unit"] = "m"
        rec["a/c"] = 1.0
        rec["a b"] = 2
        rec["a-"] = 3
        rec["z/y/x"] = 4
        rec["a"].attrs["kept"] = 1
        rec.attrs["root"] = "r"


def set_root_attr(rec: IH5MFRecord) -> None:
    rec.attrs["counter"] = 1


def delete_group_attr(rec: IH5MFRecord) -> None:
    del rec["a"].attrs["kept"]


def change_dataset_attr(rec: IH5MFRecord) -> None:
    rec["a/b/ds"].attrs["unit"] = "mm"


def add_dataset_between(rec: IH5MFRecord) -> None:
    rec["a/b/da"] = 5
    rec["a/ba"] = 6


def add_group_with_members(rec: IH5MFRecord) -> None:
    rec["a/b/new/deep/x"] = 7
    rec["a/b/new"].attrs["n"] = 1
    rec["0first"] = 8


def delete_dataset(rec: IH5MFRecord) -> None:
    del rec["a/c"]


def delete_group(rec: IH5MFRecord) -> None:
    del rec["z"]


def replace_dataset(rec: IH5MFRecord) -> None:
    del rec["a/c"]
    rec["a/c"] = np.zeros(2)


def replace_group(rec: IH5MFRecord) -> None:
    del rec["a/b"]
    rec["a/b/other"] = 1


def dataset_becomes_group(rec: IH5MFRecord) -> None:
    del rec["a b"]
    rec["a b/inner"] = 1


CHANGES: list[Change] = [
    set_root_attr,
    delete_group_attr,
    change_dataset_attr,
    add_dataset_between,
    add_group_with_members,
    replace_dataset,
    delete_dataset,
    delete_group,
    dataset_becomes_group,
    replace_group,
]


@pytest.mark.parametrize("change", CHANGES, ids=lambda change: change.__name__)
def test_manifest_after_one_change_equals_the_one_built_from_the_whole_tree(
    tmp_path: Path, change: Change
) -> None:
    base(tmp_path / "rec")
    with IH5MFRecord(tmp_path / "rec", "r+") as rec:  # opening starts the patch
        change(rec)
        rec.commit_patch()
        expected = full_skeleton_json(rec)
        written = manifest_path(rec.containers[-1]).read_bytes()
    manifest = IH5Manifest.from_bytes(written, "written")
    assert manifest.skeleton.to_json_data() == expected
    assert list(manifest.skeleton.root) == list(expected)
    assert written == reference_bytes(manifest)


def test_manifests_of_a_run_of_commits_in_one_handle_equal_the_whole_tree_ones(
    tmp_path: Path,
) -> None:
    base(tmp_path / "rec")
    with IH5MFRecord(tmp_path / "rec", "r+") as rec:
        for number, change in enumerate(CHANGES):
            if number:  # opening started the first patch
                rec.create_patch()
            change(rec)
            rec.commit_patch()
            written = manifest_path(rec.containers[-1]).read_bytes()
            manifest = IH5Manifest.from_bytes(written, "written")
            assert manifest.skeleton.to_json_data() == full_skeleton_json(rec), change.__name__
            assert list(manifest.skeleton.root) == list(full_skeleton_json(rec))
            assert rec.manifest == manifest


def test_entries_split_from_a_manifest_file_rejoin_to_its_bytes(tmp_path: Path) -> None:
    base(tmp_path / "rec")
    with IH5MFRecord(tmp_path / "rec") as rec:
        raw = manifest_path(rec.containers[-1]).read_bytes()
    entries = from_manifest_bytes(raw)
    assert entries is not None
    assert list(entries) == list(IH5Manifest.from_bytes(raw, "m").skeleton.root)
    assert ",\n".join(entries.values()) in raw.decode()


def test_manifest_in_another_layout_is_not_split() -> None:
    """Compact JSON is valid too; its entries are then rebuilt from the tree instead."""
    compact = b'{"skeleton": {"/": {"node_type": "group", "patch_index": 0, "attrs": {}}}}'
    assert from_manifest_bytes(compact) is None
