"""One writer per record: the writer lock across processes and within one, and fork conflicts."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ih5.errors import ConflictError, RecordExistsError, RecordLockedError
from ih5.format import discover_containers
from ih5.record import IH5Record
from tests.helpers.trees import files_without_locks

from .helpers import untouched

FORK = multiprocessing.get_context("fork")
CHILD_TIMEOUT = 30.0


def build(directory: Path, patches: int = 1) -> Path:
    """A record ``directory/rec`` with a base and ``patches`` patches."""
    path = directory / "rec"
    with IH5Record(path, "w") as rec:
        rec["data"] = np.arange(4)
    for index in range(1, patches + 1):
        with IH5Record(path, "r+") as rec:
            rec.attrs["index"] = index
    return path


class Child:
    """A forked process running ``target``; ``result()`` returns its value or re-raises."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self._receive, send = FORK.Pipe(duplex=False)

        def main() -> None:
            try:
                outcome: tuple[str, Any] = ("ok", target())
            except BaseException as exc:
                outcome = ("error", exc)
            send.send(outcome)

        self._process = FORK.Process(target=main, daemon=True)
        self._process.start()

    def result(self) -> Any:
        try:
            if not self._receive.poll(CHILD_TIMEOUT):
                raise TimeoutError(f"child did not answer within {CHILD_TIMEOUT} s")
            kind, value = self._receive.recv()
        finally:
            self.stop()
        if kind == "error":
            raise value
        return value

    def stop(self) -> None:
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def timed_open(path: Path, mode: str, timeout: float) -> Callable[[], tuple[Any, float]]:
    """A child task: write a patch; return the error (or None) and the seconds it took."""

    def task() -> tuple[Any, float]:
        start = time.monotonic()
        error = None
        try:
            with IH5Record(path, mode, lock_timeout=timeout) as rec:
                rec.attrs["writer"] = os.getpid()
        except RecordLockedError as exc:
            error = exc
        return error, time.monotonic() - start

    return task


# --- the writer lock ------------------------------------------------------


@pytest.mark.parametrize("mode", ["r+", "a", "w"])
def test_lock_second_writer_in_same_process_times_out(tmp_path: Path, mode: str) -> None:
    path = build(tmp_path)
    with IH5Record(path, "r+") as first:
        before = files_without_locks(tmp_path)
        start = time.monotonic()
        with pytest.raises(RecordLockedError) as caught:
            IH5Record(path, mode, lock_timeout=0.3)
        waited = time.monotonic() - start
        assert files_without_locks(tmp_path) == before
        assert untouched(first)
    assert isinstance(caught.value, TimeoutError)
    assert waited >= 0.3
    with IH5Record(path, mode, lock_timeout=0) as second:
        assert second.mode == "r+"  # whatever mode opened it for writing


def test_lock_writer_in_other_thread_proceeds_once_released(tmp_path: Path) -> None:
    path = build(tmp_path)
    outcome: list[Any] = []
    trying, opened = threading.Event(), threading.Event()

    def write() -> None:
        trying.set()
        try:
            outcome.append(timed_open(path, "r+", timeout=20)())
        except BaseException as exc:
            outcome.append(exc)
        opened.set()

    with IH5Record(path, "r+") as first:
        thread = threading.Thread(target=write)
        thread.start()
        first.attrs["writer"] = "first"
        assert trying.wait(CHILD_TIMEOUT)
        assert not opened.wait(0.3), "the second writer got in while the first held the lock"
    thread.join(CHILD_TIMEOUT)
    [(error, _)] = outcome
    assert error is None
    with IH5Record(path) as rec:
        assert rec.user_block.patch_index == 3


# Children are forked while the parent has no HDF5 file open for writing: a forked
# HDF5 library that reopens a file its parent holds open shares (and may write) the
# parent's stale state of that file.


@pytest.mark.parametrize("mode", ["r+", "a", "w"])
def test_lock_second_writer_in_other_process_times_out(tmp_path: Path, mode: str) -> None:
    path = build(tmp_path)
    before = files_without_locks(tmp_path)
    with IH5Record(path, "r+") as first:
        first.discard_patch()  # fork with no HDF5 file open for writing (see above)
        error, waited = Child(timed_open(path, mode, timeout=0.5)).result()
    assert files_without_locks(tmp_path) == before
    assert isinstance(error, RecordLockedError)
    assert error.path is not None
    assert error.path.endswith("rec.ih5")
    assert waited >= 0.45


def test_lock_waiting_writer_proceeds_once_released(tmp_path: Path) -> None:
    path = build(tmp_path)
    trying, opened = FORK.Event(), FORK.Event()
    open_when_free = timed_open(path, "r+", timeout=20)

    def write() -> tuple[Any, float]:
        trying.set()
        result = open_when_free()
        opened.set()
        return result

    with IH5Record(path, "r+") as first:
        first.discard_patch()  # fork with no HDF5 file open for writing (see above)
        child = Child(write)
        first.create_patch()
        first.attrs["writer"] = "first"
        assert trying.wait(CHILD_TIMEOUT)
        assert not opened.wait(0.3), "the waiting writer got in while the first held the lock"
    error, _ = child.result()
    assert error is None
    with IH5Record(path) as rec:
        assert rec.user_block.patch_index == 3
        assert rec.attrs["writer"] != "first"


def test_lock_released_when_writer_process_dies(tmp_path: Path) -> None:
    path = build(tmp_path)

    def die_holding_lock() -> None:
        rec = IH5Record(path, "r+")
        assert rec.has_patch
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(EOFError):
        Child(die_holding_lock).result()
    with IH5Record(path, "r+", lock_timeout=5) as rec:
        assert untouched(rec), "a dead writer's half-written patch is never resumed"


def test_lock_released_after_failed_open(tmp_path: Path) -> None:
    path = build(tmp_path)
    with pytest.raises(RecordExistsError):
        IH5Record(path, "w-")
    with IH5Record(path, "r+", lock_timeout=0) as rec:
        assert rec.mode == "r+"


@pytest.mark.parametrize("mode", ["r+", "a"])
def test_lock_reader_not_blocked_by_writer(tmp_path: Path, mode: str) -> None:
    path = build(tmp_path)
    go = FORK.Event()

    def read() -> int:
        go.wait(CHILD_TIMEOUT)
        with IH5Record(path, "r") as rec:
            return int(rec.attrs["index"])

    with IH5Record(path, mode) as writer:
        writer.discard_patch()  # fork with no HDF5 file open for writing (see above)
        child = Child(read)
        writer.create_patch()
        writer.attrs["index"] = 99
        go.set()
        assert child.result() == 1
        with IH5Record(path, "r") as reader:
            assert reader.attrs["index"] == 1


# --- no forks of the chain --------------------------------------------------


@pytest.mark.parametrize("seen", [1, 2])
@pytest.mark.parametrize("mode", ["r+", "a"])
def test_open_for_writing_refuses_stale_view(tmp_path: Path, seen: int, mode: str) -> None:
    path = build(tmp_path, patches=2)
    before = files_without_locks(tmp_path)
    view = discover_containers(tmp_path, "rec")[:seen]
    with pytest.raises(ConflictError) as caught:
        IH5Record(view, mode)
    assert caught.value.path == str(tmp_path / "rec.p2.ih5") or seen == 1
    assert files_without_locks(tmp_path) == before
    with IH5Record(path) as rec:
        assert rec.user_block.patch_index == 2


def test_commit_patch_refuses_stale_view(tmp_path: Path) -> None:
    path = build(tmp_path, patches=0)
    rec = IH5Record(path, "r+")
    rec["stale"] = 1
    rec.close(commit=False)
    (pending,) = tmp_path.glob(".rec.p1.ih5.*.pending")
    shutil.copyfile(pending, tmp_path / "stale-copy")
    with IH5Record(path, "r+") as rec:
        rec.discard_patch()
        rec.create_patch()
        rec["fresh"] = 2
    shutil.copyfile(tmp_path / "stale-copy", pending)
    before = files_without_locks(tmp_path)

    rec = IH5Record([tmp_path / "rec.ih5"], "r+")
    assert rec.has_patch
    with pytest.raises(ConflictError):
        rec.commit_patch()
    rec.discard_patch()
    rec.close()

    after = files_without_locks(tmp_path)
    assert after.pop("stale-copy") == before.pop("stale-copy")
    assert after == {name: data for name, data in before.items() if "pending" not in name}
    with IH5Record(path) as rec:
        assert "fresh" in rec
        assert "stale" not in rec
        assert len(rec.containers) == 2
