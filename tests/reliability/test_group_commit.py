"""Group commit of the plate metadata writer: real processes, kills and a lock taken away.

Writers that find the sidecar's lock taken queue their requests beside it and
whoever holds the lock applies them all in one write (``ih5.fs._grouped``).
These tests queue requests the way waiters do (real waiting processes, or the
queueing step itself for waiters that died), kill holders and waiters between
the steps of a group, and check that every acknowledged update is in the
document, that no committed batch is applied twice over a later update, and
that nothing of the queue is left once a writer has gone on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import ih5.fs._grouped as grouped
from ih5 import AtomicMetadataWriter, atomic_update_json, atomic_write_json, read_json
from ih5.errors import FileLockTimeoutError, MetadataValidationError, MetadataWriteError
from ih5.fs import encode_json_compact, file_lock, lock_path_for, queue_directory
from ih5.fs._gate import open_gate, take_gate
from ih5.fs._lock import shared_file_lock
from ih5.metadata import get_metadata_path
from ih5.metadata._writer import _applier, _request
from tests.helpers.killpoints import arm_kill

from .processes import acknowledge, acknowledged, workers

RUN_TIMEOUT = 90.0
WRITERS = 12
UPDATES = 15


def record(name: str, version: int = 0) -> dict[str, Any]:
    return {"image_files": [f"{name}/A01_s1.tif"], "main": None, "version": version}


@pytest.fixture
def sidecar(tmp_path: Path) -> Path:
    plate = tmp_path / "plate"
    plate.mkdir()
    path = get_metadata_path(plate)
    atomic_write_json(path, {"subdirectories": {"images": record("images")}})
    return path


def queue_as_dead_waiter(sidecar: Path, sub_dir: str, version: int) -> str:
    """Queue a request exactly as a waiter does before it waits (and then dies)."""
    data = encode_json_compact(_request({sub_dir: record(sub_dir, version)}, None), sidecar)
    return grouped._spool(queue_directory(sidecar), data)


def queued(sidecar: Path) -> list[str]:
    """Names of the requests waiting in the queue's log (not withdrawn)."""
    try:
        raw = (queue_directory(sidecar) / grouped.INCOMING).read_bytes()
    except FileNotFoundError:
        return []
    return list(grouped.logged(raw))


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def versions(sidecar: Path) -> dict[str, int]:
    records = read_json(sidecar)["subdirectories"]
    return {name: value.get("version", -1) for name, value in records.items()}


def left_beside(sidecar: Path) -> list[str]:
    return sorted(os.listdir(sidecar.parent))


@contextmanager
def lock_held_by_a_thread(sidecar: Path) -> Iterator[Callable[[], None]]:
    """Hold the sidecar's lock from another thread until the yielded release is called."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with file_lock(sidecar, timeout=10.0):
            taken.set()
            release.wait(RUN_TIMEOUT)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10.0)
    try:
        yield release.set
    finally:
        release.set()
        thread.join(10.0)


def update_own_record(sidecar: Path, name: str, updates: int, acks: Path) -> None:
    """One worker's job: replace its own record ``updates`` times, acknowledging each."""
    writer = AtomicMetadataWriter(timeout=60.0)
    for version in range(1, updates + 1):
        writer.update_subdirectory_metadata(sidecar, name, record(name, version))
        acknowledge(acks, str(version))


def test_group_commit_writers_of_distinct_records_all_land(sidecar: Path, tmp_path: Path) -> None:
    names = [f"w{index}" for index in range(WRITERS)]
    with workers(RUN_TIMEOUT) as pool:
        for name in names:
            pool.start(name, update_own_record, sidecar, name, UPDATES, tmp_path / f"{name}.acks")
        assert set(pool.join().values()) == {0}
    found = versions(sidecar)
    for name in names:
        assert found[name] == len(acknowledged(tmp_path / f"{name}.acks")) == UPDATES
    assert next(iter(found)) == "images"
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def one_update(sidecar: Path, name: str) -> None:
    AtomicMetadataWriter(timeout=60.0).update_subdirectory_metadata(sidecar, name, record(name, 1))


def test_group_commit_holder_applies_every_queued_request_in_one_write(sidecar: Path) -> None:
    names = [f"w{index}" for index in range(6)]
    with workers(RUN_TIMEOUT) as pool:
        with file_lock(sidecar, timeout=10.0):
            for name in names:
                pool.start(name, one_update, sidecar, name)
            wait_for(lambda: len(queued(sidecar)) == len(names))
            before = os.stat(sidecar).st_ino
            flushed = grouped.flush_queue(sidecar, _applier(sidecar), None)
            written = os.stat(sidecar).st_ino
        grouped.finish_flush(sidecar, flushed)
        assert set(pool.join().values()) == {0}
    assert written != before
    assert os.stat(sidecar).st_ino == written  # the waiters found theirs applied: no more writes
    assert versions(sidecar) == {"images": 0, **dict.fromkeys(names, 1)}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def update_and_die_at(sidecar: Path, name: str, step: str) -> None:
    """Update as the lock's holder and SIGKILL this process right before ``step``."""
    arm_kill([(grouped, step)], 1)
    one_update(sidecar, name)


def test_group_commit_holder_killed_after_commit_never_applies_its_batch_again(
    sidecar: Path,
) -> None:
    for name in ("a", "b", "c"):
        queue_as_dead_waiter(sidecar, name, 1)
    with workers(RUN_TIMEOUT) as pool:
        pool.start("holder", update_and_die_at, sidecar, "holder", "_remove_batch")
        assert pool.join() == {"holder": -signal.SIGKILL}
    assert versions(sidecar) == {"images": 0, "a": 1, "b": 1, "c": 1, "holder": 1}
    leftover = os.listdir(queue_directory(sidecar))
    assert [entry.split("-")[0] for entry in leftover] == ["staged"]

    def foreign(document: dict[str, Any]) -> dict[str, Any]:
        document["subdirectories"]["a"] = record("a", 2)
        return document

    atomic_update_json(sidecar, foreign)  # an update made after the commit, by anyone
    one_update(sidecar, "later")
    assert versions(sidecar) == {"images": 0, "a": 2, "b": 1, "c": 1, "holder": 1, "later": 1}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def test_group_commit_holder_killed_before_commit_leaves_its_batch_to_the_next_writer(
    sidecar: Path,
) -> None:
    queue_as_dead_waiter(sidecar, "a", 1)
    queue_as_dead_waiter(sidecar, "b", 1)
    before = sidecar.read_bytes()
    with workers(RUN_TIMEOUT) as pool:
        pool.start("holder", update_and_die_at, sidecar, "holder", "_staged")
        assert pool.join() == {"holder": -signal.SIGKILL}
    assert sidecar.read_bytes() == before
    AtomicMetadataWriter(timeout=10.0).update_subdirectory_metadata(sidecar, "a", record("a", 2))
    # The queued a=1 came first: it is applied before this later a=2, never over it.
    # (The holder queued its own request behind them, finding a log up: it goes too.)
    assert versions(sidecar) == {"images": 0, "a": 2, "b": 1, "holder": 1}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def test_group_commit_waiter_killed_after_queueing_is_applied_before_later_updates(
    sidecar: Path,
) -> None:
    with workers(RUN_TIMEOUT) as pool, lock_held_by_a_thread(sidecar) as release:
        pool.start("waiter", one_update, sidecar, "a")
        wait_for(lambda: len(queued(sidecar)) == 1)
        assert pool.kill("waiter")
        release()
    writer = AtomicMetadataWriter(timeout=10.0)
    writer.update_subdirectory_metadata(sidecar, "a", record("a", 2))
    writer.update_subdirectory_metadata(sidecar, "b", record("b", 1))
    assert versions(sidecar) == {"images": 0, "a": 2, "b": 1}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def update_with_the_lock_file_taken_away(sidecar: Path, acks: Path) -> None:
    """Hold the lock, and have the lock file deleted just before this holder commits."""
    encode: Callable[[Any, str | os.PathLike[str]], bytes] = vars(grouped)["encode_json"]

    def encode_then_lose_the_lock(data: Any, path: str | os.PathLike[str]) -> bytes:
        os.unlink(lock_path_for(sidecar))  # a foreign tool cleans up "its" lock file
        return encode(data, path)

    with pytest.MonkeyPatch.context() as patch:  # in the holder's own (forked) process
        patch.setattr(grouped, "encode_json", encode_then_lose_the_lock)
        try:
            one_update(sidecar, "holder")
        except MetadataWriteError as exc:
            acknowledge(acks, f"refused: {exc}")
        else:
            acknowledge(acks, "acknowledged")


def test_group_commit_holder_whose_lock_file_is_taken_away_commits_nothing(
    sidecar: Path, tmp_path: Path
) -> None:
    queue_as_dead_waiter(sidecar, "a", 1)
    before = sidecar.read_bytes()
    acks = tmp_path / "holder.acks"
    with workers(RUN_TIMEOUT) as pool:
        pool.start("holder", update_with_the_lock_file_taken_away, sidecar, acks)
        assert pool.join() == {"holder": 0}
    [outcome] = acknowledged(acks)
    assert outcome.startswith("refused: ") and "was removed or replaced while held" in outcome
    assert sidecar.read_bytes() == before
    one_update(sidecar, "later")
    assert versions(sidecar) == {"images": 0, "a": 1, "later": 1}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def update_and_report(sidecar: Path, name: str, acks: Path) -> None:
    try:
        one_update(sidecar, name)
    except MetadataWriteError as exc:
        acknowledge(acks, type(exc.__cause__).__name__)
    else:
        acknowledge(acks, "acknowledged")


def test_group_commit_error_under_the_lock_reaches_every_waiter(
    sidecar: Path, tmp_path: Path
) -> None:
    names = ["w0", "w1", "w2"]
    with workers(RUN_TIMEOUT) as pool, lock_held_by_a_thread(sidecar) as release:
        for name in names:
            pool.start(name, update_and_report, sidecar, name, tmp_path / f"{name}.acks")
        wait_for(lambda: len(queued(sidecar)) == len(names))
        atomic_write_json(sidecar, {"image_files": ["/abs/images/a.tif"]})  # legacy, flat
        release()
        assert set(pool.join().values()) == {0}
    outcomes = [acknowledged(tmp_path / f"{name}.acks") for name in names]
    assert outcomes == [[MetadataValidationError.__name__]] * len(names)
    assert read_json(sidecar) == {"image_files": ["/abs/images/a.tif"]}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def test_group_commit_waiter_that_times_out_withdraws_its_request(sidecar: Path) -> None:
    with lock_held_by_a_thread(sidecar):
        with pytest.raises(MetadataWriteError, match="timed out"):
            AtomicMetadataWriter(timeout=0.1).update_subdirectory_metadata(
                sidecar, "late", record("late", 1)
            )
        assert queued(sidecar) == []
    one_update(sidecar, "later")
    assert versions(sidecar) == {"images": 0, "later": 1}


def test_shared_lock_waits_for_the_exclusive_holder_and_admits_many(sidecar: Path) -> None:
    with lock_held_by_a_thread(sidecar) as release:
        with pytest.raises(FileLockTimeoutError), shared_file_lock(sidecar, timeout=0.05):
            pass
        release()
    with (
        shared_file_lock(sidecar, timeout=5.0),
        shared_file_lock(sidecar, timeout=0.0),
        pytest.raises(FileLockTimeoutError),
        file_lock(sidecar, timeout=0.0),
    ):
        pass


def test_group_commit_queued_value_read_from_a_sidecar_is_written_back_as_read(
    sidecar: Path,
) -> None:
    sidecar.write_bytes(b'{"subdirectories": {"images": {"image_files": [], "pixel_size": NaN}}}')
    copied = read_json(sidecar)["subdirectories"]["images"]
    data = encode_json_compact(_request({"copy": copied}, None), sidecar)
    grouped._spool(queue_directory(sidecar), data)
    one_update(sidecar, "later")
    assert b'"pixel_size": NaN' in sidecar.read_bytes().split(b'"copy"')[1]
    assert list(read_json(sidecar)["subdirectories"]) == ["images", "copy", "later"]


def test_group_commit_waiter_returns_once_its_batch_is_durable_while_the_lock_is_held_again(
    sidecar: Path, tmp_path: Path
) -> None:
    # A writer that takes the lock right after a holder lets go must not keep the
    # waiters of that holder's batch waiting: they learn from the mark, not the lock.
    # (The first to queue waits for the lock itself: it is to apply what comes next.)
    first_acks, acks = tmp_path / "first.acks", tmp_path / "w.acks"
    with workers(RUN_TIMEOUT) as pool:
        with file_lock(sidecar, timeout=10.0):
            pool.start("first", update_and_report, sidecar, "first", first_acks)
            wait_for(lambda: len(queued(sidecar)) == 1)
            pool.start("w", update_and_report, sidecar, "w", acks)
            wait_for(lambda: len(queued(sidecar)) == 2)
            flushed = grouped.flush_queue(sidecar, _applier(sidecar), None)
        with lock_held_by_a_thread(sidecar):
            grouped.finish_flush(sidecar, flushed)  # durable, marked, the gate opened
            wait_for(lambda: acknowledged(acks) == ["acknowledged"])
            assert versions(sidecar) == {"images": 0, "first": 1, "w": 1}
        assert pool.join() == {"first": 0, "w": 0}
    assert acknowledged(first_acks) == ["acknowledged"]
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def test_group_commit_waiters_at_a_gate_are_let_through_together(sidecar: Path) -> None:
    names = [f"w{index}" for index in range(4)]
    with workers(RUN_TIMEOUT) as pool:
        with file_lock(sidecar, timeout=10.0):
            pids = [pool.start(name, one_update, sidecar, name).pid for name in names]
            wait_for(lambda: len(queued(sidecar)) == len(names))
            gate_path = gate_of_the_log(sidecar)
            # Every waiter but the first, which waits for the lock (to apply what comes next).
            wait_for(lambda: waiting_at(gate_path, pids) == len(names) - 1)
            gate = take_gate(gate_path)
            assert gate is not None
            os.unlink(gate_path)
            open_gate(gate)
            # Let through unmarked: they look again under the lock, which is still held.
            time.sleep(0.1)
            assert set(pool.alive()) == set(names)
        assert set(pool.join().values()) == {0}
    assert versions(sidecar) == {"images": 0, **dict.fromkeys(names, 1)}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def gate_of_the_log(sidecar: Path) -> str:
    """The gate the waiters of the queue's log wait at (named by the log's inode)."""
    queue = queue_directory(sidecar)
    return os.fspath(queue / f"{grouped.GATE_PREFIX}{(queue / grouped.INCOMING).stat().st_ino}")


def waiting_at(path: str, pids: list[int | None]) -> int:
    """How many of ``pids`` have the file at ``path`` open (Linux's /proc)."""
    count = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            count += path in links
    return count


def test_group_commit_first_waiter_to_queue_during_a_batch_waits_for_the_lock_to_apply_next(
    sidecar: Path,
) -> None:
    with workers(RUN_TIMEOUT) as pool:
        with file_lock(sidecar, timeout=10.0):
            pool.start("w0", one_update, sidecar, "w0")
            wait_for(lambda: len(queued(sidecar)) == 1)
            real_apply, holder = vars(grouped)["_apply_batch"], os.getpid()
            late: list[int | None] = []

            def apply_while_others_queue(*args: Any) -> str:
                if os.getpid() == holder:  # not in the waiters forked here
                    for name in ("w1", "w2"):
                        late.append(pool.start(name, one_update, sidecar, name).pid)
                        wait_for(lambda: len(queued(sidecar)) == len(late))
                committed: str = real_apply(*args)
                return committed

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(grouped, "_apply_batch", apply_while_others_queue)
                flushed = grouped.flush_queue(sidecar, _applier(sidecar), None)
            assert versions(sidecar) == {"images": 0, "w0": 1}
            # w1 made the new log: it waits for the lock (as w0 does, the first before
            # it, to find its request applied), w2 at the new log's gate.
            waiters = lock_waiters(os.fspath(lock_path_for(sidecar)))
            assert str(late[0]) in waiters and str(late[1]) not in waiters
            gate_path = gate_of_the_log(sidecar)
            wait_for(lambda: waiting_at(gate_path, late[1:]) == 1)
            assert stat.S_ISFIFO(os.stat(gate_path).st_mode)
        grouped.finish_flush(sidecar, flushed)
        assert pool.join() == {"w0": 0, "w1": 0, "w2": 0}
    assert versions(sidecar) == {"images": 0, "w0": 1, "w1": 1, "w2": 1}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def lock_waiters(path: str) -> list[str]:
    """Pids blocked waiting for a flock on ``path`` (Linux's /proc/locks marks them ``->``)."""
    info = os.stat(path)
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    with open("/proc/locks") as locks:
        rows = [line.split() for line in locks]
    return [row[-4] for row in rows if "->" in row and "FLOCK" in row and row[-3] == device]


def test_group_commit_waiters_whose_first_waiter_died_look_under_the_lock(
    sidecar: Path,
) -> None:
    queue_as_dead_waiter(sidecar, "dead", 1)  # it made the log: it was to take the lock
    with workers(RUN_TIMEOUT) as pool:
        pool.start("w", one_update, sidecar, "w")
        assert pool.join() == {"w": 0}
    assert versions(sidecar) == {"images": 0, "dead": 1, "w": 1}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]


def hold_then_die_marking(sidecar: Path, held: Path) -> None:
    """Take the lock, wait for one queued request, apply it and die before marking it
    (which a holder does after letting the lock go)."""
    with file_lock(sidecar, timeout=10.0):
        acknowledge(held, "held")
        wait_for(lambda: len(queued(sidecar)) == 1)
        arm_kill([(grouped, "_mark_applied")], 1)
        flushed = grouped.flush_queue(sidecar, _applier(sidecar), None)
    grouped.finish_flush(sidecar, flushed)


def test_group_commit_holder_killed_before_marking_its_batch_loses_no_acknowledged_update(
    sidecar: Path, tmp_path: Path
) -> None:
    # Committed and durable, but the waiter never sees its mark: it learns it under
    # the lock instead, and the batch is never applied again.
    acks, held = tmp_path / "w.acks", tmp_path / "holder.acks"
    with workers(RUN_TIMEOUT) as pool:
        pool.start("holder", hold_then_die_marking, sidecar, held)
        wait_for(lambda: acknowledged(held) == ["held"])
        pool.start("w", update_and_report, sidecar, "w", acks)
        assert pool.join() == {"holder": -signal.SIGKILL, "w": 0}
    assert acknowledged(acks) == ["acknowledged"]
    one_update(sidecar, "later")
    assert versions(sidecar) == {"images": 0, "w": 1, "later": 1}
    assert left_beside(sidecar) == [sidecar.name, lock_path_for(sidecar).name]
