"""Atomic writes: temp file beside the target, fsync, os.replace, fsync of the directory."""

from __future__ import annotations

import array
import errno
import math
import multiprocessing
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ih5 import UnserializableDataError, atomic_write_bytes, atomic_write_json, read_json
from ih5.fs import (
    StagedFile,
    is_temp_name,
    replace_file,
    sweep_stale_temp_files,
    temp_path_for,
)
from tests.helpers.trees import files_of


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test that changes it."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    child.start()
    child.join()
    assert child.pid is not None
    return child.pid


# --- atomic_write_bytes ------------------------------------------------------


def test_atomic_write_bytes_creates_the_file(target: Path) -> None:
    atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"


def test_atomic_write_bytes_replaces_the_file(target: Path) -> None:
    target.write_bytes(b"old contents, longer than the new")
    atomic_write_bytes(target, b"new")
    assert files_of(target.parent) == {"doc.json": b"new"}


@pytest.mark.parametrize(
    "data",
    [bytearray(b"\x01\x02"), memoryview(b"\x01\x02"), memoryview(array.array("H", [0x0201]))],
    ids=["bytearray", "memoryview", "memoryview-of-uint16"],
)
def test_atomic_write_bytes_accepts_bytes_like_data(target: Path, data: Any) -> None:
    atomic_write_bytes(target, data)
    assert target.read_bytes() == bytes(memoryview(data).cast("B"))


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o644), (0o077, 0o600)])
@pytest.mark.usefixtures("umask")
def test_atomic_write_bytes_gives_new_files_0644_under_the_umask(
    target: Path, mask: int, mode: int
) -> None:
    os.umask(mask)
    atomic_write_bytes(target, b"{}")
    assert stat.S_IMODE(target.stat().st_mode) == mode


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664, 0o755, 0o444])
@pytest.mark.usefixtures("umask")
def test_atomic_write_bytes_keeps_the_mode_of_the_file_it_replaces(target: Path, mode: int) -> None:
    os.umask(0o077)
    target.write_bytes(b"old")
    target.chmod(mode)
    atomic_write_bytes(target, b"new")
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_atomic_write_bytes_fsyncs_the_temp_replaces_then_fsyncs_the_directory(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        name = os.readlink(f"/proc/self/fd/{fd}")
        steps.append((f"fsync {kind}", name))
        real_fsync(fd)

    def replace(source: Any, destination: Any) -> None:
        steps.append(("replace", os.fspath(source)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_bytes(target, b"{}")
    monkeypatch.undo()

    [(_, synced), (_, temp), (_, directory)] = steps
    assert [step for step, _ in steps] == ["fsync file", "replace", "fsync directory"]
    assert synced == temp
    assert Path(temp).parent == target.parent
    assert is_temp_name(Path(temp).name)
    assert directory == str(target.parent)


@pytest.mark.parametrize(
    ("call", "failure"),
    [
        ("write", OSError(errno.ENOSPC, "No space left on device")),
        ("fsync", OSError(errno.EIO, "Input/output error")),
        ("fsync", KeyboardInterrupt()),
        ("replace", OSError(errno.EACCES, "Permission denied")),
    ],
    ids=["write-ENOSPC", "fsync-EIO", "fsync-interrupted", "replace-EACCES"],
)
def test_atomic_write_bytes_removes_its_temp_file_on_failure(
    target: Path, monkeypatch: pytest.MonkeyPatch, call: str, failure: BaseException
) -> None:
    target.write_bytes(b"old")

    def fail(*args: Any) -> None:
        raise failure

    monkeypatch.setattr(os, call, fail)
    with pytest.raises(type(failure)):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert files_of(target.parent) == {"doc.json": b"old"}


def test_atomic_write_bytes_removes_its_temp_file_when_data_is_not_bytes(target: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "text is not bytes")  # type: ignore[arg-type]
    assert files_of(target.parent) == {}


# --- atomic_write_json -------------------------------------------------------


def test_atomic_write_json_writes_indented_utf8_with_a_trailing_newline(target: Path) -> None:
    atomic_write_json(target, {"plate": "Zürich", "wells": [1, 2]})
    expected = '{\n  "plate": "Zürich",\n  "wells": [\n    1,\n    2\n  ]\n}\n'
    assert target.read_bytes() == expected.encode("utf-8")


def test_atomic_write_json_round_trips_through_read_json(target: Path) -> None:
    document = {"a": [1, 2.5, None, True], "b": {"c": "\u2603"}, "empty": {}}
    atomic_write_json(target, document)
    assert read_json(target) == document


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


UNSERIALISABLE = {
    "object": {"a": object()},
    "set": {"a": {1, 2}},
    "bytes": {"a": b"raw"},
    "nan": {"a": math.nan},
    "infinity": [math.inf],
    "minus-infinity": -math.inf,
    "tuple-key": {(1, 2): "x"},
    "circular": _circular(),
}


@pytest.mark.parametrize("data", UNSERIALISABLE.values(), ids=UNSERIALISABLE.keys())
def test_atomic_write_json_refuses_unserialisable_data(target: Path, data: Any) -> None:
    target.write_bytes(b'{"kept": true}\n')
    with pytest.raises(UnserializableDataError) as caught:
        atomic_write_json(target, data)
    assert isinstance(caught.value, TypeError)
    assert caught.value.path == str(target)
    assert files_of(target.parent) == {"doc.json": b'{"kept": true}\n'}


def test_atomic_write_json_refuses_bad_data_before_opening_any_file(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    with pytest.raises(UnserializableDataError):
        atomic_write_json(target, {"a": math.nan})
    monkeypatch.undo()
    assert opened == []


# --- temp names and sweeping ------------------------------------------------


def test_temp_path_for_is_a_unique_hidden_sibling_naming_this_process(target: Path) -> None:
    first, second = temp_path_for(target), temp_path_for(target)
    assert first != second
    assert first.parent == target.parent
    assert first.name.startswith(f".doc.json.{os.getpid()}-")
    assert is_temp_name(first.name)


@pytest.mark.parametrize(
    "name",
    [
        "doc.json",
        "doc.json.lock",
        ".doc.json.12-deadbeef.tmp",
        ".doc.json.12-DEADBEEF.ih5tmp",
        ".doc.json.x-deadbeef.ih5tmp",
        "doc.json.12-deadbeef.ih5tmp",
        ".doc.json.12-deadbeef.ih5tmp\n",
    ],
)
def test_is_temp_name_refuses_other_names(name: str) -> None:
    assert not is_temp_name(name)


def test_sweep_stale_temp_files_removes_temp_files_of_dead_writers(target: Path) -> None:
    stale = target.parent / f".doc.json.{dead_pid()}-0123abcd.ih5tmp"
    stale.write_bytes(b"half")
    assert sweep_stale_temp_files(target) == [stale]
    assert not stale.exists()


def test_sweep_stale_temp_files_keeps_temp_files_of_live_writers(target: Path) -> None:
    live = temp_path_for(target)
    live.write_bytes(b"in progress")
    assert sweep_stale_temp_files(target) == []
    assert live.exists()


def test_sweep_stale_temp_files_removes_old_temp_files_even_of_live_pids(target: Path) -> None:
    # A live pid on an hour-old temp file is a reused pid, not the writer.
    old = temp_path_for(target)
    old.write_bytes(b"abandoned")
    an_hour_ago = time.time() - 3601
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert sweep_stale_temp_files(target) == [old]


def test_sweep_stale_temp_files_leaves_other_files_alone(target: Path) -> None:
    pid = dead_pid()
    others = {
        f".other.json.{pid}-0123abcd.ih5tmp": b"another target's temp",
        "doc.json": b"{}",
        "doc.json.lock": b"",
        f"doc.json.{pid}-0123abcd.ih5tmp": b"not hidden, not ours",
    }
    for name, data in others.items():
        (target.parent / name).write_bytes(data)
    assert sweep_stale_temp_files(target) == []
    assert files_of(target.parent) == dict(sorted(others.items()))


def test_replace_file_moves_a_complete_temp_file_over_the_target(target: Path) -> None:
    target.write_bytes(b"old")
    temp = temp_path_for(target)
    temp.write_bytes(b"new")
    replace_file(temp, target)
    assert files_of(target.parent) == {"doc.json": b"new"}


# --- a streamed new file, published whole ------------------------------------------


def test_staged_file_appears_under_its_name_only_when_published(tmp_path: Path) -> None:
    with StagedFile(tmp_path) as staged:
        staged.stream.write(b"streamed")
        staged.seal(0o640, mtime_ns=1_000_000_000)
        assert files_of(tmp_path) == {staged.temp_name: b"streamed"}
        staged.publish("out.bin")
    assert files_of(tmp_path) == {"out.bin": b"streamed"}
    info = (tmp_path / "out.bin").stat()
    assert (stat.S_IMODE(info.st_mode), info.st_mtime_ns) == (0o640, 1_000_000_000)


def test_staged_file_without_replace_refuses_an_existing_name(tmp_path: Path) -> None:
    (tmp_path / "out.bin").write_bytes(b"old")
    with StagedFile(tmp_path) as staged, pytest.raises(FileExistsError):
        staged.stream.write(b"new")
        staged.seal(0o644)
        staged.publish("out.bin", replace=False)
    assert files_of(tmp_path) == {"out.bin": b"old"}


def test_staged_file_left_by_an_error_is_removed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), StagedFile(tmp_path, label="ih5-unpack") as staged:
        assert is_temp_name(staged.temp_name)
        staged.stream.write(b"half")
        raise RuntimeError("the codec failed")
    assert files_of(tmp_path) == {}


def test_staged_file_below_a_directory_descriptor_stays_there(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    fd = os.open(tmp_path / "sub", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with StagedFile(dir_fd=fd) as staged:
            staged.stream.write(b"beneath")
            staged.seal(0o600)
            staged.publish("out.bin")
    finally:
        os.close(fd)
    assert files_of(tmp_path / "sub") == {"out.bin": b"beneath"}
