"""Skeletons: every path with its node type and the containers its state comes from."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ih5.manifest import IH5MFRecord, IH5Skeleton, SkeletonEntry
from tests.helpers.nodes import as_dataset

Expected = dict[str, tuple[str, int, dict[str, int]]]


def entries(skeleton: IH5Skeleton) -> Expected:
    """A skeleton as plain tuples, in its own order."""
    return {
        path: (entry.node_type, entry.patch_index, dict(entry.attrs))
        for path, entry in skeleton.root.items()
    }


def history(tmp_path: Path) -> Path:
    """Three commits covering creation, substitution, deletion and attribute changes."""
    record = tmp_path / "rec"
    with IH5MFRecord(record, "w") as rec:
        rec["a"] = np.arange(3)
        rec["a"].attrs["u"] = "m"
        rec.create_group("g/d").attrs["x"] = 1
        rec["g"].attrs["x"] = 0
        rec["g/c"] = 7
        rec["keep"] = 1.5
        rec.attrs["t"] = "base"
    with IH5MFRecord(record, "r+") as rec:
        del rec["g"]
        rec.create_group("g")  # substitutes the old /g: /g/c, /g/d and /g@x are gone
        rec["g/e"] = np.zeros(2)
        rec["a"].attrs["v"] = 1
        rec["keep"].attrs["w"] = 2
    with IH5MFRecord(record, "r+") as rec:
        rec["a"].attrs["u"] = "cm"
        rec["g"].attrs["y"] = 2
        del rec.attrs["t"]
        rec.attrs["r"] = "root"
        rec.create_group("z")
        as_dataset(rec["keep"]).copy_into_patch()  # the dataset's data now lives in patch 2
        del rec["keep"].attrs["w"]
    return record


HISTORY: Expected = {
    "/": ("group", 0, {"r": 2}),
    "/a": ("dataset", 0, {"u": 2, "v": 1}),
    "/g": ("group", 1, {"y": 2}),
    "/g/e": ("dataset", 1, {}),
    "/keep": ("dataset", 2, {}),
    "/z": ("group", 2, {}),
}


def test_skeleton_from_tree_reflects_creation_substitution_and_attrs(tmp_path: Path) -> None:
    with IH5MFRecord(history(tmp_path)) as rec:
        assert rec.manifest is not None
        assert entries(rec.manifest.skeleton) == HISTORY


def test_skeleton_written_at_commit_equals_a_fresh_readers_skeleton(tmp_path: Path) -> None:
    record = history(tmp_path)
    with IH5MFRecord(record) as rec:
        assert rec.manifest is not None
        # The commit built its skeleton from the writer's in-memory tree; a reader
        # rebuilds the tree from the containers: both must agree.
        assert IH5Skeleton.from_tree(rec.chain.root) == rec.manifest.skeleton


def test_skeleton_of_each_state_matches_its_manifest(tmp_path: Path) -> None:
    record = history(tmp_path)
    for index in range(3):
        with IH5MFRecord(record, at=index) as rec:
            assert rec.manifest is not None
            assert rec.manifest.user_block.patch_index == index
            assert IH5Skeleton.from_tree(rec.chain.root) == rec.manifest.skeleton


def test_skeleton_order_is_root_first_then_depth_first_sorted(tmp_path: Path) -> None:
    # "a-b" sorts before "a/x" as a string, but after the whole subtree of "a" depth-first.
    with IH5MFRecord(tmp_path / "rec", "w") as rec:
        for path in ("b", "a-b/q", "a/y", "a/x/deep", "A"):
            rec.create_group(path)
        rec["a/x/0"] = 0
    with IH5MFRecord(tmp_path / "rec") as rec:
        assert rec.manifest is not None
        assert list(rec.manifest.skeleton) == [
            "/",
            "/A",
            "/a",
            "/a/x",
            "/a/x/0",
            "/a/x/deep",
            "/a/y",
            "/a-b",
            "/a-b/q",
            "/b",
        ]


def test_skeleton_order_survives_the_manifest_file(tmp_path: Path) -> None:
    with IH5MFRecord(tmp_path / "rec", "w") as rec:
        for path in ("b", "a-b", "a/x"):
            rec.create_group(path)
    raw = (tmp_path / "rec.ih5mf.json").read_bytes()
    assert list(json.loads(raw)["skeleton"]) == ["/", "/a", "/a/x", "/a-b", "/b"]


def test_skeleton_attrs_are_sorted_by_name(tmp_path: Path) -> None:
    with IH5MFRecord(tmp_path / "rec", "w") as rec:
        for name in ("b", "C", "a"):
            rec.attrs[name] = 1
    with IH5MFRecord(tmp_path / "rec") as rec:
        assert rec.manifest is not None
        assert list(rec.manifest.skeleton["/"].attrs) == ["C", "a", "b"]


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a dataset value was read")


@contextlib.contextmanager
def refusing_dataset_reads() -> Iterator[None]:
    """Make every way of reading an h5py dataset's values fail inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("__getitem__", "read_direct", "__array__", "__iter__"):
            patch.setattr(h5py.Dataset, name, _refuse)
        yield


def test_skeleton_from_tree_reads_no_dataset_values(tmp_path: Path) -> None:
    with IH5MFRecord(history(tmp_path)) as rec:
        expected = rec.manifest
        with refusing_dataset_reads():
            skeleton = IH5Skeleton.from_tree(rec.chain.root)
        assert expected is not None
        assert skeleton == expected.skeleton


def test_mfrecord_commit_reads_no_dataset_values(tmp_path: Path) -> None:
    record = history(tmp_path)
    with IH5MFRecord(record, "r+") as rec:
        with refusing_dataset_reads():
            rec["a"].attrs["new"] = 3
            rec.create_group("fresh")
            rec.commit_patch()
        assert rec.manifest is not None
        assert entries(rec.manifest.skeleton)["/a"] == ("dataset", 0, {"new": 3, "u": 2, "v": 1})


def test_skeleton_cost_does_not_depend_on_data_size(tmp_path: Path) -> None:
    # 1 TiB of unallocated chunks: reading it, or even a part of it, would take minutes.
    start = time.perf_counter()
    with IH5MFRecord(tmp_path / "rec", "w") as rec:
        rec.create_dataset("huge", shape=(1 << 40,), dtype="u1", chunks=(1 << 16,))
        rec["huge"].attrs["unit"] = "B"
    with IH5MFRecord(tmp_path / "rec") as rec:
        assert rec.manifest is not None
        entry = rec.manifest.skeleton["/huge"]
        assert SkeletonEntry(
            node_type=entry.node_type, patch_index=entry.patch_index, attrs=entry.attrs
        ) == SkeletonEntry(node_type="dataset", patch_index=0, attrs={"unit": 0})
        # A chunked dataset's layout (for stubs) comes from its metadata, not its data.
        layout = rec.manifest.skeleton.layout("/huge")
        assert layout is not None and layout["shape"] == [1 << 40]
    assert time.perf_counter() - start < 10


def test_skeleton_entry_keeps_extra_keys() -> None:
    entry = SkeletonEntry.model_validate(
        {"node_type": "dataset", "patch_index": 0, "attrs": {}, "shape": [3]}
    )
    assert entry.model_dump(mode="json")["shape"] == [3]


@pytest.mark.parametrize(
    "data",
    [
        {"node_type": "link", "patch_index": 0, "attrs": {}},
        {"node_type": "group", "patch_index": "x", "attrs": {}},
        {"node_type": "group", "patch_index": 0},
    ],
)
def test_skeleton_entry_refuses_malformed_data(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SkeletonEntry.model_validate(data)
