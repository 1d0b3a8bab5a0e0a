"""push and pull: copy what the other side lacks, in chain order, checked by hashsum."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ih5 import (
    ConflictError,
    IH5MFRecord,
    IntegrityError,
    pack_directory,
    pull,
    push,
    unpack_record,
)
from ih5.store import ObjectStore, open_store
from tests.remote.helpers import make_source, same_tree


def _packed(tmp_path: Path, name: str = "rec") -> tuple[Path, Path]:
    source = make_source(tmp_path / "source", {"a.bin": os.urandom(4000), "b/c.txt": b"c"})
    archive = tmp_path / "archive"
    archive.mkdir()
    pack_directory(source, archive / name)
    return source, archive


def _names(bucket: str) -> list[str]:
    store = open_store(f"{bucket}/p")
    assert isinstance(store, ObjectStore)
    return store.names()


def test_push_then_pull_gives_back_the_record_and_unpack_equals_the_source(
    bucket: str, tmp_path: Path
) -> None:
    source, archive = _packed(tmp_path)
    (source / "b/c.txt").write_bytes(b"changed")
    pack_directory(source, archive / "rec")
    pushed = push(archive / "rec", f"{bucket}/p/rec")
    assert pushed.copied == ("rec.ih5", "rec.ih5mf.json", "rec.p1.ih5", "rec.p1.ih5mf.json")
    pulled = pull(f"{bucket}/p/rec", tmp_path / "copy")
    assert pulled.copied == pushed.copied
    for name in pushed.copied:
        assert (tmp_path / "copy" / name).read_bytes() == (archive / name).read_bytes()
    unpack_record(tmp_path / "copy" / "rec", tmp_path / "restored")
    assert same_tree(source, tmp_path / "restored")


def test_push_and_pull_copy_only_what_the_other_side_lacks(bucket: str, tmp_path: Path) -> None:
    source, archive = _packed(tmp_path)
    push(archive / "rec", f"{bucket}/p/rec")
    pull(f"{bucket}/p/rec", tmp_path / "copy")
    (source / "new.txt").write_bytes(b"new")
    pack_directory(source, f"{bucket}/p/rec")  # the remote record moves on by itself
    again = pull(f"{bucket}/p/rec", tmp_path / "copy")
    assert (again.copied, again.present) == (("rec.p1.ih5", "rec.p1.ih5mf.json"), 1)
    assert push(tmp_path / "copy" / "rec", f"{bucket}/p/rec").copied == ()
    with IH5MFRecord(tmp_path / "copy" / "rec") as rec:
        assert "new.txt" in rec


def test_push_refuses_a_remote_record_with_another_history(bucket: str, tmp_path: Path) -> None:
    _, archive = _packed(tmp_path / "one")
    _, other = _packed(tmp_path / "two")
    push(archive / "rec", f"{bucket}/p/rec")
    before = _names(bucket)
    with pytest.raises(ConflictError, match="different histories"):
        push(other / "rec", f"{bucket}/p/rec")
    assert _names(bucket) == before


def test_pull_refuses_a_container_damaged_on_the_server(bucket: str, tmp_path: Path) -> None:
    _, archive = _packed(tmp_path)
    # Publish a damaged copy of the container under its real name, then pull it.
    raw = bytearray((archive / "rec.ih5").read_bytes())
    raw[-1] ^= 0xFF
    staged = tmp_path / "damaged"
    staged.write_bytes(bytes(raw))
    store = open_store(f"{bucket}/p")
    assert store.publish(staged, "rec.ih5")
    with pytest.raises(IntegrityError, match="nothing was published"):
        pull(f"{bucket}/p/rec", tmp_path / "copy")
    assert os.listdir(tmp_path / "copy") == []
