"""``verify_many``: re-hash the containers of many records, in tasks of containers.

The calling process only lists each directory once and takes the containers' sizes:
what it does, 2 workers on 2 cores cannot share. The tasks read the user blocks, hash
the payloads and check the manifests, wherever the executor runs them, so one long
chain is spread over the workers as well as many records, and no file is read twice.
Each task returns the user blocks it read, and the caller checks every chain from
those (no I/O). Containers share tasks of about equal size (:func:`batch_containers`),
so that an engine's cost per task does not outweigh the hashing and the workers finish
together. Tasks only read: running one again changes nothing. Every byte is hashed on
every run (the verified-hashsum cache is never consulted).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ih5.errors import Ih5Error, RecordNotFoundError
from ih5.format import (
    ContainerRef,
    IH5UserBlock,
    parse_container_name,
    read_user_block_with_size,
    split_record_path,
    validate_chain,
)
from ih5.fs import hashsum_file, parse_hashsum
from ih5.manifest import check_manifest
from ih5.pack._tasks import run_tasks

Status = Literal["ok", "damaged", "missing", "failed"]


@dataclass(frozen=True)
class ContainerItem:
    """One container to check: its record (as given) and its file, as strings."""

    record: str
    container: str
    size: int


@dataclass(frozen=True)
class ContainerCheck:
    """The verdict on one container: ``ok``, ``damaged``, ``missing`` or ``failed`` (the task
    could not finish: its worker died, or an unexpected error), with the error."""

    record: str
    container: str
    size: int
    status: Status
    error: str | None = None
    user_block: IH5UserBlock | None = field(default=None, compare=False, repr=False)
    """The user block the task read (None if it could not): the caller checks the chain
    from these without opening the file again."""
    block_size: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class RecordCheck:
    """The verdict on one record: its containers' checks, or the error that stopped the plan
    (no containers, a broken chain)."""

    record: str
    containers: tuple[ContainerCheck, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Every container (and the manifest it names) matches its user block."""
        return self.error is None and all(check.status == "ok" for check in self.containers)

    @property
    def size(self) -> int:
        """Bytes of the record's containers."""
        return sum(check.size for check in self.containers)

    def errors(self) -> list[str]:
        """Every problem found, one line each."""
        found = [] if self.error is None else [self.error]
        return found + [check.error for check in self.containers if check.error is not None]


def check_container(item: ContainerItem) -> ContainerCheck:
    """Re-hash one container's payload and the manifest it names against its user block."""
    path = Path(item.container)
    user_block: IH5UserBlock | None = None
    block_size = 0

    def verdict(status: Status, error: str | None = None) -> ContainerCheck:
        return ContainerCheck(
            item.record, item.container, item.size, status, error, user_block, block_size
        )

    try:
        user_block, block_size = read_user_block_with_size(path)
        expected = user_block.hdf5_hashsum
        if expected is not None:
            algorithm, _ = parse_hashsum(expected)
            actual = hashsum_file(path, algorithm, skip=block_size)
            if actual != expected:
                return verdict(
                    "damaged",
                    f"{path} is damaged: its payload hashes to {actual} but its user block "
                    f"says {expected}; restore the file from a backup or a copy",
                )
        check_manifest(path, user_block)
    except FileNotFoundError:
        return verdict("missing", f"{path} is missing; restore it from a backup or a copy")
    except Ih5Error as exc:
        return verdict("damaged", str(exc))
    except OSError as exc:
        return verdict("damaged", f"cannot read {path}: {exc.strerror or exc}")
    return verdict("ok")


def _failed(item: ContainerItem, error: str) -> ContainerCheck:
    return ContainerCheck(item.record, item.container, item.size, "failed", error)


def containers_by_record(directory: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """The container files in ``directory`` by record name, each list by patch index.

    One listing for every record there, by the rule ``discover_containers`` applies
    to one (names only; other files are ignored); a missing directory holds none.
    """
    found: dict[str, list[tuple[int, Path]]] = {}
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                parsed = parse_container_name(entry.name)
                if parsed is not None and entry.is_file():
                    found.setdefault(parsed[0], []).append((parsed[1], Path(entry.path)))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {name: [path for _, path in sorted(paths)] for name, paths in found.items()}


def _plan_one(record: str, listed: dict[Path, dict[str, list[Path]]]) -> RecordPlan:
    """The containers of ``record``, in file-name order, with their sizes (no file is opened).

    ``listed`` caches each directory's listing: a thousand records in one directory
    cost one listing, not a thousand. The chain is checked later, from the user
    blocks the tasks read.
    """
    try:
        directory, name = split_record_path(record)
        if directory not in listed:
            listed[directory] = containers_by_record(directory)
        paths = listed[directory].get(name, [])
        if not paths:
            raise RecordNotFoundError(
                f"no IH5 containers of {name} in {directory}; check the record's directory "
                "and name",
                record,
            )
        items = [ContainerItem(record, str(path), os.stat(path).st_size) for path in paths]
    except Ih5Error as exc:
        return RecordPlan(record, error=f"{record}: {exc}")
    except OSError as exc:
        return RecordPlan(record, error=f"cannot read {record}: {exc.strerror or exc}")
    return RecordPlan(record, tuple(items))


@dataclass(frozen=True)
class RecordPlan:
    """The containers of one record to check, or why they cannot be (no containers)."""

    record: str
    items: tuple[ContainerItem, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class VerifyPlan:
    """What ``verify_many`` will hash: every record's containers."""

    records: tuple[RecordPlan, ...]

    @property
    def bytes(self) -> int:
        """Bytes of all containers to hash."""
        return sum(item.size for plan in self.records for item in plan.items)

    def tasks(self) -> list[tuple[ContainerItem, ...]]:
        """The containers grouped as the tasks will hash them (:func:`batch_containers`)."""
        return batch_containers([item for plan in self.records for item in plan.items])


def plan_verify(records: Iterable[str | os.PathLike[str]]) -> VerifyPlan:
    """Find the containers of each record (``DIR/NAME``) and their sizes, by one listing
    per directory; nothing is read from the containers here."""
    listed: dict[Path, dict[str, list[Path]]] = {}
    return VerifyPlan(tuple(_plan_one(os.fspath(record), listed) for record in records))


TASK_BYTES = 16 << 20
"""The most a task hashes when there is much to hash; a container this large is a task alone."""
MIN_TASKS = 16
"""Fewer bytes than that many full tasks are still spread over this many tasks of about equal
size (so that 2, 4 or 8 workers get several each and finish together)..."""
MIN_TASK_BYTES = 4 << 20
"""...unless that makes them smaller than this. A task costs a local pool about 1 ms of
CPU, half of it in the calling process, which shares the cores with the workers (a Dask
task several ms); 4 MiB take about 4 ms to hash. For 64 records of 2 MiB
(benchmarks/bench_scale.py --quick), 64 tasks cost the caller about 25 ms of CPU, 16
tasks about 13 ms, out of about 160 ms of hashing."""


def batch_containers(items: Iterable[ContainerItem]) -> list[tuple[ContainerItem, ...]]:
    """``items`` in tasks, largest task first: a container of TASK_BYTES or more alone, the
    others in tasks of about equal size (each container, largest first, joins the smallest
    task so far), as many as TASK_BYTES asks for, or MIN_TASKS of at least MIN_TASK_BYTES."""
    ordered = sorted(items, key=lambda item: -item.size)
    alone: list[tuple[ContainerItem, ...]] = [
        (item,) for item in ordered if item.size >= TASK_BYTES
    ]
    rest = [item for item in ordered if item.size < TASK_BYTES]
    if not rest:
        return alone
    total = sum(item.size for item in rest)
    count = max(-(-total // TASK_BYTES), min(MIN_TASKS, len(rest), total // MIN_TASK_BYTES), 1)
    groups: list[list[ContainerItem]] = [[] for _ in range(count)]
    smallest = [(0, index) for index in range(count)]  # (bytes so far, group): a heap
    for item in rest:
        size, index = heapq.heappop(smallest)
        groups[index].append(item)
        heapq.heappush(smallest, (size + item.size, index))
    shared = sorted(groups, key=lambda group: -sum(item.size for item in group))
    return alone + [tuple(group) for group in shared]


def check_containers(batch: tuple[ContainerItem, ...]) -> tuple[ContainerCheck, ...]:
    """One task: :func:`check_container` for each container of ``batch``."""
    return tuple(check_container(item) for item in batch)


def _failed_batch(batch: tuple[ContainerItem, ...], error: str) -> tuple[ContainerCheck, ...]:
    return tuple(_failed(item, error) for item in batch)


def _record_check(plan: RecordPlan, checks: list[ContainerCheck]) -> RecordCheck:
    """One record's verdict: its containers' checks in chain order, and what is wrong with
    the chain, judged from the user blocks the tasks read (a container whose block could
    not be read has its own error, and its chain is not judged)."""
    if plan.error is not None:
        return RecordCheck(plan.record, error=plan.error)
    refs = [
        ContainerRef(Path(check.container), check.user_block, check.block_size)
        for check in checks
        if check.user_block is not None
    ]
    if len(refs) < len(checks):
        return RecordCheck(plan.record, tuple(checks))
    by_path = {check.container: check for check in checks}
    try:
        chain = validate_chain(refs, verify_hashsums=False)
    except Ih5Error as exc:
        return RecordCheck(plan.record, tuple(checks), f"{plan.record}: {exc}")
    return RecordCheck(plan.record, tuple(by_path[str(ref.path)] for ref in chain))


def verify_plan(
    plan: VerifyPlan,
    *,
    executor: Executor | None = None,
    jobs: int = 1,
    on_done: Callable[[ContainerCheck], None] | None = None,
) -> list[RecordCheck]:
    """Hash every container of ``plan`` in the tasks of :meth:`VerifyPlan.tasks` (large
    containers alone, largest first); one check per record, its chain judged from the
    user blocks the tasks read."""

    def done(checks: tuple[ContainerCheck, ...]) -> None:
        for check in checks:
            if on_done is not None:
                on_done(check)

    batches = run_tasks(
        check_containers,
        plan.tasks(),
        _failed_batch,
        executor=executor,
        jobs=jobs,
        on_done=done,
    )
    by_container = {check.container: check for batch in batches for check in batch}
    return [
        _record_check(record, [by_container[item.container] for item in record.items])
        for record in plan.records
    ]


def verify_many(
    records: Iterable[str | os.PathLike[str]],
    *,
    executor: Executor | None = None,
    jobs: int = 1,
    on_done: Callable[[ContainerCheck], None] | None = None,
) -> list[RecordCheck]:
    """Check every container of every record (``DIR/NAME``), small ones grouped into tasks.

    :func:`plan_verify`, then :func:`verify_plan`. Without ``executor``, a local
    pool of ``jobs`` processes hashes. ``on_done`` sees each container's check as
    it arrives. Returns one check per record, in the order given; a damaged
    record never stops the others.
    """
    return verify_plan(plan_verify(records), executor=executor, jobs=jobs, on_done=on_done)
