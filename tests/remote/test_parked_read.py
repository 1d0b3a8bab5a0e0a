"""A remote container whose manifest is only parked (its packer died between the two): a
reader that may write completes it, as a local reader does; every reader reads the record."""

from __future__ import annotations

from pathlib import Path

import pytest

from ih5 import IH5MFRecord, IH5Record, ManifestError, pack_directory
from ih5.store import ObjectStore, open_store
from tests.remote.helpers import make_source

PARKED = ".rec.p1.ih5mf.json.otherhost-4242-0123abcd.staged"


def killed_before_its_manifest(directory: Path, tmp_path: Path) -> dict[str, bytes]:
    """The files of a record whose packer of patch 1 died after publishing its container:
    name -> bytes, the manifest of patch 1 under the packer's parking name only."""
    source = make_source(tmp_path / "src", {"a.txt": b"a"})
    local = tmp_path / "local"
    pack_directory(source, local / "rec")
    (source / "b.txt").write_bytes(b"b")
    pack_directory(source, local / "rec")
    files = {path.name: path.read_bytes() for path in local.iterdir() if path.is_file()}
    files[PARKED] = files.pop("rec.p1.ih5mf.json")
    return files


def upload(store: ObjectStore, tmp_path: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        if name.startswith("."):
            store.upload_bytes(name, data)
            continue
        staged = tmp_path / f"up-{name}"
        staged.write_bytes(data)
        assert store.publish(staged, name)


def test_a_reader_with_credentials_completes_the_parked_manifest(
    bucket: str, tmp_path: Path
) -> None:
    files = killed_before_its_manifest(tmp_path / "local", tmp_path)
    store = open_store(f"{bucket}/p")
    assert isinstance(store, ObjectStore)
    upload(store, tmp_path, files)
    assert "rec.p1.ih5mf.json" not in store.names()
    with IH5MFRecord(f"{bucket}/p/rec") as rec:
        assert rec.manifest.user_block.patch_index == 1
        assert sorted(rec) == ["a.txt", "b.txt"]
    assert store.read_bytes("rec.p1.ih5mf.json") == files[PARKED]
    assert PARKED not in store.names()


def test_a_parked_manifest_that_does_not_match_is_not_published(
    bucket: str, tmp_path: Path
) -> None:
    files = killed_before_its_manifest(tmp_path / "local", tmp_path)
    files[PARKED] = files[PARKED].replace(b'"a.txt"', b'"z.txt"')
    store = open_store(f"{bucket}/p")
    assert isinstance(store, ObjectStore)
    upload(store, tmp_path, files)
    with IH5Record(f"{bucket}/p/rec") as rec:
        assert sorted(rec) == ["a.txt", "b.txt"]
    assert "rec.p1.ih5mf.json" not in store.names()
    with pytest.raises(ManifestError, match=r"rec\.p1\.ih5mf\.json is missing"):
        IH5MFRecord(f"{bucket}/p/rec")


def test_a_read_only_http_reader_reads_the_record_and_names_the_missing_manifest(
    tmp_path: Path, http_docs: tuple[Path, str]
) -> None:
    directory, url = http_docs
    for name, data in killed_before_its_manifest(tmp_path / "local", tmp_path).items():
        (directory / name).write_bytes(data)
    with IH5Record(f"{url}/rec") as rec:
        assert sorted(rec) == ["a.txt", "b.txt"]
    with pytest.raises(ManifestError, match=r"rec\.p1\.ih5mf\.json is missing"):
        IH5MFRecord(f"{url}/rec")
