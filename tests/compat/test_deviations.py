"""Where ih5 deliberately differs from metador-core 0.1.1 (METADOR-API.md, "Deliberate deviations").

Each test shows the behaviour a metador-core user meets instead; README.md
("Coming from metador-core") explains why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ih5 import IH5Manifest, IH5MFRecord, IH5Record
from tests.helpers.nodes import as_dataset


def test_names_metador_refuses_are_accepted(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["invalid@path"] = 1
        ds["hello world"] = 2
        ds["абвгд"] = 3
        ds.attrs["invalid/attr"] = 4
        ds.attrs["invalid@attr"] = 5
    with IH5Record(tmp_ds_path) as ds:
        assert sorted(ds) == ["hello world", "invalid@path", "абвгд"]
        assert sorted(ds.attrs) == ["invalid/attr", "invalid@attr"]


def test_open_container_is_hidden_until_committed_but_listed(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds.commit_patch()
        ds.create_patch()
        ds["x"] = 1
        open_one = ds.ih5_files[-1]
        assert open_one.name.startswith(".record.p1.ih5.")
        assert IH5Record.find_files(tmp_ds_path) == ds.ih5_files[:-1]
    assert not open_one.exists()
    assert [path.name for path in IH5Record.find_files(tmp_ds_path)] == [
        "record.ih5",
        "record.p1.ih5",
    ]


def test_exception_inside_with_discards_the_change_set(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["kept"] = 1
    with pytest.raises(RuntimeError), IH5Record(tmp_ds_path, "r+") as ds:
        ds["lost"] = 1
        raise RuntimeError("boom")
    with IH5Record(tmp_ds_path) as ds:
        assert list(ds) == ["kept"]
        assert len(ds.ih5_files) == 1


def test_close_commit_false_keeps_the_patch_for_the_next_writer(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["kept"] = 1
    ds = IH5Record(tmp_ds_path, "r+")
    ds["resumed"] = 2
    ds.close(commit=False)
    with IH5Record(tmp_ds_path) as reader:
        assert "resumed" not in reader
    with IH5Record(tmp_ds_path, "r+") as ds:
        assert as_dataset(ds["resumed"])[()] == 2
    with IH5Record(tmp_ds_path) as reader:
        assert as_dataset(reader["resumed"])[()] == 2


def test_closing_a_patch_without_changes_publishes_nothing(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["x"] = 1
    with IH5Record(tmp_ds_path, "r+") as ds:
        # Opened for writing, only read.
        assert as_dataset(ds["x"])[()] == 1
    with IH5Record(tmp_ds_path, "r+") as ds:
        ds.commit_patch()  # an explicit commit publishes even an empty patch
    assert len(IH5Record.find_files(tmp_ds_path)) == 2


def test_stub_keeps_manifest_exts(tmp_ds_path: Path, tmp_path: Path) -> None:
    with IH5MFRecord(tmp_ds_path, "w") as ds:
        ds["x"] = 1
        ds.commit_patch(manifest_exts={"packer": {"files": 3}})
    manifest = Path(f"{IH5Record.find_files(tmp_ds_path)[0]}mf.json")
    (tmp_path / "stub").mkdir()
    with IH5MFRecord.create_stub(tmp_path / "stub" / "record", manifest) as stub:
        assert stub.manifest.manifest_exts == {"packer": {"files": 3}}


def test_merge_keeps_storage_and_writes_a_fresh_manifest(tmp_ds_path: Path, tmp_path: Path) -> None:
    with IH5MFRecord(tmp_ds_path, "w") as ds:
        ds.create_dataset("data", data=list(range(100)), chunks=(10,), compression="gzip")
        ds.commit_patch()
        ds.create_patch()
        ds["more"] = 1
    (tmp_path / "merged").mkdir()
    with IH5MFRecord(tmp_ds_path) as ds:
        merged = ds.merge_files(tmp_path / "merged" / "record")
        newest = ds.manifest
    with IH5MFRecord(tmp_path / "merged" / "record") as result:
        data = as_dataset(result["data"])
        assert (data.chunks, data.compression) == ((10,), "gzip")
        fresh = IH5Manifest.load(Path(f"{merged}mf.json"))
        assert result.manifest == fresh
        assert fresh.manifest_uuid != newest.manifest_uuid
        assert fresh.skeleton == newest.skeleton
    shutil.rmtree(tmp_path / "merged")
