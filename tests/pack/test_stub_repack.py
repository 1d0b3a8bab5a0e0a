"""Re-packing with only the newest manifest at hand: the patch is written on a stub."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ih5.manifest import IH5MFRecord
from ih5.pack import pack_directory
from tests.helpers.trees import snapshot

from .helpers import make_tree, remove, unpacked

TREE = {
    "a/x.bin": b"x" * 1000,
    "a/y.txt": b"y\n",
    "b/z.bin": b"z" * 10,
    "empty": None,
}


def copy_files(names: list[str], source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(source / name, target / name)


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, Path]:
    """A source tree and its record (base only)."""
    source = make_tree(tmp_path / "src", TREE)
    record = tmp_path / "real" / "rec"
    pack_directory(source, record)
    return source, record


def test_pack_directory_patches_on_a_stub_beside_a_lone_manifest(
    tmp_path: Path, packed: tuple[Path, Path]
) -> None:
    source, record = packed
    remote = tmp_path / "remote"
    copy_files(["rec.ih5mf.json"], record.parent, remote)
    (source / "a" / "x.bin").write_bytes(b"new x")
    remove(source / "b")
    result = pack_directory(source, remote / "rec")
    assert result.action == "patched-on-stub"
    assert (result.changed, result.removed, result.patch_index) == (
        ("a/x.bin",),
        ("b", "b/z.bin"),
        1,
    )
    assert set(result.written) == {remote / "rec.p1.ih5", remote / "rec.p1.ih5mf.json"}
    assert sorted(os.listdir(remote)) == ["rec.ih5mf.json", "rec.p1.ih5", "rec.p1.ih5mf.json"]


def test_pack_directory_stub_patch_applies_to_the_real_record(
    tmp_path: Path, packed: tuple[Path, Path]
) -> None:
    source, record = packed
    remote = tmp_path / "remote"
    copy_files(["rec.ih5mf.json"], record.parent, remote)
    (source / "a" / "new.bin").write_bytes(b"new")
    pack_directory(source, remote / "rec")
    copy_files(["rec.p1.ih5", "rec.p1.ih5mf.json"], remote, record.parent)
    with IH5MFRecord(record) as rec:
        assert rec.user_block.patch_index == 1
    assert unpacked(record, tmp_path / "back") == snapshot(source)


def test_pack_directory_unchanged_tree_on_a_lone_manifest_writes_nothing(
    tmp_path: Path, packed: tuple[Path, Path]
) -> None:
    source, record = packed
    remote = tmp_path / "remote"
    copy_files(["rec.ih5mf.json"], record.parent, remote)
    assert pack_directory(source, remote / "rec").action == "unchanged"
    assert os.listdir(remote) == ["rec.ih5mf.json"]


@pytest.mark.parametrize("fresh_directory", [False, True])
def test_pack_directory_stub_runs_chain(
    tmp_path: Path, packed: tuple[Path, Path], fresh_directory: bool
) -> None:
    """Second run: from the manifest the first stub run wrote (same or a fresh directory)."""
    source, record = packed
    first = tmp_path / "remote1"
    copy_files(["rec.ih5mf.json"], record.parent, first)
    (source / "a" / "y.txt").write_bytes(b"first edit\n")
    pack_directory(source, first / "rec")

    second = tmp_path / "remote2" if fresh_directory else first
    if fresh_directory:
        copy_files(["rec.p1.ih5mf.json"], first, second)
    (source / "c").mkdir()
    (source / "c" / "w.bin").write_bytes(b"second edit")
    result = pack_directory(source, second / "rec")
    assert (result.action, result.patch_index, result.added) == (
        "patched-on-stub",
        2,
        ("c", "c/w.bin"),
    )
    assert not [name for name in os.listdir(second) if name.startswith(".")]

    copy_files(["rec.p1.ih5", "rec.p1.ih5mf.json"], first, record.parent)
    copy_files(["rec.p2.ih5", "rec.p2.ih5mf.json"], second, record.parent)
    assert unpacked(record, tmp_path / "back") == snapshot(source)


def test_pack_directory_continues_the_real_record_after_a_stub_patch(
    tmp_path: Path, packed: tuple[Path, Path]
) -> None:
    source, record = packed
    remote = tmp_path / "remote"
    copy_files(["rec.ih5mf.json"], record.parent, remote)
    (source / "a" / "x.bin").write_bytes(b"via stub")
    pack_directory(source, remote / "rec")
    copy_files(["rec.p1.ih5", "rec.p1.ih5mf.json"], remote, record.parent)
    (source / "a" / "y.txt").unlink()
    result = pack_directory(source, record)
    assert (result.action, result.patch_index, result.removed) == ("patched", 2, ("a/y.txt",))
    assert unpacked(record, tmp_path / "back") == snapshot(source)
