"""Stubs: a base rebuilt from a manifest alone, whose patches apply to the real record."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ih5.errors import ChainError, ManifestError, RecordExistsError, StubError
from ih5.format import read_user_block, write_user_block
from ih5.manifest import IH5Manifest, IH5MFRecord, IH5UBExtManifest, check_manifest
from ih5.record import IH5Dataset, IH5Record
from tests.helpers.nodes import as_dataset
from tests.helpers.trees import files_without_locks

from .helpers import MY_EXTS, build_mf_record, content, copy_patch

Workspace = tuple[Path, Path]
"""(the real record, the stub record) in separate directories."""


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A real MF record, and a stub built in another directory from its newest manifest only."""
    real = build_mf_record(tmp_path / "real")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(tmp_path / "real" / "rec.p1.ih5mf.json", elsewhere / "given.json")
    stub = elsewhere / "stub"
    with IH5MFRecord.create_stub(stub, elsewhere / "given.json") as built:
        assert built.ih5_files == [elsewhere / "stub.ih5"]
    return real, stub


def change_stub(stub: Path) -> Path:
    """Commit a patch on the stub that touches every kind of node; return its container."""
    with IH5MFRecord(stub, "r+") as rec:
        rec["fromstub"] = "patched on stub"
        rec.create_group("newgrp/deep").attrs["a"] = 1
        del rec["grp/sub/value"]  # a placeholder dataset
        del rec["data"]  # a placeholder dataset, replaced by a new one
        rec["data"] = np.arange(3) * 10
        rec["data"].attrs["unit"] = "cm"
        rec["grp/added"].attrs["flag"] = 1  # new attribute on a placeholder dataset
        del rec["grp"].attrs["g"]  # a placeholder attribute
        rec.attrs["title"] = "stub"  # replaces a placeholder attribute
        rec.commit_patch()
        return rec.containers[-1]


EXPECTED: dict[str, Any] = {
    "/": ("group", {"title": "stub"}),
    "data": ("dataset", "i", [0, 10, 20], {"unit": "cm"}),
    "fromstub": ("dataset", "O", "patched on stub", {}),
    "grp": ("group", {}),
    "grp/added": ("dataset", "O", "new", {"flag": 1}),
    "grp/sub": ("group", {"note": "nested"}),
    "newgrp": ("group", {}),
    "newgrp/deep": ("group", {"a": 1}),
}
"""The real record after the stub's patch (placeholders left alone show the real values)."""


# --- building the stub ---------------------------------------------------------------


def test_create_stub_needs_only_the_manifest(workspace: Workspace) -> None:
    _, stub = workspace
    assert sorted(path.name for path in stub.parent.iterdir()) == [
        "given.json",
        "stub.ih5",
        "stub.ih5.lock",
        "stub.ih5mf.json",
    ]


def test_create_stub_user_block_continues_the_real_newest(workspace: Workspace) -> None:
    real, stub = workspace
    real_ub = read_user_block(real.with_name("rec.p1.ih5"))
    stub_ub = read_user_block(stub.with_name("stub.ih5"))
    assert (stub_ub.record_uuid, stub_ub.patch_uuid, stub_ub.patch_index) == (
        real_ub.record_uuid,
        real_ub.patch_uuid,
        1,
    )
    assert stub_ub.prev_patch is None
    ext = IH5UBExtManifest.get(stub_ub)
    assert ext is not None
    assert ext.is_stub_container is True


def test_create_stub_has_the_records_structure_with_placeholders(workspace: Workspace) -> None:
    real, stub = workspace
    skeleton = IH5Manifest.load(real.with_name("rec.p1.ih5mf.json")).skeleton
    found: dict[str, tuple[str, list[str]]] = {}

    def describe(name: str, obj: Any) -> None:
        attrs = {key: obj.attrs[key] for key in obj.attrs}
        assert all(isinstance(value, h5py.Empty) for value in attrs.values())
        if isinstance(obj, h5py.Dataset):
            assert obj.shape is None
            assert obj.dtype == np.dtype("f8")
        kind = "dataset" if isinstance(obj, h5py.Dataset) else "group"
        found["/" + name.lstrip("/")] = (kind, sorted(attrs))

    with h5py.File(stub.with_name("stub.ih5")) as file:
        describe("/", file)
        file.visititems(describe)
    assert found == {
        path: (entry.node_type, sorted(entry.attrs)) for path, entry in skeleton.root.items()
    }


def test_create_stub_keeps_manifest_exts(workspace: Workspace) -> None:
    _, stub = workspace
    with IH5MFRecord(stub) as rec:
        assert rec.manifest is not None
        assert rec.manifest.manifest_exts == MY_EXTS


def test_create_stub_manifest_is_checked_on_open(workspace: Workspace) -> None:
    _, stub = workspace
    container = stub.with_name("stub.ih5")
    assert check_manifest(container, read_user_block(container)) is not None


def test_create_stub_refuses_existing_record(workspace: Workspace) -> None:
    _, stub = workspace
    before = files_without_locks(stub.parent)
    with pytest.raises(RecordExistsError):
        IH5MFRecord.create_stub(stub, stub.with_name("given.json"))
    assert files_without_locks(stub.parent) == before


def test_create_stub_from_missing_manifest_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        IH5MFRecord.create_stub(tmp_path / "stub", tmp_path / "nope.json")
    assert list(tmp_path.iterdir()) == []


# --- placeholders --------------------------------------------------------------------


def read_value(rec: IH5Record) -> object:
    return as_dataset(rec["data"])[()]


def read_array(rec: IH5Record) -> object:
    return np.asarray(rec["data"])


def read_shape(rec: IH5Record) -> object:
    return as_dataset(rec["data"]).shape


def write_value(rec: IH5Record) -> object:
    as_dataset(rec["data"])[()] = 1
    return None


def copy_into_patch(rec: IH5Record) -> object:
    dataset = rec["grp/sub/value"]
    assert isinstance(dataset, IH5Dataset)
    return dataset.copy_into_patch()


def copy_elsewhere(rec: IH5Record) -> object:
    rec.copy("grp/sub/value", "grp/copied")
    return None


def read_attr(rec: IH5Record) -> object:
    return rec["data"].attrs["unit"]


def read_root_attr(rec: IH5Record) -> object:
    return rec.attrs["title"]


PLACEHOLDER_ACCESS: list[Callable[[IH5Record], object]] = [
    read_value,
    read_array,
    read_shape,
    write_value,
    copy_into_patch,
    copy_elsewhere,
    read_attr,
    read_root_attr,
]


@pytest.mark.parametrize("access", PLACEHOLDER_ACCESS, ids=lambda f: f.__name__)
def test_stub_placeholder_data_access_raises_stub_error(
    workspace: Workspace, access: Callable[[IH5Record], object]
) -> None:
    _, stub = workspace
    with IH5MFRecord(stub, "r+") as rec:
        with pytest.raises(StubError, match="placeholder"):
            access(rec)
        assert "grp/copied" not in rec
        rec.discard_patch()


def test_stub_placeholder_can_be_replaced_and_deleted(workspace: Workspace) -> None:
    _, stub = workspace
    with IH5MFRecord(stub, "r+") as rec:
        del rec["data"]
        rec["data"] = [5, 6]
        del rec["grp/sub/value"]
        rec["grp"].attrs["g"] = "replaced"
        del rec["grp/sub"].attrs["note"]
        assert as_dataset(rec["data"])[()].tolist() == [5, 6]
        assert rec["grp"].attrs["g"] == "replaced"
        assert list(rec["grp/sub"]) == []
        assert list(rec["grp/sub"].attrs) == []


def test_stub_patch_data_is_readable_on_the_stub(workspace: Workspace) -> None:
    _, stub = workspace
    change_stub(stub)
    with IH5MFRecord(stub) as rec:
        assert as_dataset(rec["data"])[()].tolist() == [0, 10, 20]
        assert rec["grp/added"].attrs["flag"] == 1
        with pytest.raises(StubError):
            as_dataset(rec["grp/added"])[()]


# --- applying a stub's patch to the real record ----------------------------------------


@pytest.mark.parametrize("cls", [IH5MFRecord, IH5Record])
def test_stub_patch_opens_as_next_state_of_real_record(
    workspace: Workspace, cls: type[IH5Record]
) -> None:
    real, stub = workspace
    copy_patch(change_stub(stub), real)
    with cls(real) as rec:
        assert [path.name for path in rec.containers] == ["rec.ih5", "rec.p1.ih5", "rec.p2.ih5"]
        assert content(rec) == EXPECTED


def test_stub_patch_manifest_is_checked_in_real_record(workspace: Workspace) -> None:
    real, stub = workspace
    patch = change_stub(stub)
    copy_patch(patch, real)
    with IH5MFRecord(real) as rec:
        assert rec.manifest == IH5Manifest.load(patch.with_name("stub.p2.ih5mf.json"))
        assert rec.manifest_exts == MY_EXTS


def test_real_record_continues_after_stub_patch(workspace: Workspace) -> None:
    real, stub = workspace
    copy_patch(change_stub(stub), real)
    with IH5MFRecord(real, "r+") as rec:
        rec["grp/sub/value"] = as_dataset(rec["data"])[()] + 1
    with IH5MFRecord(real) as rec:
        assert as_dataset(rec["grp/sub/value"])[()].tolist() == [1, 11, 21]
        assert rec.containers[-1].name == "rec.p3.ih5"


def test_stub_patch_without_real_predecessor_is_refused(workspace: Workspace) -> None:
    real, stub = workspace
    (real.parent / "rec.p1.ih5").unlink()
    copy_patch(change_stub(stub), real)
    with pytest.raises(ChainError):
        IH5Record(real)


# --- what a stub may not do ----------------------------------------------------------


def test_stub_chain_merge_raises_stub_error(workspace: Workspace) -> None:
    _, stub = workspace
    change_stub(stub)
    before = files_without_locks(stub.parent)
    with IH5MFRecord(stub) as rec, pytest.raises(StubError):
        rec.merge_files(stub.with_name("merged.ih5"))
    assert files_without_locks(stub.parent) == before


def test_stub_after_first_container_is_refused(workspace: Workspace) -> None:
    real, stub = workspace
    container = stub.with_name("stub.ih5")
    # Relink the stub behind the real base, as if it were patch 1 of the real chain.
    base = read_user_block(real.with_name("rec.ih5"))
    write_user_block(
        container, read_user_block(container).model_copy(update={"prev_patch": base.patch_uuid})
    )
    with pytest.raises(ChainError, match="stub"):
        IH5Record([real.with_name("rec.ih5"), container])


def test_real_record_merge_after_stub_patch_writes_checked_manifest(
    workspace: Workspace,
) -> None:
    real, stub = workspace
    copy_patch(change_stub(stub), real)
    target = real.with_name("merged.ih5")
    with IH5MFRecord(real) as rec:
        rec.merge_files(target)
    manifest = check_manifest(target, read_user_block(target))
    assert manifest is not None
    assert manifest.manifest_exts == MY_EXTS
    with IH5MFRecord([target]) as merged:
        assert content(merged) == EXPECTED


def test_repr_of_a_stub_placeholder_names_it(tmp_path: Path) -> None:
    with IH5MFRecord(tmp_path / "real", "w") as rec:
        rec["data"] = [1, 2, 3]
    (tmp_path / "stub").mkdir()
    IH5MFRecord.create_stub(tmp_path / "stub" / "real", tmp_path / "real.ih5mf.json")
    with IH5MFRecord(tmp_path / "stub" / "real") as rec:
        assert repr(rec["data"]) == '<IH5 dataset "/data": stub placeholder>'
