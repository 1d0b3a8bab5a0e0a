"""Locked read-modify-write of JSON sidecars: typed errors, and no failure touches the file."""

from __future__ import annotations

import multiprocessing
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ih5.fs._jsonfile as jsonfile
from ih5 import (
    CorruptDocumentError,
    FileLockError,
    Ih5Error,
    UnreadableDocumentError,
    UnserializableDataError,
    atomic_update_json,
    atomic_write_json,
    locked_json,
    read_json,
)
from ih5.fs import lock_path_for, temp_path_for
from ih5.fs._jsonfile import IN_FLIGHT_NS, in_flight_marker
from ih5.fs._lock import held_lock_fd

Document = Any
Updater = Callable[..., Document]


def update_by_function(
    path: Path, update: Callable[[Document], Document], **options: Any
) -> Document:
    """An update through ``atomic_update_json``."""
    return atomic_update_json(path, update, 5.0, **options)


def update_in_block(path: Path, update: Callable[[Document], Document], **options: Any) -> Document:
    """The same update through ``locked_json``, which only allows in-place changes."""
    with locked_json(path, 5.0, **options) as document:
        changed = update(document)
        assert changed is document, "locked_json updates must change the document in place"
    return document


UPDATERS = pytest.mark.parametrize(
    "updater", [update_by_function, update_in_block], ids=["atomic_update_json", "locked_json"]
)


def add_run(document: Document) -> Document:
    document.setdefault("runs", []).append("run-1")
    return document


def must_not_be_called(document: Document) -> Document:
    pytest.fail("the update function ran although the document could not be loaded")


def snapshot(path: Path) -> tuple[bytes, int, int]:
    """The bytes, inode and mtime of a file: a rewrite would change the inode."""
    status = path.stat()
    return path.read_bytes(), status.st_ino, status.st_mtime_ns


def other_files(path: Path) -> list[str]:
    """Files beside ``path`` other than it, its lock file and its in-flight marker."""
    skip = {path.name, lock_path_for(path).name, in_flight_marker(path).name}
    return sorted(p.name for p in path.parent.iterdir() if p.name not in skip)


# --- the happy paths ---------------------------------------------------------


@UPDATERS
def test_update_applies_the_change_to_the_current_document(target: Path, updater: Updater) -> None:
    atomic_write_json(target, {"plate": "P1"})
    updater(target, add_run)
    assert read_json(target) == {"plate": "P1", "runs": ["run-1"]}


@UPDATERS
def test_update_starts_a_missing_file_from_a_copy_of_default_data(
    target: Path, updater: Updater
) -> None:
    default: dict[str, Any] = {"runs": []}
    updater(target, add_run, default_data=default)
    assert read_json(target) == {"runs": ["run-1"]}
    assert default == {"runs": []}


def test_atomic_update_json_passes_none_for_a_missing_file_without_default(target: Path) -> None:
    seen: list[Document] = []

    def replace_document(document: Document) -> Document:
        seen.append(document)
        return {"new": True}

    atomic_update_json(target, replace_document)
    assert seen == [None]
    assert read_json(target) == {"new": True}


def test_atomic_update_json_returns_the_written_document(target: Path) -> None:
    assert atomic_update_json(target, lambda _: {"a": 1}) == {"a": 1}


@UPDATERS
def test_update_leaves_an_unchanged_document_unwritten(target: Path, updater: Updater) -> None:
    atomic_write_json(target, {"a": 1})
    before = snapshot(target)
    updater(target, lambda document: document)
    assert snapshot(target) == before


@UPDATERS
def test_update_keeps_the_mode_of_the_document(target: Path, updater: Updater) -> None:
    atomic_write_json(target, {})
    target.chmod(0o640)
    updater(target, add_run)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


@UPDATERS
def test_update_holds_the_lock_while_updating(
    target: Path, updater: Updater, is_locked: Callable[[Path], bool]
) -> None:
    seen: list[bool] = []

    def probe(document: Document) -> Document:
        seen.append(is_locked(target))
        return document

    updater(target, probe, default_data={})
    assert seen == [True]
    assert not is_locked(target)


# --- failures leave the file exactly as it was ------------------------------


CORRUPT = {
    "empty": b"",
    "truncated": b'{"runs": ["run-1"',
    "trailing-garbage": b'{"runs": []} {}',
    "not-json": b"runs = []\n",
    "invalid-utf8": b'{"plate": "\xff\xfe"}',
    "utf16": '{"runs": []}'.encode("utf-16"),
    "utf8-bom": b'\xef\xbb\xbf{"runs": []}',
}


@UPDATERS
@pytest.mark.parametrize("raw", CORRUPT.values(), ids=CORRUPT.keys())
def test_update_refuses_a_corrupt_document_and_leaves_it_byte_identical(
    target: Path, updater: Updater, raw: bytes
) -> None:
    target.write_bytes(raw)
    before = snapshot(target)
    with pytest.raises(CorruptDocumentError) as caught:
        updater(target, must_not_be_called, default_data={})
    assert isinstance(caught.value, ValueError)
    assert caught.value.path == str(target)
    assert "backup_corrupt=True" in str(caught.value)
    assert snapshot(target) == before
    assert other_files(target) == []


@pytest.mark.parametrize("raw", CORRUPT.values(), ids=CORRUPT.keys())
def test_read_json_refuses_a_corrupt_document(target: Path, raw: bytes) -> None:
    target.write_bytes(raw)
    with pytest.raises(CorruptDocumentError):
        read_json(target)


@UPDATERS
def test_update_with_backup_corrupt_moves_the_document_aside_and_starts_over(
    target: Path, updater: Updater
) -> None:
    target.write_bytes(b'{"runs": [')
    updater(target, add_run, default_data={"runs": []}, backup_corrupt=True)
    [backup] = other_files(target)
    assert re.fullmatch(r"doc\.json\.corrupt-\d{8}T\d{12}Z", backup)
    assert (target.parent / backup).read_bytes() == b'{"runs": ['
    assert read_json(target) == {"runs": ["run-1"]}


def test_read_json_raises_file_not_found_for_a_missing_file(target: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        read_json(target)
    assert not isinstance(caught.value, Ih5Error)


@UPDATERS
@pytest.mark.parametrize("backup_corrupt", [False, True])
def test_update_refuses_a_directory_in_place_of_the_document(
    target: Path, updater: Updater, backup_corrupt: bool
) -> None:
    # Root-proof "unreadable": even root cannot read a directory as a file.
    target.mkdir()
    with pytest.raises(UnreadableDocumentError) as caught:
        updater(target, must_not_be_called, default_data={}, backup_corrupt=backup_corrupt)
    assert isinstance(caught.value, OSError)
    assert caught.value.path == str(target)
    assert target.is_dir()
    assert other_files(target) == []


def _update_unreadable(path: Path, use_block: bool) -> None:
    updater = update_in_block if use_block else update_by_function
    updater(path, must_not_be_called, default_data={}, backup_corrupt=True)


@pytest.mark.parametrize("use_block", [False, True], ids=["atomic_update_json", "locked_json"])
def test_update_refuses_an_unreadable_document_and_leaves_it_untouched(
    world_dir: Path, run_in_child: Callable[..., Any], use_block: bool
) -> None:
    # The update runs in a child without root privileges: root reads any file.
    target = world_dir / "doc.json"
    atomic_write_json(target, {"runs": ["run-0"]})
    lock_path_for(target).touch()
    lock_path_for(target).chmod(0o666)
    target.chmod(0o000)
    before = snapshot(target)
    with pytest.raises(UnreadableDocumentError) as caught:
        run_in_child(_update_unreadable, target, use_block, unprivileged=True)
    assert caught.value.path == str(target)
    assert "check its permissions" in str(caught.value)
    assert snapshot(target) == before
    assert other_files(target) == []


class CustomError(Exception):
    pass


RAISED = {
    "ValueError": ValueError("bad value"),
    "KeyError": KeyError("missing"),
    "custom": CustomError("custom"),
    "ih5-error": CorruptDocumentError("nested sidecar is corrupt", "/elsewhere.json"),
    "KeyboardInterrupt": KeyboardInterrupt(),
}


@UPDATERS
@pytest.mark.parametrize("error", RAISED.values(), ids=RAISED.keys())
def test_update_propagates_an_update_error_unchanged_and_writes_nothing(
    target: Path, updater: Updater, error: BaseException, is_locked: Callable[[Path], bool]
) -> None:
    atomic_write_json(target, {"runs": ["run-0"]})
    before = snapshot(target)
    calls: list[Document] = []

    def failing_update(document: Document) -> Document:
        calls.append(document)
        document["runs"].append("half-done")
        raise error

    with pytest.raises(BaseException) as caught:
        updater(target, failing_update)
    assert caught.value is error
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert len(calls) == 1
    assert snapshot(target) == before
    assert other_files(target) == []
    assert not is_locked(target)


def test_atomic_update_json_refuses_an_update_returning_none(target: Path) -> None:
    atomic_write_json(target, {"runs": []})
    before = snapshot(target)
    with pytest.raises(UnserializableDataError, match="returned None"):
        atomic_update_json(target, lambda document: None)
    assert snapshot(target) == before


def test_atomic_update_json_refuses_none_without_creating_the_file(target: Path) -> None:
    with pytest.raises(UnserializableDataError):
        atomic_update_json(target, lambda document: None)
    assert not target.exists()


@UPDATERS
def test_update_refuses_an_unserialisable_result_and_writes_nothing(
    target: Path, updater: Updater
) -> None:
    atomic_write_json(target, {"runs": []})
    before = snapshot(target)

    def add_nan(document: Document) -> Document:
        document["score"] = float("nan")
        return document

    with pytest.raises(UnserializableDataError):
        updater(target, add_nan)
    assert snapshot(target) == before
    assert other_files(target) == []


# --- stale temp files --------------------------------------------------------


def _exit_at_once() -> None:
    os._exit(0)


def _leave_temp_files(target: Path) -> tuple[Path, Path]:
    """A dead writer's temp file and a live one's."""
    child = multiprocessing.get_context("fork").Process(target=_exit_at_once)
    child.start()
    child.join()
    stale = target.parent / f".doc.json.{child.pid}-0123abcd.ih5tmp"
    stale.write_bytes(b'{"half": ')
    live = temp_path_for(target)
    live.write_bytes(b'{"in progress": ')
    return stale, live


@UPDATERS
def test_update_sweeps_temp_files_of_dead_writers_and_keeps_live_ones(
    target: Path, updater: Updater
) -> None:
    _, live = _leave_temp_files(target)
    in_flight_marker(target).touch()
    updater(target, add_run, default_data={})
    assert other_files(target) == [live.name]


@UPDATERS
def test_update_sweeps_after_a_write_noted_on_the_lock_file_was_interrupted(
    target: Path, updater: Updater
) -> None:
    _, live = _leave_temp_files(target)
    lock = lock_path_for(target)
    lock.touch()
    os.utime(lock, ns=(IN_FLIGHT_NS, IN_FLIGHT_NS))  # a writer killed mid-write
    updater(target, add_run, default_data={})
    assert other_files(target) == [live.name]
    assert lock.stat().st_mtime_ns == IN_FLIGHT_NS  # the live writer's write is still in flight


@UPDATERS
def test_update_notes_its_write_on_the_lock_file_and_clears_the_note_after(
    target: Path, updater: Updater, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_write = vars(jsonfile)["atomic_write_bytes"]

    def write(*args: Any, **options: Any) -> None:
        seen.append(lock_path_for(target).stat().st_mtime_ns)
        real_write(*args, **options)

    monkeypatch.setattr(jsonfile, "atomic_write_bytes", write)
    updater(target, add_run, default_data={})
    assert seen == [IN_FLIGHT_NS]
    assert lock_path_for(target).stat().st_mtime_ns != IN_FLIGHT_NS
    assert not in_flight_marker(target).exists()


@UPDATERS
def test_update_notes_its_write_in_a_marker_file_when_the_lock_file_is_not_its_own(
    target: Path, updater: Updater, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real_write, real_utime = vars(jsonfile)["atomic_write_bytes"], os.utime

    def write(*args: Any, **options: Any) -> None:
        seen.append(in_flight_marker(target).exists())
        real_write(*args, **options)

    def utime(path: Any, *args: Any, **options: Any) -> None:
        if isinstance(path, int):  # the lock file, by its descriptor: another user's
            raise PermissionError(1, "Operation not permitted")
        real_utime(path, *args, **options)

    monkeypatch.setattr(jsonfile, "atomic_write_bytes", write)
    monkeypatch.setattr(os, "utime", utime)
    updater(target, add_run, default_data={})
    assert seen == [True]
    assert not in_flight_marker(target).exists()


@UPDATERS
def test_update_keeps_the_in_flight_note_while_a_temp_file_remains(
    target: Path, updater: Updater
) -> None:
    _leave_temp_files(target)
    in_flight_marker(target).touch()
    updater(target, add_run, default_data={})
    assert in_flight_marker(target).exists()
    assert lock_path_for(target).read_bytes() == b""


@UPDATERS
def test_update_skips_the_directory_scan_when_no_write_was_interrupted(
    target: Path, updater: Updater
) -> None:
    stale, _ = _leave_temp_files(target)
    updater(target, add_run, default_data={})
    assert stale.exists()
    assert not in_flight_marker(target).exists()
    assert lock_path_for(target).read_bytes() == b""


@UPDATERS
def test_update_makes_the_rename_durable_after_releasing_the_lock_and_before_returning(
    target: Path, updater: Updater, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []

    def fsync_directory(directory: object) -> None:
        try:
            held_lock_fd(target)
        except FileLockError:
            calls.append(False)
        else:
            calls.append(True)

    monkeypatch.setattr("ih5.fs._jsonfile.fsync_directory", fsync_directory)
    updater(target, add_run, default_data={})
    assert calls == [False]
