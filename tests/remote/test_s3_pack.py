"""Packing into object storage from the newest manifest alone, and reading it back there."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ih5 import (
    ConflictError,
    IH5MFRecord,
    IH5Record,
    RemoteOptions,
    pack_directory,
    unpack_record,
)
from ih5.store import ObjectStore, open_store
from tests.helpers.nodes import as_dataset
from tests.remote.helpers import make_source, same_tree


def _store(bucket: str) -> ObjectStore:
    store = open_store(f"{bucket}/archive")
    assert isinstance(store, ObjectStore)
    return store


def test_pack_into_s3_then_repack_a_change_and_unpack_equals_the_source(
    bucket: str, tmp_path: Path
) -> None:
    source = make_source(
        tmp_path / "plate",
        {"a.bin": os.urandom(5000), "images/x.npy": b"not really npy", "notes.txt": b"hello"},
    )
    url = f"{bucket}/archive/plate-1"
    first = pack_directory(source, url)
    assert (first.action, first.patch_index, first.url) == ("created", 0, url)

    (source / "notes.txt").write_bytes(b"changed")
    (source / "images/x.npy").unlink()
    (source / "new.bin").write_bytes(os.urandom(100))
    second = pack_directory(source, url)
    assert second.action == "patched"
    assert (second.added, second.changed, second.removed) == (
        ("new.bin",),
        ("notes.txt",),
        ("images/x.npy",),
    )
    assert [path.name for path in second.written] == ["plate-1.p1.ih5", "plate-1.p1.ih5mf.json"]

    restored = tmp_path / "restored"
    unpack_record(url, restored)
    assert same_tree(source, restored)
    with IH5MFRecord(url) as rec:
        assert rec.manifest is not None and rec.manifest.user_block.patch_index == 1
        rec.verify()


def test_a_repack_downloads_no_container_bytes(bucket: str, tmp_path: Path) -> None:
    source = make_source(tmp_path / "plate", {"big.bin": os.urandom(3 << 20)})
    url = f"{bucket}/archive/rec"
    pack_directory(source, url)
    (source / "small.txt").write_bytes(b"x")
    store = _store(bucket)
    manifest_sizes = sum(
        len(store.read_bytes(name)) for name in store.names() if name.endswith("mf.json")
    )
    result = pack_directory(source, url)
    assert result.action == "patched"
    assert result.transfer is not None
    # One listing and the one manifest: far below the 3 MiB container.
    assert result.transfer.bytes_downloaded <= manifest_sizes + 4096


def test_nothing_changed_uploads_nothing(bucket: str, tmp_path: Path) -> None:
    source = make_source(tmp_path / "plate", {"a.txt": b"a"})
    url = f"{bucket}/archive/rec"
    pack_directory(source, url)
    before = _store(bucket).names()
    result = pack_directory(source, url)
    assert result.action == "unchanged"
    assert _store(bucket).names() == before


def test_a_remote_record_reads_its_datasets_lazily(bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    with IH5Record(local / "rec", "w") as rec:
        rec["big"] = np.arange(1 << 20, dtype="f8")  # 8 MiB
    store = _store(bucket)
    for name in sorted(os.listdir(local)):
        staged = tmp_path / name
        staged.write_bytes((local / name).read_bytes())
        assert store.publish(staged, name)
    with IH5Record(f"{bucket}/archive/rec") as rec:
        remote_store = rec.store
        assert isinstance(remote_store, ObjectStore)
        assert as_dataset(rec["big"])[10:12].tolist() == [10.0, 11.0]
        assert remote_store.stats.bytes_downloaded < 3 << 20


def test_a_large_container_is_uploaded_in_parts_with_progress_and_never_over_another(
    bucket: str, tmp_path: Path
) -> None:
    reports: list[tuple[str, int, int]] = []
    options = RemoteOptions(part_size=5 << 20, progress=lambda *args: reports.append(args))
    source = make_source(tmp_path / "plate", {"big.bin": os.urandom(12 << 20)})
    pack_directory(source, f"{bucket}/archive/rec", remote=options)
    sent = [done for name, done, _ in reports if name == "rec.ih5"]
    assert len(sent) >= 3 and sent == sorted(sent)
    restored = tmp_path / "restored"
    unpack_record(f"{bucket}/archive/rec", restored)
    assert same_tree(source, restored)
    store = open_store(f"{bucket}/archive", options)
    assert [name for name in store.names() if name.startswith(".")] == []
    again = tmp_path / "again"
    again.write_bytes(os.urandom(6 << 20))
    assert not store.publish(again, "rec.ih5")  # the conditional multipart copy refuses
    assert [name for name in store.names() if name.startswith(".")] == []


def test_a_stray_manifest_at_the_next_index_stops_a_remote_pack(
    bucket: str, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "plate", {"a.txt": b"a"})
    url = f"{bucket}/archive/rec"
    pack_directory(source, url)
    store = _store(bucket)
    store.upload_bytes("rec.p1.ih5mf.json", b"{}")  # claims patch 1, without its container
    (source / "b.txt").write_bytes(b"b")
    with pytest.raises(ConflictError, match=r"rec\.p1\.ih5mf\.json"):
        pack_directory(source, url)
    assert "rec.p1.ih5" not in store.names()
    assert store.read_bytes("rec.p1.ih5mf.json") == b"{}"
