"""The group-commit queue's log: appends that race a take-up, withdrawals, torn lines."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from pathlib import Path

import ih5.fs._grouped as grouped


def test_an_append_after_the_log_was_taken_up_is_refused_and_writes_nothing(
    tmp_path: Path,
) -> None:
    log = os.fspath(tmp_path / grouped.INCOMING)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.rename(log, tmp_path / "taken.log")  # a holder takes it up
        assert grouped._append_while_incoming(fd, log, b"\nlate {}\n") is False
    finally:
        os.close(fd)
    assert (tmp_path / "taken.log").read_bytes() == b""


def test_a_holder_reads_a_log_only_once_the_append_under_way_has_landed(tmp_path: Path) -> None:
    log = tmp_path / "taken.log"
    log.write_bytes(b"\na {}\n")
    appender = os.open(log, os.O_WRONLY | os.O_APPEND)
    fcntl.flock(appender, fcntl.LOCK_SH)  # an appender that looked before the take-up
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append(grouped._read_settled(os.fspath(log))))
    reader.start()
    reader.join(0.2)
    assert reader.is_alive()  # waits for the append
    os.write(appender, b"\nb {}\n")
    fcntl.flock(appender, fcntl.LOCK_UN)
    os.close(appender)
    reader.join(10.0)
    assert read == [b"\na {}\n\nb {}\n"]


def test_a_log_lists_its_requests_in_order_less_withdrawn_and_torn_ones() -> None:
    raw = b"\na {}\n\nb [1]\n\n-a\n\ntorn-without-data\n\nc 2\n"
    assert grouped.logged(raw) == {"b": b"[1]", "c": b"2"}


def test_a_committed_batch_is_left_to_its_holder_while_it_lives(tmp_path: Path) -> None:
    queue = tmp_path / ".doc.json.ih5-queue"
    queue.mkdir()
    dead = multiprocessing.get_context("fork").Process(target=lambda: None)
    dead.start()
    dead.join()
    alive = queue / f"{grouped.STAGED_PREFIX}{os.getpid()}-00000000"
    gone = queue / f"{grouped.STAGED_PREFIX}{dead.pid}-00000000"
    for batch in (alive, gone):
        batch.mkdir()
        (batch / f"x{grouped.LOG_SUFFIX}").write_bytes(b"\na {}\n")
    assert grouped._take_up(os.fspath(queue)) is None
    assert sorted(os.listdir(queue)) == [alive.name]


def test_gates_left_in_an_idle_queue_are_taken_down_with_it(tmp_path: Path) -> None:
    queue = tmp_path / ".doc.json.ih5-queue"
    queue.mkdir()
    os.mkfifo(queue / f"{grouped.GATE_PREFIX}123")  # a waiter killed after putting it up
    assert grouped._take_up(os.fspath(queue)) is None
    assert not queue.exists()
