"""Many processes updating one sidecar through AtomicMetadataWriter lose nothing."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from ih5.metadata import AtomicMetadataWriter, load_plate_metadata

PROCESSES = 8
UPDATES = 50
RUN_TIMEOUT = 120.0


def merge_own_records(sidecar: Path, worker: int, updates: int) -> None:
    """One process's job: merge two records of its own per update."""
    writer = AtomicMetadataWriter(timeout=60.0)
    for update in range(updates):
        names = [f"w{worker}_u{update}_{part}" for part in ("a", "b")]
        writer.merge_subdirectory_metadata(
            sidecar, {name: {"image_files": [f"{name}/x.tif"], "worker": worker} for name in names}
        )


def run_processes(sidecar: Path) -> list[int | None]:
    """Run the workers with a bounded run time; return their exit codes."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=merge_own_records, args=(sidecar, worker, UPDATES))
        for worker in range(PROCESSES)
    ]
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + RUN_TIMEOUT
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        return [process.exitcode for process in processes]
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()


def test_writer_concurrent_processes_lose_no_update(sidecar: Path) -> None:
    assert run_processes(sidecar) == [0] * PROCESSES
    doc = load_plate_metadata(sidecar)
    expected = {
        f"w{worker}_u{update}_{part}"
        for worker in range(PROCESSES)
        for update in range(UPDATES)
        for part in ("a", "b")
    }
    assert set(doc.subdirectories) == expected
    for worker in range(PROCESSES):
        own = [name for name in doc.subdirectories if name.startswith(f"w{worker}_")]
        assert own == [f"w{worker}_u{u}_{part}" for u in range(UPDATES) for part in ("a", "b")]
    assert sorted(p.name for p in sidecar.parent.iterdir()) == [
        sidecar.name,
        f"{sidecar.name}.lock",
    ]
