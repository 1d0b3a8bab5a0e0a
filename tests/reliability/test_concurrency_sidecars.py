"""Shared sidecars under many writer processes and random SIGKILLs: nothing acknowledged is lost.

Each slot (one worker at a time) makes its own numbered updates and
acknowledges each one after the call returned. The parent SIGKILLs random
workers and starts a replacement that goes on from the slot's first
unacknowledged update (an update in flight at the kill may be done twice,
which each update tolerates: it replaces its own entry). An unlocked reader
process parses the document the whole time.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from ih5 import AtomicMetadataWriter, get_metadata_path, load_plate_metadata, read_json
from ih5.pack import PackResult
from ih5.pack._many import CATALOG_NAME, register
from tests.helpers.trees import temp_files

from .faults import FORK
from .processes import Workers, acknowledge, acknowledged, workers
from .stats import REPORT, StressRow

RUN_TIMEOUT = 150.0


@dataclass(frozen=True)
class Sidecar:
    """A shared document, how a worker updates it, and what a reader checks."""

    name: str
    update: Callable[[Path, int, int], None]
    """update(path, slot, number): the slot's numbered update."""
    entries: Callable[[Any], set[str]]
    """The update names a parsed document holds."""
    check: Callable[[Path], Any]
    """Read and validate the document as a reader does; return it parsed."""


def entry_name(slot: int, number: int) -> str:
    return f"s{slot}-{number}"


def update_metadata(path: Path, slot: int, number: int) -> None:
    name = entry_name(slot, number)
    AtomicMetadataWriter(timeout=60.0).update_subdirectory_metadata(
        path, name, {"image_files": [f"{name}/a.tif"], "main": None, "slot": slot}
    )


def check_metadata(path: Path) -> Any:
    load_plate_metadata(path)  # the document must parse and validate whole
    return read_json(path)


def register_pack(path: Path, slot: int, number: int) -> None:
    name = entry_name(slot, number)
    result = PackResult(
        record=path.parent / name, action="created", record_uuid=name, patch_index=number
    )
    register(path, path.parent / "src" / name, result)


SIDECARS = {
    "metadata": Sidecar(
        "AtomicMetadataWriter",
        update_metadata,
        lambda document: set(document["subdirectories"]),
        check_metadata,
    ),
    "catalog": Sidecar(
        "pack catalog register",
        register_pack,
        lambda document: set(document["records"]),
        read_json,
    ),
}


def work(sidecar: Sidecar, path: Path, slot: int, first: int, count: int, acks: Path) -> None:
    for number in range(first, count):
        sidecar.update(path, slot, number)
        acknowledge(acks, str(number))


def read_until_stopped(sidecar: Sidecar, path: Path, stop: Event, out: Path) -> None:
    """Read without the lock in a loop; count torn documents and vanished entries."""
    reads = invalid = shrunk = 0
    most: set[str] = set()
    while not stop.is_set():
        try:
            entries = sidecar.entries(sidecar.check(path))
        except FileNotFoundError:
            continue
        except Exception:  # torn, partial or invalid: what a reader must never see
            invalid += 1
            continue
        reads += 1
        shrunk += not most <= entries
        most = entries
    out.write_text(json.dumps({"reads": reads, "invalid": invalid, "shrunk": shrunk}))


def slot_acks(tmp_path: Path, slot: int) -> list[int]:
    return [int(line) for line in acknowledged(tmp_path / f"slot{slot}.acks")]


def kill_randomly(
    pool: Workers, tmp_path: Path, start_slot: Callable[[int, int], None], max_kills: int
) -> int:
    """SIGKILL random workers until ``max_kills``; restart each slot; return the kill count."""
    rng = random.Random(20240607)
    kills = 0
    while kills < max_kills and pool.remaining() > 0:
        time.sleep(rng.uniform(0.002, 0.03))
        alive = [name for name in pool.alive() if name.startswith("slot")]
        if not alive:
            break
        victim = rng.choice(alive)
        kills += pool.kill(victim)
        slot = int(victim[len("slot") :].split(".")[0])
        start_slot(slot, len(slot_acks(tmp_path, slot)))
    return kills


def run_stress(tmp_path: Path, sidecar: Sidecar, path: Path, long_run: bool) -> StressRow:
    slots, count, max_kills = (24, 60, 200) if long_run else (16, 20, 40)
    row = REPORT.stress_run(f"{sidecar.name}, random SIGKILLs")
    row.processes = slots
    stop, report = FORK.Event(), tmp_path / "reader.json"
    generations: dict[int, int] = {}
    began = time.monotonic()
    with workers(RUN_TIMEOUT) as pool:

        def start_slot(slot: int, first: int) -> None:
            if first < count:
                generations[slot] = generations.get(slot, -1) + 1
                acks = tmp_path / f"slot{slot}.acks"
                name = f"slot{slot}.{generations[slot]}"
                pool.start(name, work, sidecar, path, slot, first, count, acks)

        pool.start("reader", read_until_stopped, sidecar, path, stop, report)
        for slot in range(slots):
            start_slot(slot, 0)
        row.kills = kill_randomly(pool, tmp_path, start_slot, max_kills)
        codes = pool.join([name for name in pool.processes if name != "reader"])
        stop.set()
        pool.join(["reader"])
    row.seconds = time.monotonic() - began
    reader = json.loads(report.read_text())
    row.reads, row.inconsistent = reader["reads"], reader["invalid"] + reader["shrunk"]
    present = sidecar.entries(read_json(path))
    acked = {entry_name(slot, n) for slot in range(slots) for n in slot_acks(tmp_path, slot)}
    row.operations, row.lost = len(acked), len(acked - present)
    assert {code for name, code in codes.items() if name != "reader"} <= {0, -signal.SIGKILL}, codes
    assert row.kills >= 5, "the run ended before the workers could be killed often"
    assert row.lost == 0, f"acknowledged updates lost: {sorted(acked - present)[:10]}"
    assert present == {entry_name(slot, n) for slot in range(slots) for n in range(count)}
    assert reader["reads"] > 0
    assert row.inconsistent == 0, reader
    return row


@pytest.mark.parametrize("kind", ["metadata", "catalog"])
def test_sidecar_updates_survive_random_kills_of_many_writers(
    tmp_path: Path, kind: str, long_run: bool
) -> None:
    sidecar = SIDECARS[kind]
    plate = tmp_path / "plate"
    plate.mkdir()
    path = get_metadata_path(plate) if kind == "metadata" else plate / CATALOG_NAME
    run_stress(tmp_path, sidecar, path, long_run)
    # Temp files of killed writers are swept by the next update.
    sidecar.update(path, 999, 0)
    assert temp_files(plate) == []
