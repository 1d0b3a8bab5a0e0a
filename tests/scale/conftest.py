"""A real Dask cluster for the scale tests, synthetic plates, and chain checks."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

from ih5 import IH5Record
from ih5.format import discover_containers
from ih5.pack import unpack_record
from ih5.record._commit import parse_staged_name
from tests.remote.conftest import bucket, s3_env, s3_server

__all__ = ["bucket", "s3_env", "s3_server"]
"""The remote suites' S3 fixtures, for push_many (one moto server per session and directory)."""

STARTUP_TIMEOUT = 60.0


def is_long(config: pytest.Config) -> bool:
    """True for ``--long`` or ``IH5_LONG=1``."""
    return bool(config.getoption("--long")) or os.environ.get("IH5_LONG") == "1"


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes of one thread each (restarted by their nannies when killed)."""
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        timeout=STARTUP_TIMEOUT,
    ) as local:
        yield local


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Client]:
    """A client of the session's cluster, with both workers up."""
    with Client(cluster) as connected:  # type: ignore[no-untyped-call]
        connected.wait_for_workers(2, timeout=STARTUP_TIMEOUT)
        yield connected


def executor_of(client: Client) -> Executor:
    """The client's concurrent.futures executor; every submit is a new task."""
    executor: Executor = client.get_executor(pure=False)  # type: ignore[no-untyped-call]
    return executor


def make_plates(root: Path, count: int, images: int, side: int = 64, seed: int = 0) -> Path:
    """``count`` plate directories of ``images`` random 16-bit ``.npy`` images each,
    as examples/pack_demo.py makes them (wells x sites x channels, flattened)."""
    rng = np.random.default_rng(seed)
    for plate in range(count):
        folder = root / f"plate_{plate:03d}" / "images"
        folder.mkdir(parents=True)
        for image in range(images):
            data = rng.integers(0, 4096, (side, side), dtype=np.uint16)
            np.save(folder / f"A{image:02d}_s1_w1.npy", data)
    return root


def edit_plates(root: Path, seed: int) -> None:
    """Change one image and add one in every plate."""
    rng = np.random.default_rng(seed)
    for plate in sorted(path for path in root.iterdir() if path.is_dir()):
        images = plate / "images"
        np.save(images / "A00_s1_w1.npy", rng.integers(0, 4096, (64, 64), dtype=np.uint16))
        np.save(images / f"Z{seed:02d}_s9_w9.npy", rng.integers(0, 4096, (8, 8), dtype=np.uint16))


def check_chain(out: Path, name: str, patches: int) -> None:
    """Record ``name`` opens with every hashsum checked, and holds exactly ``patches`` + 1
    containers, indices 0..patches: no duplicate, no missing patch, no leftover staging file."""
    containers = discover_containers(out, name)
    assert [path.name for path in containers] == [
        f"{name}.ih5" if index == 0 else f"{name}.p{index}.ih5" for index in range(patches + 1)
    ]
    with IH5Record(out / name) as rec:
        assert [entry.index for entry in rec.history()] == list(range(patches + 1))
    staged = [
        found.name
        for found in map(parse_staged_name, os.listdir(out))
        if found is not None and found.target.startswith(f"{name}.")
    ]
    assert staged == []


def kill_a_writer(
    out: Path, pids: set[int] | None = None, delay: float = 0.0, deadline: float = 30.0
) -> int:
    """SIGKILL the first process seen writing a staging file in ``out``, ``delay`` s later.

    Only ``pids`` are killed (default: any process but this one). Staging names
    carry their writer's pid (``.NAME.pK.ih5.HOST-PID-TOKEN.writing``), so the kill
    lands while a task is packing, not before or after. Returns the pid.
    """
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        for name in os.listdir(out) if out.exists() else []:
            staged = parse_staged_name(name)
            if staged is None or staged.pid is None or staged.pid == os.getpid():
                continue
            if pids is None or staged.pid in pids:
                time.sleep(delay)
                os.kill(staged.pid, signal.SIGKILL)
                return staged.pid
        time.sleep(0.001)
    raise AssertionError(f"no other process was seen writing in {out}")


def files_of(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by relative path, with its bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def unpacks_to(record: Path, where: Path, source: Path) -> bool:
    """Unpack ``record`` into ``where`` and compare every file with ``source``, byte for byte."""
    unpack_record(record, where)
    return files_of(where) == files_of(source)
