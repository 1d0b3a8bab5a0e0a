"""``verify_many``: re-hash the containers of many records, one task per container (small
ones grouped).

The calling process reads only user blocks (a few KiB per container) to check
each chain; the tasks then hash the payloads, wherever the executor runs them,
so one long chain is spread over the workers as well as many records. Small
containers (patches) share a task, so that an engine's cost per task does not
outweigh the hashing. Tasks only read: running one again changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ih5.errors import Ih5Error
from ih5.format import (
    load_refs,
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

    def verdict(status: Status, error: str | None = None) -> ContainerCheck:
        return ContainerCheck(item.record, item.container, item.size, status, error)

    path = Path(item.container)
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
    """The containers of ``record`` in chain order, its chain checked by user blocks only.

    ``listed`` caches each directory's listing: a thousand records in one directory
    cost one listing, not a thousand.
    """
    try:
        directory, name = split_record_path(record)
        if directory not in listed:
            listed[directory] = containers_by_record(directory)
        refs = validate_chain(load_refs(listed[directory].get(name, [])), verify_hashsums=False)
        items = [ContainerItem(record, str(ref.path), os.stat(ref.path).st_size) for ref in refs]
    except Ih5Error as exc:
        return RecordPlan(record, error=f"{record}: {exc}")
    except OSError as exc:
        return RecordPlan(record, error=f"cannot read {record}: {exc.strerror or exc}")
    return RecordPlan(record, tuple(items))


@dataclass(frozen=True)
class RecordPlan:
    """The containers of one record to check, or why its chain cannot be checked."""

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


def plan_verify(records: Iterable[str | os.PathLike[str]]) -> VerifyPlan:
    """Find and chain the containers of each record (``DIR/NAME``) from their user blocks."""
    listed: dict[Path, dict[str, list[Path]]] = {}
    return VerifyPlan(tuple(_plan_one(os.fspath(record), listed) for record in records))


TASK_BYTES = 16 << 20
"""Small containers are hashed together in tasks of about this many bytes: a task costs an
engine milliseconds (a Dask task several), a 100 KiB patch hashes in a tenth of one."""
MIN_TASKS = 64
"""Grouping never makes fewer tasks than this (or one per container, if fewer)."""


def _batches(items: list[ContainerItem]) -> list[tuple[ContainerItem, ...]]:
    """``items`` in tasks, largest first: a container alone, or small ones together as long
    as they stay within the batch size (containers of about the same size stay apart)."""
    total = sum(item.size for item in items)
    target = max(1, min(TASK_BYTES, total // MIN_TASKS))
    batches: list[tuple[ContainerItem, ...]] = []
    current: list[ContainerItem] = []
    size = 0
    for item in sorted(items, key=lambda item: -item.size):
        if current and size + item.size > target:
            batches.append(tuple(current))
            current, size = [], 0
        current.append(item)
        size += item.size
    if current:
        batches.append(tuple(current))
    return batches


def check_containers(batch: tuple[ContainerItem, ...]) -> tuple[ContainerCheck, ...]:
    """One task: :func:`check_container` for each container of ``batch``."""
    return tuple(check_container(item) for item in batch)


def _failed_batch(batch: tuple[ContainerItem, ...], error: str) -> tuple[ContainerCheck, ...]:
    return tuple(_failed(item, error) for item in batch)


def verify_plan(
    plan: VerifyPlan,
    *,
    executor: Executor | None = None,
    jobs: int = 1,
    on_done: Callable[[ContainerCheck], None] | None = None,
) -> list[RecordCheck]:
    """Hash every container of ``plan``, small ones grouped into tasks of about TASK_BYTES
    (large ones alone, largest first); one check per record."""
    items = [item for record in plan.records for item in record.items]

    def done(checks: tuple[ContainerCheck, ...]) -> None:
        for check in checks:
            if on_done is not None:
                on_done(check)

    batches = run_tasks(
        check_containers,
        _batches(items),
        _failed_batch,
        executor=executor,
        jobs=jobs,
        on_done=done,
    )
    by_container = {check.container: check for batch in batches for check in batch}
    return [
        RecordCheck(
            record.record,
            tuple(by_container[item.container] for item in record.items),
            record.error,
        )
        for record in plan.records
    ]


def verify_many(
    records: Iterable[str | os.PathLike[str]],
    *,
    executor: Executor | None = None,
    jobs: int = 1,
    on_done: Callable[[ContainerCheck], None] | None = None,
) -> list[RecordCheck]:
    """Check every container of every record (``DIR/NAME``), one task per container.

    :func:`plan_verify`, then :func:`verify_plan`. Without ``executor``, a local
    pool of ``jobs`` processes hashes. ``on_done`` sees each container's check as
    it arrives. Returns one check per record, in the order given; a damaged
    record never stops the others.
    """
    return verify_plan(plan_verify(records), executor=executor, jobs=jobs, on_done=on_done)
