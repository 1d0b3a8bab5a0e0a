"""Many writers, one JSON file: no acknowledged update is lost, readers never see a torn file.

Each worker appends consecutive numbers to its own list in the document and
acknowledges a number in its own side file only after ``atomic_update_json``
returned. A reader process parses the file without the lock the whole time.
The long variants are marked slow (run them with ``--long`` or ``IH5_LONG=1``).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from ih5 import atomic_update_json, atomic_write_json, read_json
from tests.helpers.trees import temp_files

FORK = multiprocessing.get_context("fork")
JOIN_TIMEOUT = 120.0


def append_number(key: str, number: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def update(document: dict[str, Any]) -> dict[str, Any]:
        document.setdefault(key, []).append(number)
        return document

    return update


def _write_updates(path: Path, key: str, count: int) -> None:
    """Worker: ``count`` updates under ``key``, each acknowledged after it returned."""
    ack_fd = os.open(path.parent / f"{key}.acks", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for number in range(count):
        atomic_update_json(path, append_number(key, number), lock_timeout=60, default_data={})
        os.write(ack_fd, b"%d\n" % number)


def _read_unlocked(path: Path, stop: Event, results: Connection) -> None:
    """Reader: parse the file without the lock until told to stop; count what went wrong."""
    reads = torn = shrunk = 0
    most = 0
    while not stop.is_set():
        raw = path.read_bytes()
        reads += 1
        try:
            document = json.loads(raw)
        except ValueError:
            torn += 1
            continue
        total = sum(len(numbers) for numbers in document.values())
        shrunk += total < most  # an update vanished after a reader had seen it
        most = max(most, total)
    results.send({"reads": reads, "torn": torn, "shrunk": shrunk})


@dataclass
class StressRun:
    """Worker and reader processes around one document; kills leftovers when closed."""

    path: Path
    workers: dict[str, BaseProcess] = field(default_factory=dict)
    quotas: dict[str, int] = field(default_factory=dict)
    reader: BaseProcess | None = None
    stop: Event = field(default_factory=FORK.Event)
    results: tuple[Connection, Connection] = field(default_factory=lambda: FORK.Pipe(False))

    def start_worker(self, key: str, count: int) -> None:
        worker = FORK.Process(target=_write_updates, args=(self.path, key, count), name=key)
        worker.start()
        self.workers[key], self.quotas[key] = worker, count

    def start_reader(self) -> None:
        self.reader = FORK.Process(
            target=_read_unlocked, args=(self.path, self.stop, self.results[1])
        )
        self.reader.start()

    def alive(self) -> list[str]:
        return [key for key, worker in self.workers.items() if worker.is_alive()]

    def kill(self, key: str) -> bool:
        """SIGKILL a worker; tell whether the signal (not a normal exit) ended it."""
        worker = self.workers[key]
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join(JOIN_TIMEOUT)
        return worker.exitcode == -signal.SIGKILL

    def join_workers(self) -> dict[str, int | None]:
        for worker in self.workers.values():
            worker.join(JOIN_TIMEOUT)
        return {key: worker.exitcode for key, worker in self.workers.items()}

    def stop_reader(self) -> dict[str, int]:
        assert self.reader is not None
        self.stop.set()
        receiver = self.results[0]
        assert receiver.poll(JOIN_TIMEOUT), "the reader did not report"
        report: dict[str, int] = receiver.recv()
        self.reader.join(JOIN_TIMEOUT)
        return report

    def close(self) -> None:
        self.stop.set()
        for process in [*self.workers.values(), self.reader]:
            if process is not None and process.is_alive():
                process.kill()
                process.join()


@pytest.fixture
def stress(tmp_path: Path) -> Iterator[StressRun]:
    path = tmp_path / "openhcs_metadata.json"
    atomic_write_json(path, {})
    run = StressRun(path)
    try:
        yield run
    finally:
        run.close()


def acknowledged(path: Path, key: str) -> list[int]:
    """The numbers a worker acknowledged (complete lines only; none if it died early)."""
    try:
        lines = (path.parent / f"{key}.acks").read_bytes().split(b"\n")[:-1]
    except FileNotFoundError:
        return []
    return [int(line) for line in lines]


def assert_every_acknowledged_update_present(run: StressRun) -> None:
    document = read_json(run.path)
    for key in run.workers:
        acked, applied = acknowledged(run.path, key), document.get(key, [])
        assert acked == list(range(len(acked)))
        assert applied == list(range(len(applied))), f"{key}: updates lost or applied twice"
        # At most one update can be in the document unacknowledged: the one in flight at a kill.
        assert len(acked) <= len(applied) <= len(acked) + 1, f"{key}: acknowledged update lost"


@pytest.mark.parametrize(
    ("processes", "updates"),
    [
        pytest.param(8, 200, id="8x200"),
        pytest.param(16, 300, id="16x300", marks=pytest.mark.slow),
    ],
)
def test_atomic_update_json_loses_no_acknowledged_update_across_processes(
    stress: StressRun, processes: int, updates: int
) -> None:
    stress.start_reader()
    for index in range(processes):
        stress.start_worker(f"w{index}", updates)
    exit_codes = stress.join_workers()
    report = stress.stop_reader()

    assert set(exit_codes.values()) == {0}
    assert report["reads"] > 0
    assert report["torn"] == 0
    assert report["shrunk"] == 0
    assert_every_acknowledged_update_present(stress)
    assert read_json(stress.path) == {key: list(range(updates)) for key in stress.workers}


@pytest.mark.parametrize(
    ("slots", "updates", "max_kills"),
    [
        pytest.param(8, 100, 40, id="8x100-40kills"),
        pytest.param(8, 300, 200, id="8x300-200kills", marks=pytest.mark.slow),
    ],
)
def test_atomic_update_json_loses_no_acknowledged_update_when_workers_are_killed(
    stress: StressRun, slots: int, updates: int, max_kills: int
) -> None:
    rng = random.Random(20240131)
    generations = itertools.count(1)
    stress.start_reader()
    for slot in range(slots):
        stress.start_worker(f"w{slot}.0", updates)
    kills = 0
    while kills < max_kills:
        time.sleep(rng.uniform(0.003, 0.04))
        alive = stress.alive()
        if not alive:
            break
        victim = rng.choice(alive)
        kills += stress.kill(victim)
        remaining = stress.quotas[victim] - len(acknowledged(stress.path, victim))
        if remaining:  # a replacement continues the slot's work under a fresh key
            victim_slot = victim.split(".")[0]
            stress.start_worker(f"{victim_slot}.{next(generations)}", remaining)
    exit_codes = stress.join_workers()
    report = stress.stop_reader()

    assert kills >= 5, "the run ended before the workers could be killed often"
    assert {code for code in exit_codes.values() if code != -signal.SIGKILL} <= {0}
    assert report["reads"] > 0
    assert report["torn"] == 0
    assert report["shrunk"] == 0
    assert_every_acknowledged_update_present(stress)
    for slot in range(slots):
        incarnations = [key for key in stress.workers if key.startswith(f"w{slot}.")]
        assert sum(len(acknowledged(stress.path, key)) for key in incarnations) == updates

    # Whatever temp files the killed writers left, the next update sweeps them.
    atomic_update_json(stress.path, append_number("final", 0))
    assert temp_files(stress.path.parent) == []


def _die_in_replace(path: Path, stuck: Event) -> None:
    """Worker that freezes inside the atomic write, lock held and temp file complete."""

    def freeze(*args: Any) -> None:
        stuck.set()
        time.sleep(3600)

    os.replace = freeze  # type: ignore[assignment]  # in this child only
    atomic_update_json(path, append_number("doomed", 0), default_data={})


def test_atomic_update_json_recovers_from_a_writer_killed_while_holding_the_lock(
    tmp_path: Path, is_locked: Callable[[Path], bool]
) -> None:
    path = tmp_path / "openhcs_metadata.json"
    atomic_write_json(path, {"w": [0]})
    stuck = FORK.Event()
    writer = FORK.Process(target=_die_in_replace, args=(path, stuck))
    writer.start()
    try:
        assert stuck.wait(10)
        assert is_locked(path)
        assert len(temp_files(tmp_path)) == 1
        os.kill(writer.pid or 0, signal.SIGKILL)
        writer.join(10)
        began = time.monotonic()
        atomic_update_json(path, append_number("w", 1), lock_timeout=10)
        waited = time.monotonic() - began
    finally:
        writer.kill()
        writer.join()
    assert waited < 5
    assert read_json(path) == {"w": [0, 1]}
    assert temp_files(tmp_path) == []


def test_atomic_update_json_loses_no_update_across_threads(tmp_path: Path) -> None:
    path = tmp_path / "openhcs_metadata.json"

    def write(key: str) -> None:
        for number in range(50):
            atomic_update_json(path, append_number(key, number), lock_timeout=60, default_data={})

    threads = [threading.Thread(target=write, args=(f"t{index}",)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert read_json(path) == {f"t{index}": list(range(50)) for index in range(4)}
