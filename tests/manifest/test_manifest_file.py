"""The manifest sidecar's bytes and the user block extension that names it (FORMAT.md 5)."""

from __future__ import annotations

import hashlib
import json
import pickle
import uuid
from pathlib import Path

import numpy as np
import pytest

from ih5.errors import ManifestError
from ih5.format import IH5UserBlock, hashsum_container, read_user_block
from ih5.manifest import (
    IH5Manifest,
    IH5MFRecord,
    IH5Skeleton,
    IH5UBExtManifest,
    SkeletonEntry,
    manifest_path,
    without_manifest_ext,
)

from .helpers import MY_EXTS, build_mf_record


@pytest.fixture
def committed(tmp_path: Path) -> tuple[Path, bytes]:
    """The newest container of a two-container MF record and its manifest's bytes."""
    record = build_mf_record(tmp_path)
    container = record.with_name("rec.p1.ih5")
    return container, manifest_path(container).read_bytes()


def small_manifest() -> IH5Manifest:
    skeleton = IH5Skeleton(
        {
            "/": SkeletonEntry(node_type="group", patch_index=0, attrs={"t": 0}),
            "/d": SkeletonEntry(node_type="dataset", patch_index=1, attrs={}),
        }
    )
    return IH5Manifest(
        user_block=IH5UserBlock.create(), skeleton=skeleton, manifest_exts={"e": [1, 2]}
    )


def test_manifest_path_appends_mf_json(tmp_path: Path) -> None:
    assert manifest_path(tmp_path / "rec.p3.ih5") == tmp_path / "rec.p3.ih5mf.json"


def test_manifest_to_bytes_is_two_space_json_with_one_trailing_newline() -> None:
    raw = small_manifest().to_bytes()
    assert raw.endswith(b"}\n")
    assert not raw.endswith(b"\n\n")
    assert raw == (json.dumps(json.loads(raw), indent=2) + "\n").encode("utf-8")


def test_manifest_to_bytes_key_order() -> None:
    data = json.loads(small_manifest().to_bytes())
    assert list(data) == ["manifest_uuid", "user_block", "skeleton", "manifest_exts"]
    assert list(data["user_block"]) == [
        "record_uuid",
        "patch_index",
        "patch_uuid",
        "prev_patch",
        "hdf5_hashsum",
        "ub_exts",
    ]
    assert list(data["skeleton"]["/"]) == ["node_type", "patch_index", "attrs"]


def test_manifest_written_by_commit_is_two_space_json(committed: tuple[Path, bytes]) -> None:
    _, raw = committed
    assert raw.startswith(b'{\n  "manifest_uuid": "')
    assert raw == (json.dumps(json.loads(raw), indent=2) + "\n").encode("utf-8")
    assert list(json.loads(raw)) == ["manifest_uuid", "user_block", "skeleton", "manifest_exts"]


def test_manifest_load_roundtrips_to_bytes(committed: tuple[Path, bytes]) -> None:
    container, raw = committed
    assert IH5Manifest.load(manifest_path(container)).to_bytes() == raw


def test_manifest_save_is_atomic_and_returns_hashsum(tmp_path: Path) -> None:
    manifest = small_manifest()
    target = tmp_path / "x.ih5mf.json"
    target.write_bytes(b"old")
    hashsum = manifest.save(target)
    raw = target.read_bytes()
    assert raw == manifest.to_bytes()
    assert hashsum == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert [path.name for path in tmp_path.iterdir()] == ["x.ih5mf.json"]


def test_manifest_user_block_carries_the_payload_hashsum(committed: tuple[Path, bytes]) -> None:
    container, raw = committed
    embedded = json.loads(raw)["user_block"]
    assert embedded["hdf5_hashsum"] == hashsum_container(container)
    assert embedded["hdf5_hashsum"] == read_user_block(container).hdf5_hashsum


def test_manifest_user_block_is_the_containers_without_manifest_ext(
    committed: tuple[Path, bytes],
) -> None:
    container, raw = committed
    manifest = IH5Manifest.from_bytes(raw, "m")
    assert "ih5mf_v01" not in manifest.user_block.ub_exts
    assert manifest.user_block == without_manifest_ext(read_user_block(container))


def test_container_ub_ext_names_manifest_uuid_and_file_hashsum(
    committed: tuple[Path, bytes],
) -> None:
    container, raw = committed
    ext = read_user_block(container).ub_exts["ih5mf_v01"]
    assert ext == {
        "is_stub_container": False,
        "manifest_uuid": json.loads(raw)["manifest_uuid"],
        "manifest_hashsum": "sha256:" + hashlib.sha256(raw).hexdigest(),
    }


def test_manifest_exts_are_written_verbatim(committed: tuple[Path, bytes]) -> None:
    _, raw = committed
    assert json.loads(raw)["manifest_exts"] == MY_EXTS


def test_ub_ext_get_returns_none_for_plain_user_block() -> None:
    assert IH5UBExtManifest.get(IH5UserBlock.create()) is None


def test_ub_ext_update_in_place_then_get_roundtrips_and_keeps_other_exts() -> None:
    user_block = IH5UserBlock.create().model_copy(update={"ub_exts": {"other": {"a": 1}}})
    before = user_block.model_copy(deep=True)
    ext = IH5UBExtManifest(
        is_stub_container=True, manifest_uuid=uuid.uuid4(), manifest_hashsum="sha256:" + "0" * 64
    )
    updated = ext.update(user_block)
    assert updated is user_block
    assert IH5UBExtManifest.get(user_block) == ext
    assert user_block.ub_exts["other"] == {"a": 1}
    assert without_manifest_ext(user_block) == before


def test_ub_ext_update_leaves_blocks_sharing_the_exts_dict_unchanged() -> None:
    shared = IH5UserBlock.create().model_copy(update={"ub_exts": {"other": {"a": 1}}})
    sibling = shared.model_copy(update={"hdf5_hashsum": None})  # shares ub_exts
    ext = IH5UBExtManifest(
        is_stub_container=False, manifest_uuid=uuid.uuid4(), manifest_hashsum="sha256:" + "0" * 64
    )
    ext.update(shared)
    assert IH5UBExtManifest.get(sibling) is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b'{"manifest_uuid": "not-a-uuid"}', b'{"user_block": {}}'],
    ids=["empty", "truncated", "list", "bad-uuid", "missing-keys"],
)
def test_manifest_load_refuses_invalid_files_naming_them(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "bad.ih5mf.json"
    path.write_bytes(raw)
    with pytest.raises(ManifestError, match=r"bad\.ih5mf\.json") as info:
        IH5Manifest.load(path)
    assert info.value.path == str(path)


def test_manifest_load_missing_file_is_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        IH5Manifest.load(tmp_path / "nope.ih5mf.json")


def test_manifest_error_is_a_value_error_and_pickles(tmp_path: Path) -> None:
    error = ManifestError("broken", tmp_path / "m")
    copy: ManifestError = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, ValueError)
    assert (copy.message, copy.path) == ("broken", str(tmp_path / "m"))


def test_manifest_non_ascii_names_roundtrip(tmp_path: Path) -> None:
    with IH5MFRecord(tmp_path / "rec", "w") as rec:
        rec["grüße"] = np.arange(2)
        rec["grüße"].attrs["µ"] = 1
        rec.commit_patch(manifest_exts={"note": "é"})
    raw = (tmp_path / "rec.ih5mf.json").read_bytes()
    manifest = IH5Manifest.load(tmp_path / "rec.ih5mf.json")
    assert manifest.to_bytes() == raw
    assert manifest.skeleton["/grüße"].attrs == {"µ": 0}
    assert manifest.manifest_exts == {"note": "é"}
