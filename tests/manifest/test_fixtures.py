"""Manifest-backed records, stubs and merges written by metador-core 0.1.1 read and extend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import pytest

from ih5.format import read_user_block
from ih5.manifest import IH5Manifest, IH5MFRecord, IH5UBExtManifest, check_manifest
from ih5.record import IH5Record
from tests.helpers.nodes import as_dataset

from .conftest import FIXTURES
from .helpers import MY_EXTS, content, copy_patch

MANIFESTS = sorted(path.name for path in FIXTURES.glob("*mf.json")) if FIXTURES.is_dir() else []
MFREC_P1_MANIFEST_UUID = "31150db0-e578-11f1-9804-02fc00000001"


def raw_structure(path: Path) -> dict[str, tuple[str, list[str]]]:
    """Every object of an HDF5 file: kind and attribute names (no values)."""
    found: dict[str, tuple[str, list[str]]] = {}

    def describe(name: str, obj: Any) -> None:
        kind = "dataset" if isinstance(obj, h5py.Dataset) else "group"
        found[name] = (kind, sorted(obj.attrs))

    with h5py.File(path, "r") as file:
        describe("/", file)
        file.visititems(describe)
    return found


def test_fixture_manifests_are_all_listed() -> None:
    assert MANIFESTS == [
        "merged.ih5mf.json",
        "mfrec.ih5mf.json",
        "mfrec.p1.ih5mf.json",
        "stub.ih5mf.json",
        "stub.p2.ih5mf.json",
    ]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_load_parses_fixture_manifest(metador: Path, name: str) -> None:
    manifest = IH5Manifest.load(metador / name)
    assert manifest.skeleton["/"].node_type == "group"
    assert manifest.user_block.hdf5_hashsum is None  # metador-core embeds an unhashed block


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_to_bytes_reproduces_fixture_bytes(metador: Path, name: str) -> None:
    raw = (metador / name).read_bytes()
    assert IH5Manifest.load(metador / name).to_bytes() == raw


@pytest.mark.parametrize("name", MANIFESTS)
def test_check_manifest_accepts_fixture_manifest(metador: Path, name: str) -> None:
    container = metador / name.removesuffix("mf.json")
    manifest = check_manifest(container, read_user_block(container))
    assert manifest == IH5Manifest.load(metador / name)


def test_mfrecord_opens_fixture_mfrec_with_its_manifest(metador: Path) -> None:
    with IH5MFRecord(metador / "mfrec") as rec:
        assert rec.manifest == IH5Manifest.load(metador / "mfrec.p1.ih5mf.json")
        assert rec.manifest_exts == MY_EXTS
        assert list(rec) == ["data", "grp"]
        assert as_dataset(rec["grp/added"])[()] == b"new"


def test_mfrecord_opens_fixture_stub(metador: Path) -> None:
    with IH5MFRecord(metador / "stub") as rec:
        assert [path.name for path in rec.containers] == ["stub.ih5", "stub.p2.ih5"]
        assert list(rec) == ["data", "fromstub", "grp"]
        assert rec.manifest == IH5Manifest.load(metador / "stub.p2.ih5mf.json")


def test_mfrecord_opens_fixture_stub_base_alone(metador: Path) -> None:
    with IH5MFRecord([metador / "stub.ih5"]) as rec:
        assert list(rec) == ["data", "grp"]
        assert rec.manifest == IH5Manifest.load(metador / "stub.ih5mf.json")


@pytest.mark.parametrize("cls", [IH5MFRecord, IH5Record])
def test_fixture_patch_made_on_stub_extends_mfrec(metador: Path, cls: type[IH5Record]) -> None:
    files = [metador / "mfrec.ih5", metador / "mfrec.p1.ih5", metador / "stub.p2.ih5"]
    with cls(files) as rec:
        assert list(rec) == ["data", "fromstub", "grp"]
        assert as_dataset(rec["fromstub"])[()] == b"patched on stub"
        assert as_dataset(rec["data"])[()].tolist() == [1, 2, 3]
        assert rec["data"].attrs["unit"] == "m"


def test_mfrecord_opens_fixture_merged_with_its_manifest(metador: Path) -> None:
    with IH5MFRecord(metador / "merged") as rec:
        assert rec.manifest is not None
        assert str(rec.manifest.manifest_uuid) == MFREC_P1_MANIFEST_UUID
        assert rec.manifest_exts == MY_EXTS
    with IH5Record(metador / "merged") as merged, IH5Record(metador / "mfrec") as source:
        assert content(merged) == content(source)


@pytest.fixture
def our_stub(metador: Path, tmp_path: Path) -> Path:
    """A stub we build from the manifest of ``mfrec.p1.ih5`` alone."""
    (tmp_path / "ours").mkdir()
    with IH5MFRecord.create_stub(
        tmp_path / "ours" / "stub", metador / "mfrec.p1.ih5mf.json"
    ) as stub:
        return stub.ih5_files[0]


def test_create_stub_matches_fixture_stub_structure(metador: Path, our_stub: Path) -> None:
    assert raw_structure(our_stub) == raw_structure(metador / "stub.ih5")


def test_create_stub_matches_fixture_stub_user_block(metador: Path, our_stub: Path) -> None:
    ours, theirs = read_user_block(our_stub), read_user_block(metador / "stub.ih5")
    for key in ("record_uuid", "patch_uuid", "patch_index", "prev_patch"):
        assert getattr(ours, key) == getattr(theirs, key)
    assert ours.prev_patch is None
    ext = IH5UBExtManifest.get(ours)
    assert ext is not None
    assert ext.is_stub_container is True


def test_create_stub_keeps_manifest_exts_that_metador_dropped(
    metador: Path, our_stub: Path
) -> None:
    stub_manifest = json.loads((metador / "stub.ih5mf.json").read_bytes())
    assert stub_manifest["manifest_exts"] == {}  # the old implementation's known defect
    assert IH5Manifest.load(our_stub.with_name("stub.ih5mf.json")).manifest_exts == MY_EXTS


def test_create_stub_skeleton_matches_fixture_stub_manifest(metador: Path, our_stub: Path) -> None:
    ours = IH5Manifest.load(our_stub.with_name("stub.ih5mf.json"))
    theirs = IH5Manifest.load(metador / "stub.ih5mf.json")
    assert ours.skeleton == theirs.skeleton


@pytest.mark.parametrize("stub_name", ["fixture", "ours"])
def test_patch_we_commit_on_a_stub_extends_fixture_mfrec(
    metador: Path, our_stub: Path, stub_name: str
) -> None:
    stub = metador / "stub" if stub_name == "fixture" else our_stub.with_name("stub")
    if stub_name == "fixture":
        for name in ("stub.p2.ih5", "stub.p2.ih5mf.json"):
            (metador / name).unlink()
    with IH5MFRecord(stub, "r+") as rec:
        rec["ours"] = "written by ih5"
        rec["grp/added"].attrs["flag"] = 1
        del rec["grp/sub"]
    patch = stub.with_name("stub.p2.ih5")
    copy_patch(patch, metador / "mfrec")
    with IH5MFRecord(metador / "mfrec") as rec:
        assert rec.containers[-1].name == "mfrec.p2.ih5"
        assert list(rec) == ["data", "grp", "ours"]
        assert list(rec["grp"]) == ["added"]
        assert as_dataset(rec["grp/added"])[()] == b"new"
        assert dict(rec["grp/added"].attrs) == {"flag": 1}
        assert as_dataset(rec["ours"])[()] == b"written by ih5"
