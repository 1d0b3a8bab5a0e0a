"""metador-core 0.1.1's IH5MFRecord, manifests, skeletons and user blocks, as its users call them.

One test per row of METADOR-API.md ("IH5MFRecord(IH5Record), manifests, skeletons,
user blocks").
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import h5py
import pytest

from ih5 import (
    IH5Manifest,
    IH5MFRecord,
    IH5Record,
    IH5Skeleton,
    IH5UBExtManifest,
    IH5UserBlock,
    ManifestError,
)
from ih5.manifest import SkeletonEntry
from tests.helpers.nodes import as_dataset


def mf_record(path: Path) -> Path:
    """A manifest-backed record with a base and one patch."""
    with IH5MFRecord(path, "w") as ds:
        ds["foo"] = 123
        ds.attrs["title"] = "base"
        ds.commit_patch(manifest_exts={"mine": 1})
        ds.create_patch()
        ds["bar/baz"] = [1, 2]
    return path


def manifest_of(container: Path) -> Path:
    return Path(f"{container}mf.json")


def test_manifest_file_names_the_manifest_to_check(tmp_ds_path: Path, tmp_path: Path) -> None:
    mf_record(tmp_ds_path)
    newest = IH5Record.find_files(tmp_ds_path)[-1]
    elsewhere = tmp_path / "given.json"
    shutil.move(manifest_of(newest), elsewhere)
    with pytest.raises(ValueError):  # the manifest beside the container is gone
        IH5MFRecord(tmp_ds_path)
    with IH5MFRecord(tmp_ds_path, manifest_file=elsewhere) as ds:
        assert ds.manifest == IH5Manifest.load(elsewhere)
    with IH5MFRecord(tmp_ds_path, "r+", manifest_file=elsewhere) as ds:
        ds["new"] = 1  # the commit writes the new patch's manifest beside it
    assert manifest_of(IH5Record.find_files(tmp_ds_path)[-1]).is_file()


def test_manifest_file_that_does_not_match_is_value_error(tmp_ds_path: Path) -> None:
    mf_record(tmp_ds_path)
    base = IH5Record.find_files(tmp_ds_path)[0]
    with pytest.raises(ValueError) as raised:
        IH5MFRecord(tmp_ds_path, manifest_file=manifest_of(base))
    assert isinstance(raised.value, ManifestError)


def test_manifest_is_the_current_manifest(tmp_ds_path: Path) -> None:
    mf_record(tmp_ds_path)
    with IH5MFRecord(tmp_ds_path) as ds:
        newest = ds.ih5_files[-1]
        assert ds.manifest == IH5Manifest.load(manifest_of(newest))
        assert ds.manifest.user_block.patch_uuid == ds.ih5_meta[-1].patch_uuid
        assert ds.manifest.manifest_exts == {"mine": 1}


def test_manifest_before_the_first_commit_is_value_error(tmp_ds_path: Path) -> None:
    with IH5MFRecord(tmp_ds_path, "w") as ds:
        with pytest.raises(ValueError) as raised:
            ds.manifest  # noqa: B018
        assert isinstance(raised.value, ManifestError)
        ds.commit_patch()
        assert ds.manifest.user_block.patch_index == 0


def test_commit_patch_manifest_exts_replaces_the_inherited_ones(tmp_ds_path: Path) -> None:
    mf_record(tmp_ds_path)
    with IH5MFRecord(tmp_ds_path, "r+") as ds:
        assert ds.manifest.manifest_exts == {"mine": 1}
        ds["x"] = 1
        ds.commit_patch()  # inherits
        assert ds.manifest.manifest_exts == {"mine": 1}
        ds.create_patch()
        ds["y"] = 2
        ds.commit_patch(manifest_exts={"other": 2})
        assert ds.manifest.manifest_exts == {"other": 2}


def test_create_stub_returns_the_stub_opened_without_a_patch(
    tmp_ds_path: Path, tmp_path: Path
) -> None:
    mf_record(tmp_ds_path)
    newest = IH5Record.find_files(tmp_ds_path)[-1]
    (tmp_path / "elsewhere").mkdir()
    stub_path = tmp_path / "elsewhere" / "record"
    stub = IH5MFRecord.create_stub(stub_path, manifest_of(newest))
    try:
        assert isinstance(stub, IH5MFRecord)
        assert stub.mode == "r+"
        assert not stub.has_patch
        assert set(stub) == {"foo", "bar"}
        assert len(stub.ih5_files) == 1
        stub.create_patch()
        stub["from-stub"] = 1
        stub.commit_patch()
        patch = stub.ih5_files[-1]
    finally:
        stub.close()
    shutil.copyfile(patch, tmp_ds_path.parent / patch.name)
    shutil.copyfile(manifest_of(patch), tmp_ds_path.parent / manifest_of(patch).name)
    with IH5MFRecord(tmp_ds_path) as real:
        assert as_dataset(real["from-stub"])[()] == 1
        assert as_dataset(real["foo"])[()] == 123


def test_skeleton_for_record_is_the_current_state(tmp_ds_path: Path) -> None:
    mf_record(tmp_ds_path)
    with IH5MFRecord(tmp_ds_path, "r+") as ds:
        assert IH5Skeleton.for_record(ds) == ds.manifest.skeleton
        ds["foo"].attrs["unit"] = "m"
        skeleton = IH5Skeleton.for_record(ds)  # the open patch counts
    assert skeleton["/foo"] == SkeletonEntry(node_type="dataset", patch_index=0, attrs={"unit": 2})
    assert list(skeleton) == ["/", "/bar", "/bar/baz", "/foo"]


def test_skeleton_with_patch_index_sets_every_index(tmp_ds_path: Path) -> None:
    mf_record(tmp_ds_path)
    with IH5MFRecord(tmp_ds_path) as ds:
        skeleton = IH5Skeleton.for_record(ds)
    moved = skeleton.with_patch_index(7)
    assert list(moved) == list(skeleton)
    for path in moved:
        assert moved[path].node_type == skeleton[path].node_type
        assert moved[path].patch_index == 7
        assert set(moved[path].attrs.values()) <= {7}
        assert moved[path].attrs.keys() == skeleton[path].attrs.keys()
    assert skeleton["/foo"].patch_index == 0  # a copy


def test_manifest_from_userblock_bytes_and_save(tmp_ds_path: Path, tmp_path: Path) -> None:
    mf_record(tmp_ds_path)
    with IH5MFRecord(tmp_ds_path) as ds:
        ub = ds.ih5_meta[-1]
        skeleton = IH5Skeleton.for_record(ds)
    manifest = IH5Manifest.from_userblock(ub, skeleton=skeleton, exts={"k": "v"})
    assert IH5UBExtManifest.get(manifest.user_block) is None  # not circular
    assert manifest.user_block.patch_uuid == ub.patch_uuid
    raw = bytes(manifest)
    assert raw.endswith(b"}\n")
    assert json.loads(raw)["manifest_exts"] == {"k": "v"}
    manifest.save(tmp_path / "saved.json")
    assert (tmp_path / "saved.json").read_bytes() == raw
    assert IH5Manifest.load(tmp_path / "saved.json") == manifest
    assert IH5Manifest.parse_file(tmp_path / "saved.json") == manifest  # pydantic 1's name
    assert len(IH5Manifest.from_userblock(ub).skeleton) == 0


def test_ub_ext_manifest_get_and_update_in_place(tmp_ds_path: Path) -> None:
    mf_record(tmp_ds_path)
    newest = IH5Record.find_files(tmp_ds_path)[-1]
    ub = IH5UserBlock.load(newest)
    ext = IH5UBExtManifest.get(ub)
    assert ext is not None and not ext.is_stub_container
    plain = IH5UserBlock.create()
    assert IH5UBExtManifest.get(plain) is None
    ext.update(plain)  # changes plain itself, as in metador-core
    assert IH5UBExtManifest.get(plain) == ext


def test_ub_ext_manifest_update_of_handed_out_blocks_leaves_the_record_alone(
    tmp_ds_path: Path,
) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["x"] = 1
    ext = IH5UBExtManifest(
        is_stub_container=True,
        manifest_uuid=uuid.uuid4(),
        manifest_hashsum="sha256:" + "0" * 64,
    )
    with IH5Record(tmp_ds_path, "r+") as ds:
        ext.update(ds.user_block)
        ext.update(ds.ih5_meta[0])
        ext.update(ds.ih5_meta[-1])
        assert IH5UBExtManifest.get(ds.user_block) is None
        assert all(IH5UBExtManifest.get(ub) is None for ub in ds.ih5_meta)
        ds["y"] = 2
    with IH5Record(tmp_ds_path) as ds:
        assert all(IH5UBExtManifest.get(ub) is None for ub in ds.ih5_meta)


def test_ub_ext_manifest_update_then_save_keeps_the_extension(tmp_path: Path) -> None:
    container = tmp_path / "file.ih5"
    with h5py.File(container, "w", userblock_size=1024):
        pass
    ub = IH5UserBlock.create()
    ub.save(container)
    ext = IH5UBExtManifest(
        is_stub_container=False,
        manifest_uuid=ub.patch_uuid,
        manifest_hashsum="sha256:" + "0" * 64,
    )
    ext.update(ub)
    ub.save(container)
    assert IH5UBExtManifest.get(IH5UserBlock.load(container)) == ext


def test_user_block_create_load_and_save(tmp_path: Path) -> None:
    container = tmp_path / "file.ih5"
    with h5py.File(container, "w", userblock_size=1024):
        pass
    base = IH5UserBlock.create()
    assert (base.patch_index, base.prev_patch) == (0, None)
    patch = IH5UserBlock.create(prev=base)
    assert (patch.patch_index, patch.prev_patch, patch.record_uuid) == (
        1,
        base.patch_uuid,
        base.record_uuid,
    )
    patch.save(container)
    assert IH5UserBlock.load(container) == patch
    assert container.read_bytes()[:8] == b"ih5_v01\n"
    with h5py.File(container, "r") as file:  # still a valid HDF5 file
        assert file.userblock_size == 1024


def test_user_block_save_without_reserved_block_is_value_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w"):
        pass
    with pytest.raises(ValueError):
        IH5UserBlock.create().save(plain)
    with pytest.raises(ValueError):
        IH5UserBlock.load(plain)
