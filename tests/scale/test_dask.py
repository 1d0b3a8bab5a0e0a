"""pack_many and verify_many on a real Dask cluster, including a worker killed mid-task."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from distributed import Client

from ih5.pack import pack_many, record_name_for, verify_many

from .conftest import (
    check_chain,
    edit_plates,
    executor_of,
    is_long,
    kill_a_writer,
    make_plates,
    unpacks_to,
)

pytestmark = [
    pytest.mark.skipif(os.name == "nt", reason="kills workers with SIGKILL"),
    pytest.mark.timeout(240),
]


def worker_pids(client: Client) -> set[int]:
    return set(client.run(os.getpid).values())


def test_pack_many_on_dask_packs_every_plate_byte_for_byte(tmp_path: Path, client: Client) -> None:
    root = make_plates(tmp_path / "plates", count=4, images=6)
    out = tmp_path / "archive"
    outcomes = pack_many(root, out, executor=executor_of(client))
    assert [(outcome.record_name, outcome.error) for outcome in outcomes] == [
        (f"plate-{plate:03d}", None) for plate in range(4)
    ]
    for plate in sorted(root.iterdir()):
        name = record_name_for(plate.name)
        check_chain(out, name, patches=0)
        assert unpacks_to(out / name, tmp_path / "back" / name, plate)


def test_verify_many_on_dask_names_each_damaged_container(tmp_path: Path, client: Client) -> None:
    root = make_plates(tmp_path / "plates", count=3, images=4)
    out = tmp_path / "archive"
    executor = executor_of(client)
    pack_many(root, out, executor=executor)
    edit_plates(root, seed=1)
    pack_many(root, out, executor=executor)
    with open(out / "plate-001.p1.ih5", "r+b") as damaged:
        damaged.seek(-100, os.SEEK_END)
        damaged.write(b"\xff" * 10)
    checks = verify_many(
        [out / f"plate-{plate:03d}" for plate in range(3)] + [out / "missing"], executor=executor
    )
    assert [check.ok for check in checks] == [True, False, True, False]
    assert [(Path(c.container).name, c.status) for c in checks[1].containers] == [
        ("plate-001.ih5", "ok"),
        ("plate-001.p1.ih5", "damaged"),
    ]
    assert "plate-001.p1.ih5 is damaged" in checks[1].errors()[0]
    assert checks[3].containers == ()
    assert checks[3].error is not None and "missing" in checks[3].error


def kill_rounds(long_run: bool) -> int:
    return 4 if long_run else 1


def test_a_worker_killed_mid_task_neither_loses_nor_doubles_a_patch(
    tmp_path: Path, client: Client, pytestconfig: pytest.Config
) -> None:
    """Dask runs the killed worker's task again elsewhere: the run completes, every record
    opens, and each chain holds exactly one container per change set."""
    root = make_plates(tmp_path / "plates", count=4, images=24)
    out = tmp_path / "archive"
    for patches in range(kill_rounds(is_long(pytestconfig)) + 1):
        if patches:
            edit_plates(root, seed=patches)
        killed = _pack_while_killing(root, out, client)
        assert killed not in worker_pids(client)
        for plate in sorted(root.iterdir()):
            name = record_name_for(plate.name)
            check_chain(out, name, patches=patches)
            assert unpacks_to(out / name, tmp_path / f"back{patches}" / name, plate)


def _pack_while_killing(root: Path, out: Path, client: Client) -> int:
    """Run pack_many on the cluster from a thread; kill one worker as it writes; return its pid."""
    pids = worker_pids(client)
    with ThreadPoolExecutor(1) as driver:
        running = driver.submit(pack_many, root, out, executor=executor_of(client))
        killed = kill_a_writer(out, pids)
        outcomes = running.result(timeout=180)
    assert [outcome.error for outcome in outcomes] == [None] * len(outcomes)
    return killed
