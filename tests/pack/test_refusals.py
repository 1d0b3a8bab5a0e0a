"""Symlinks inside the tree are kept as links; escaping links and unreadable files are refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import ih5.fs._beneath
import ih5.pack._packer
import ih5.pack._tree_state
from ih5 import PackError
from ih5.pack import pack_directory
from ih5.record import IH5Record
from tests.helpers.trees import snapshot

from .helpers import Link, container_names, make_tree, unpacked

TREE = {"a/file.txt": b"text\n", "a/sub": None, "b/other.bin": b"\x00\x01"}


@pytest.mark.parametrize(
    ("where", "target"),
    [
        ("to-file", "a/file.txt"),
        ("a/to-sibling", "file.txt"),
        ("a/sub/up-and-over", "../../b/other.bin"),
        ("to-dir", "a"),
        ("a/to-self-dir", "."),
        ("dangling", "a/missing"),
    ],
)
def test_pack_directory_keeps_in_tree_symlinks_as_links(
    tmp_path: Path, where: str, target: str
) -> None:
    source = make_tree(tmp_path / "src", {**TREE, where: Link(target)})
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    with IH5Record(record) as rec:
        assert dict(rec[where].attrs) == {"codec": "symlink", "target": target}
    restored = unpacked(record, tmp_path / "back")
    assert restored[where] == ("link", target)
    assert restored == snapshot(source)


ESCAPING = {
    "absolute-outside": "/etc/passwd",
    "absolute-inside": "{source}/a/file.txt",
    "parent": "../../outside.txt",
    "deep-parent": "sub/../../../outside.txt",
    "parent-dir": "../..",
}


def add_escaping_link(source: Path, case: str) -> Path:
    """Put a link leaving ``source`` at ``a/bad-link`` (and a file for it to reach)."""
    (source.parent / "outside.txt").write_bytes(b"secret")
    link = source / "a" / "bad-link"
    os.symlink(ESCAPING[case].format(source=source), link)
    return link


@pytest.mark.parametrize("case", sorted(ESCAPING))
def test_pack_directory_refuses_links_leaving_the_tree(tmp_path: Path, case: str) -> None:
    source = make_tree(tmp_path / "src", TREE)
    link = add_escaping_link(source, case)
    record = tmp_path / "out" / "rec"
    with pytest.raises(PackError, match="bad-link") as caught:
        pack_directory(source, record)
    assert caught.value.path == str(link)
    assert not record.parent.exists()


@pytest.mark.parametrize("case", sorted(ESCAPING))
def test_pack_directory_refuses_a_new_escaping_link_without_writing(
    tmp_path: Path, case: str
) -> None:
    source = make_tree(tmp_path / "src", TREE)
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    before = snapshot(record.parent)
    (source / "a" / "new.txt").write_bytes(b"new")
    add_escaping_link(source, case)
    with pytest.raises(PackError, match="bad-link"):
        pack_directory(source, record)
    assert snapshot(record.parent) == before
    assert container_names(record.parent) == {"rec.ih5"}


def make_unreadable(monkeypatch: pytest.MonkeyPatch, path: Path, how: str) -> None:
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root reads files whatever their mode")
        path.chmod(0)
        return
    real_access = os.access

    def access(target: str | os.PathLike[str], mode: int, **kwargs: Any) -> bool:
        if Path(target) == path and mode & os.R_OK:
            return False
        return real_access(target, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("how", ["chmod", "simulated"])
@pytest.mark.parametrize("first_run", [True, False])
def test_pack_directory_refuses_unreadable_files_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, first_run: bool
) -> None:
    source = make_tree(tmp_path / "src", TREE)
    record = tmp_path / "out" / "rec"
    if not first_run:
        pack_directory(source, record)
    before = snapshot(tmp_path / "out") if not first_run else None
    secret = source / "b" / "secret.bin"
    secret.write_bytes(b"do not read")
    make_unreadable(monkeypatch, secret, how)
    with pytest.raises(PackError, match=r"secret\.bin") as caught:
        pack_directory(source, record)
    assert caught.value.path == str(secret)
    if first_run:
        assert not record.parent.exists()
    else:
        assert snapshot(tmp_path / "out") == before


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_pack_directory_refuses_a_source_that_is_not_a_directory(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "src"
    if kind == "file":
        source.write_bytes(b"x")
    with pytest.raises(PackError, match="not a directory"):
        pack_directory(source, tmp_path / "out" / "rec")
    assert not (tmp_path / "out").exists()


def test_pack_directory_refuses_special_files(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", TREE)
    os.mkfifo(source / "a" / "pipe")
    with pytest.raises(PackError, match="pipe"):
        pack_directory(source, tmp_path / "out" / "rec")
    assert not (tmp_path / "out").exists()


def fail_reading(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make reading ``path`` fail as if its permissions changed after the directory scan."""
    real_open = ih5.fs._beneath.open_file_beneath

    def guarded_open(root_fd: int, relative: str) -> int:
        if path.as_posix().endswith("/" + relative):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(root_fd, relative)

    monkeypatch.setattr(ih5.pack._packer, "open_file_beneath", guarded_open)
    monkeypatch.setattr(ih5.pack._tree_state, "open_file_beneath", guarded_open)


@pytest.mark.parametrize("first_run", [True, False])
def test_pack_directory_names_a_file_that_fails_while_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_run: bool
) -> None:
    source = make_tree(tmp_path / "src", TREE)
    record = tmp_path / "out" / "rec"
    if not first_run:
        pack_directory(source, record)
    secret = source / "b" / "secret.bin"
    secret.write_bytes(b"do not read")
    fail_reading(monkeypatch, secret)
    with pytest.raises(PackError, match=r"secret\.bin.*denied") as caught:
        pack_directory(source, record)
    assert caught.value.path == str(secret)
    assert container_names(record.parent) == (set() if first_run else {"rec.ih5"})
    assert not [name for name in os.listdir(record.parent) if name.endswith(".pending")]
