"""Later runs of ``pack_directory``: one patch holding exactly what changed, or nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ih5.format._chain
import ih5.fs
import ih5.pack._tree_state
from ih5.pack import PackResult, pack_directory
from tests.helpers.trees import snapshot

from .helpers import (
    Link,
    container_names,
    make_tree,
    npy_bytes,
    patch_paths,
    remove,
    unpacked,
)

BASE = {
    "keep.txt": b"keep me\n",
    "a/one.bin": b"1" * 100,
    "a/two.bin": b"2" * 200,
    "a/sub/three.bin": b"3" * 300,
    "b/four.bin": b"4" * 400,
    "empty": None,
    "data.npy": npy_bytes(np.arange(10)),
    "ln": Link("a/one.bin"),
}

Edit = Callable[[Path], None]


def write(relative: str, data: bytes) -> Edit:
    def edit(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return edit


def mkdir(relative: str) -> Edit:
    return lambda root: (root / relative).mkdir(parents=True)


def delete(relative: str) -> Edit:
    return lambda root: remove(root / relative)


def link(relative: str, target: str) -> Edit:
    return lambda root: os.symlink(target, root / relative)


# name -> (edits, added, changed, removed)
CASES: dict[str, tuple[list[Edit], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "add-file": ([write("a/new.bin", b"new")], ("a/new.bin",), (), ()),
    "add-dir-with-file": ([write("c/d/x.bin", b"x")], ("c", "c/d", "c/d/x.bin"), (), ()),
    "add-empty-dir": ([mkdir("a/sub/void")], ("a/sub/void",), (), ()),
    "change-file": ([write("a/two.bin", b"two")], (), ("a/two.bin",), ()),
    "change-same-size": ([write("a/two.bin", b"Z" * 200)], (), ("a/two.bin",), ()),
    "change-npy": ([write("data.npy", npy_bytes(np.arange(11)))], (), ("data.npy",), ()),
    "remove-file": ([delete("a/two.bin")], (), (), ("a/two.bin",)),
    "remove-dir": ([delete("a/sub")], (), (), ("a/sub", "a/sub/three.bin")),
    "remove-empty-dir": ([delete("empty")], (), (), ("empty",)),
    "file-to-dir": (
        [delete("keep.txt"), write("keep.txt/inner", b"in")],
        ("keep.txt/inner",),
        ("keep.txt",),
        (),
    ),
    "file-to-empty-dir": ([delete("keep.txt"), mkdir("keep.txt")], (), ("keep.txt",), ()),
    "dir-to-file": ([delete("b"), write("b", b"now a file")], (), ("b",), ("b/four.bin",)),
    "file-to-link": (
        [delete("a/two.bin"), link("a/two.bin", "../keep.txt")],
        (),
        ("a/two.bin",),
        (),
    ),
    "link-to-file": ([delete("ln"), write("ln", b"plain")], (), ("ln",), ()),
    "new-link": ([link("a/up", "../keep.txt")], ("a/up",), (), ()),
    "remove-link": ([delete("ln")], (), (), ("ln",)),
    "retarget-link": ([delete("ln"), link("ln", "a/two.bin")], (), ("ln",), ()),
    "mixed": (
        [write("a/one.bin", b"!"), delete("b"), write("z.bin", b"z"), mkdir("empty/e")],
        ("empty/e", "z.bin"),
        ("a/one.bin",),
        ("b", "b/four.bin"),
    ),
}


def first_pack(tmp_path: Path) -> tuple[Path, Path]:
    source = make_tree(tmp_path / "src", BASE)
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    return source, record


def is_within(path: str, paths: set[str]) -> bool:
    """``path`` is one of ``paths`` or an ancestor of one."""
    return any(other == path or other.startswith(path + "/") for other in paths)


@pytest.mark.parametrize("trust_mtime", [False, True])
def test_pack_directory_leaves_an_unchanged_tree_alone(tmp_path: Path, trust_mtime: bool) -> None:
    source, record = first_pack(tmp_path)
    before = sorted(os.listdir(record.parent))
    result = pack_directory(source, record, trust_mtime=trust_mtime)
    assert result.action == "unchanged"
    assert (result.added, result.changed, result.removed, result.written) == ((), (), (), ())
    assert result.patch_index == 0
    assert sorted(os.listdir(record.parent)) == before


@pytest.mark.parametrize("trust_mtime", [False, True])
def test_pack_directory_ignores_a_touch_without_content_change(
    tmp_path: Path, trust_mtime: bool
) -> None:
    source, record = first_pack(tmp_path)
    os.utime(source / "a" / "one.bin", ns=(1, 1))
    assert pack_directory(source, record, trust_mtime=trust_mtime).action == "unchanged"


@pytest.mark.parametrize("case", sorted(CASES))
def test_pack_directory_writes_one_patch_with_exactly_the_changes(
    tmp_path: Path, case: str
) -> None:
    edits, added, changed, removed = CASES[case]
    source, record = first_pack(tmp_path)
    for edit in edits:
        edit(source)
    result = pack_directory(source, record)
    assert (result.action, result.patch_index) == ("patched", 1)
    assert (result.added, result.changed, result.removed) == (added, changed, removed)
    assert sorted(path.name for path in result.written) == ["rec.p1.ih5", "rec.p1.ih5mf.json"]
    assert container_names(record.parent) == {"rec.ih5", "rec.p1.ih5"}
    assert unpacked(record, tmp_path / "back") == snapshot(source)


@pytest.mark.parametrize("case", sorted(CASES))
def test_pack_directory_patch_holds_only_the_changes(tmp_path: Path, case: str) -> None:
    edits, added, changed, removed = CASES[case]
    source, record = first_pack(tmp_path)
    for edit in edits:
        edit(source)
    pack_directory(source, record)
    inside = patch_paths(record.parent / "rec.p1.ih5")
    touched = {*added, *changed, *removed}
    assert all(is_within(path, touched) for path in inside), inside
    written = {path for path, kind in inside.items() if kind == "dataset"}
    new_files = {path for path in (*added, *changed) if (source / path).is_file()}
    new_files |= {path for path in (*added, *changed) if (source / path).is_symlink()}
    assert written == new_files
    deleted = {path for path, kind in inside.items() if kind == "deleted"}
    assert deleted <= set(removed) | set(changed)
    untouched_files = {path for path, content in BASE.items() if content is not None} - touched
    assert not untouched_files & set(inside)


def test_pack_directory_chains_patches_run_after_run(tmp_path: Path) -> None:
    source, record = first_pack(tmp_path)
    results: list[PackResult] = []
    for step in range(3):
        write(f"step{step}.bin", bytes([step]) * 10)(source)
        results.append(pack_directory(source, record))
        assert unpacked(record, tmp_path / f"back{step}") == snapshot(source)
    assert [result.patch_index for result in results] == [1, 2, 3]
    assert [result.added for result in results] == [("step0.bin",), ("step1.bin",), ("step2.bin",)]
    assert container_names(record.parent) == {"rec.ih5", "rec.p1.ih5", "rec.p2.ih5", "rec.p3.ih5"}


def test_pack_directory_removes_a_directory_beside_a_file_named_like_it(tmp_path: Path) -> None:
    # Sorted as text, "n.bin" falls between "n" and "n/a.bin".
    source = make_tree(tmp_path / "src", {"n/a.bin": b"a", "n.bin": b"n", "z.bin": b"z"})
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    remove(source / "n")
    remove(source / "n.bin")
    result = pack_directory(source, record)
    assert set(result.removed) == {"n", "n/a.bin", "n.bin"}
    assert unpacked(record, tmp_path / "back") == snapshot(source)


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the files the source state hashes (packing itself hashes while reading)."""
    calls: list[str] = []
    real = ih5.pack._tree_state._hash_source

    def counting(root: Path, relative: str, *args: Any) -> str:
        calls.append(Path(relative).name)
        return real(root, relative, *args)

    monkeypatch.setattr(ih5.pack._tree_state, "_hash_source", counting)
    return calls


@pytest.mark.parametrize(
    ("trust_mtime", "expected"),
    [
        (False, ["data.npy", "keep.txt", "one.bin", "three.bin", "two.bin", "four.bin"]),
        (True, ["one.bin"]),
    ],
)
def test_pack_directory_hashes_only_touched_files_when_trusting_mtime(
    tmp_path: Path, hash_calls: list[str], trust_mtime: bool, expected: list[str]
) -> None:
    source, record = first_pack(tmp_path)
    target = source / "a" / "one.bin"
    target.write_bytes(b"changed")
    os.utime(target, ns=(10**18, 10**18))
    hash_calls.clear()
    result = pack_directory(source, record, trust_mtime=trust_mtime)
    assert result.changed == ("a/one.bin",)
    assert sorted(hash_calls) == sorted(expected)


@pytest.mark.parametrize(("trust_mtime", "action"), [(False, "patched"), (True, "unchanged")])
def test_pack_directory_trusting_mtime_misses_edits_that_keep_size_and_mtime(
    tmp_path: Path, trust_mtime: bool, action: str
) -> None:
    source, record = first_pack(tmp_path)
    target = source / "a" / "one.bin"
    info = target.stat()
    target.write_bytes(b"X" * info.st_size)
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert pack_directory(source, record, trust_mtime=trust_mtime).action == action


def test_pack_directory_does_not_rehash_committed_containers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small re-pack must not cost the whole record (the manifest is still checked)."""
    source, record = first_pack(tmp_path)
    write("a/one.bin", b"changed")(source)
    hashed: list[str] = []
    real = ih5.fs.hashsum_file

    def counting(path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> str:
        hashed.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ih5.format._chain, "hashsum_file", counting)
    assert pack_directory(source, record, trust_mtime=True).action == "patched"
    assert hashed == []
