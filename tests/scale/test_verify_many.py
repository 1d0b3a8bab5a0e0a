"""verify_many: the caller only lists; the tasks read, hash and check the containers (small
ones together, each with its own verdict); each chain is judged from the user blocks the
tasks read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

from ih5.format import MANIFEST_SUFFIX
from ih5.pack import pack_directory, plan_verify, verify_many

MIB = 1 << 20
P = ParamSpec("P")
T = TypeVar("T")


class CountingPool(ThreadPoolExecutor):
    """A thread pool that counts the tasks it was given."""

    def __init__(self) -> None:
        super().__init__(2)
        self.submitted = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def record_with_small_patches(tmp_path: Path, patches: int) -> Path:
    """A base holding 4 MiB and ``patches`` patches of a few KiB each."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(4 << 20))
    record = tmp_path / "archive" / "rec"
    record.parent.mkdir()
    pack_directory(source, record)
    for patch in range(patches):
        (source / "small.txt").write_text(f"change {patch}")
        pack_directory(source, record)
    return record


def test_small_containers_share_tasks_and_each_keeps_its_own_verdict(tmp_path: Path) -> None:
    record = record_with_small_patches(tmp_path, patches=12)
    with open(record.parent / "rec.p7.ih5", "r+b") as damaged:
        damaged.seek(-64, os.SEEK_END)
        damaged.write(b"\xff" * 8)
    with CountingPool() as pool:
        (check,) = verify_many([record], executor=pool)
    assert pool.submitted < 13 // 2
    assert [Path(container.container).name for container in check.containers] == ["rec.ih5"] + [
        f"rec.p{index}.ih5" for index in range(1, 13)
    ]
    assert [container.status for container in check.containers] == ["ok"] * 7 + ["damaged"] + [
        "ok"
    ] * 5


def sparse_containers(directory: Path, sizes: dict[str, int]) -> list[Path]:
    """One base container per record name, of the given size (sparse: only listed, never
    read, by a plan)."""
    directory.mkdir()
    for name, size in sizes.items():
        with open(directory / f"{name}.ih5", "wb") as container:
            container.truncate(size)
    return [directory / name for name in sizes]


def task_sizes(tmp_path: Path, sizes: dict[str, int]) -> list[list[int]]:
    """The sizes of the containers in each task the plan makes, in MiB."""
    plan = plan_verify(sparse_containers(tmp_path / "archive", sizes))
    return [[item.size // MIB for item in task] for task in plan.tasks()]


def test_many_small_containers_are_spread_over_16_tasks_of_equal_size(tmp_path: Path) -> None:
    """64 records of 2 MiB (benchmarks/bench_scale.py --quick): 2 or 4 workers get the same
    number of bytes and finish together, and 16 tasks cost the caller little."""
    tasks = task_sizes(tmp_path, {f"r{index:02d}": 2 * MIB for index in range(64)})
    assert tasks == [[2, 2, 2, 2]] * 16


def test_much_to_hash_goes_in_tasks_of_at_most_16_mib(tmp_path: Path) -> None:
    tasks = task_sizes(tmp_path, {f"r{index:02d}": 8 * MIB for index in range(64)})
    assert tasks == [[8, 8]] * 32


def test_a_container_of_16_mib_or_more_is_a_task_alone_and_starts_first(tmp_path: Path) -> None:
    sizes = {"huge": 40 * MIB, "big": 16 * MIB} | {f"small{index}": MIB for index in range(8)}
    assert task_sizes(tmp_path, sizes) == [[40], [16], [1] * 4, [1] * 4]


def test_the_plan_reads_nothing_from_the_containers(tmp_path: Path) -> None:
    """The sizes come from the listing: files that are not containers at all plan fine."""
    records = sparse_containers(tmp_path / "archive", {"one": 100, "two": 200})
    plan = plan_verify([*records, tmp_path / "archive" / "absent"])
    assert [record.error for record in plan.records[:2]] == [None, None]
    assert plan.bytes == 300
    assert plan.records[2].error is not None and "no IH5 containers of absent" in (
        plan.records[2].error
    )


CALLER = """
import json, sys
from ih5.pack import verify_many

archive = sys.argv[1]
opened = []

def note(event, args):
    if event == "open" and str(args[0]).startswith(archive):
        opened.append(str(args[0]))

sys.addaudithook(note)
checks = verify_many([f"{archive}/rec"], jobs=2)
print(json.dumps({"ok": [check.ok for check in checks], "opened": opened}))
"""


def test_only_the_workers_open_the_containers_the_caller_lists_the_directory(
    tmp_path: Path,
) -> None:
    """The calling process's share of the work is what 2 workers cannot split: it reads
    no user block (the tasks do, once, and hand them back for the chain check)."""
    record = record_with_small_patches(tmp_path, patches=2)
    run = subprocess.run(
        [sys.executable, "-c", CALLER, str(record.parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(run.stdout) == {"ok": [True], "opened": []}


def test_a_broken_chain_is_named_for_its_record_and_each_container_still_hashed(
    tmp_path: Path,
) -> None:
    record = record_with_small_patches(tmp_path, patches=2)
    (record.parent / "rec.p1.ih5").unlink()
    with CountingPool() as pool:
        (check,) = verify_many([record], executor=pool)
    assert [(Path(c.container).name, c.status) for c in check.containers] == [
        ("rec.ih5", "ok"),
        ("rec.p2.ih5", "ok"),
    ]
    assert not check.ok
    assert check.error is not None and "patch_index 1 is missing" in check.error


def test_a_container_without_a_readable_user_block_is_damaged_and_the_others_checked(
    tmp_path: Path,
) -> None:
    record = record_with_small_patches(tmp_path, patches=2)
    with open(record.parent / "rec.p1.ih5", "r+b") as damaged:
        damaged.write(b"\x00" * 64)
    with CountingPool() as pool:
        (check,) = verify_many([record], executor=pool)
    assert [(Path(c.container).name, c.status) for c in check.containers] == [
        ("rec.ih5", "ok"),
        ("rec.p1.ih5", "damaged"),
        ("rec.p2.ih5", "ok"),
    ]
    assert check.error is None
    assert len(check.errors()) == 1 and "rec.p1.ih5" in check.errors()[0]


def test_checks_come_in_chain_order_from_the_user_blocks_not_the_file_names(
    tmp_path: Path,
) -> None:
    """A patch whose file (and manifest) was renamed past its successor is still checked in
    its place."""
    record = record_with_small_patches(tmp_path, patches=2)
    for suffix in ("", MANIFEST_SUFFIX):
        (record.parent / f"rec.p1.ih5{suffix}").rename(record.parent / f"rec.p9.ih5{suffix}")
    with CountingPool() as pool:
        (check,) = verify_many([record], executor=pool)
    assert [Path(c.container).name for c in check.containers] == [
        "rec.ih5",
        "rec.p9.ih5",
        "rec.p2.ih5",
    ]
    assert check.ok, check.errors()
