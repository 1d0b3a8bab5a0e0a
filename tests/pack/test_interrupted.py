"""Runs that died halfway (killed, or a failing commit) do not spoil the next run."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

import ih5.store
from ih5.format import read_user_block, write_user_block
from ih5.manifest import IH5MFRecord
from ih5.pack import pack_directory
from tests.helpers.trees import snapshot

from .helpers import container_names, make_tree, unpacked

TREE = {"a/one.bin": b"1" * 100, "a/two.bin": b"2" * 200, "b": None, "top.txt": b"top\n"}


def pending(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".pending")]


def leave_uncommitted(record: Path, mode: str) -> None:
    """Leave an uncommitted container holding junk, as a killed run would."""
    with IH5MFRecord(record, mode) as rec:
        rec.create_group("junk")
        rec.close(commit=False)
    assert pending(record.parent)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src", TREE)


@pytest.mark.parametrize("edited", [False, True])
def test_pack_directory_discards_a_patch_left_by_a_killed_run(
    tmp_path: Path, source: Path, edited: bool
) -> None:
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    leave_uncommitted(record, "r+")
    if edited:
        (source / "a" / "one.bin").write_bytes(b"edited")
    result = pack_directory(source, record)
    assert result.action == ("patched" if edited else "unchanged")
    assert container_names(record.parent) == ({"rec.ih5", "rec.p1.ih5"} if edited else {"rec.ih5"})
    assert not pending(record.parent)
    assert unpacked(record, tmp_path / "back") == snapshot(source)


def test_pack_directory_restarts_a_base_left_by_a_killed_run(tmp_path: Path, source: Path) -> None:
    record = tmp_path / "out" / "rec"
    record.parent.mkdir()
    leave_uncommitted(record, "x")
    assert pack_directory(source, record).action == "created"
    assert unpacked(record, tmp_path / "back") == snapshot(source)


@pytest.mark.parametrize("sealed", [False, True])
def test_pack_directory_after_a_kill_between_sealing_and_publishing_the_base(
    tmp_path: Path, source: Path, sealed: bool
) -> None:
    """Killed after sealing the base and staging its manifest, before publishing either:
    a sealed base is rolled forward (then patched), an unsealed one is started afresh."""
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    dead = f"{socket.gethostname()}-999999999-0123abcd"
    left = record.parent / f".rec.ih5.{dead}.writing"
    os.rename(record.parent / "rec.ih5", left)
    os.rename(record.parent / "rec.ih5mf.json", record.parent / f".rec.ih5mf.json.{dead}.staged")
    if not sealed:
        write_user_block(left, read_user_block(left).model_copy(update={"hdf5_hashsum": None}))
    (source / "new.txt").write_bytes(b"new")
    result = pack_directory(source, record)
    if sealed:
        assert (result.action, result.patch_index) == ("patched", 1)
        assert container_names(record.parent) == {"rec.ih5", "rec.p1.ih5"}
    else:
        assert (result.action, result.patch_index) == ("created", 0)
        assert container_names(record.parent) == {"rec.ih5"}
    assert not [name for name in os.listdir(record.parent) if dead in name]
    assert unpacked(record, tmp_path / "back") == snapshot(source)


def test_pack_directory_creates_the_record_after_a_failed_first_commit(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    record = tmp_path / "out" / "rec"
    with monkeypatch.context() as patched:
        patched.setattr(ih5.store.LocalStore, "publish", disk_full)
        with pytest.raises(OSError, match=r"(?i)no space"):
            pack_directory(source, record)
    assert container_names(record.parent) == set()
    assert not pending(record.parent)
    result = pack_directory(source, record)
    assert (result.action, result.patch_index) == ("created", 0)
    assert unpacked(record, tmp_path / "back") == snapshot(source)


def test_pack_directory_patches_again_after_a_failed_patch_commit(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    (source / "top.txt").write_bytes(b"changed\n")
    with monkeypatch.context() as patched:
        patched.setattr(ih5.store.LocalStore, "publish", disk_full)
        with pytest.raises(OSError, match=r"(?i)no space"):
            pack_directory(source, record)
    assert container_names(record.parent) == {"rec.ih5"}
    result = pack_directory(source, record)
    assert (result.action, result.patch_index, result.changed) == ("patched", 1, ("top.txt",))
    assert unpacked(record, tmp_path / "back") == snapshot(source)
