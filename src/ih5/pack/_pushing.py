"""``push_many``: push many local records into one remote prefix, one task per record.

Each task is :func:`ih5.record.push` of the one record it owns: it verifies
the local record, then publishes, create-if-absent, the containers and
manifests that ``PREFIX/NAME`` lacks. Running a task again (an engine's retry
after its worker died) finds what the first run published and copies only
the rest; a copy running at the same time loses the race for a name and
pushes again, which then finds that name present. No file is published twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ih5.errors import ConflictError, Ih5Error
from ih5.format import split_record_path
from ih5.pack._audit import containers_by_record
from ih5.pack._tasks import run_tasks
from ih5.record import TransferResult, push
from ih5.store import RemoteOptions

PUSH_ATTEMPTS = 5
"""How often a task pushes again after another copy of it published a file first."""


@dataclass(frozen=True)
class PushItem:
    """One record to push: the local record (``DIR/NAME``) and the remote record's URL, as
    strings, with the bytes of the local containers as the plan saw them."""

    record: str
    url: str
    bytes: int = 0


@dataclass(frozen=True)
class PushOutcome:
    """The result for one record: what its push copied, or the error that stopped it."""

    record: str
    url: str
    result: TransferResult | None = None
    error: str | None = None
    bytes: int = 0
    """The local containers' bytes in the plan (for progress)."""


def record_url(prefix: str, record: str | os.PathLike[str]) -> str:
    """``PREFIX/NAME``: where ``push_many`` puts the local record ``DIR/NAME``."""
    _, name = split_record_path(record)
    return f"{prefix.rstrip('/')}/{name}"


def plan_push(records: Iterable[str | os.PathLike[str]], prefix: str) -> list[PushItem]:
    """One item per local record (``DIR/NAME``): its URL below ``prefix`` and its size.

    Each directory is listed once, however many of its records are pushed.
    Two records of one name would be pushed to one URL: refused (ValueError).
    """
    paths = [Path(record) for record in records]
    listed: dict[Path, dict[str, list[Path]]] = {}
    items = []
    seen: dict[str, Path] = {}
    for path in paths:
        directory, name = split_record_path(path)
        if name in seen:
            raise ValueError(
                f"{seen[name]} and {path} would both be pushed to {record_url(prefix, path)}; "
                "push records of one name to different prefixes"
            )
        seen[name] = path
        if directory not in listed:
            listed[directory] = containers_by_record(directory)
        size = 0
        for container in listed[directory].get(name, []):
            try:
                size += container.stat().st_size
            except OSError:
                continue  # the task reports it
        items.append(PushItem(str(path), record_url(prefix, path), size))
    return items


def _failure(item: PushItem, error: str) -> PushOutcome:
    return PushOutcome(item.record, item.url, error=error, bytes=item.bytes)


def push_item(item: PushItem, remote: RemoteOptions | None = None) -> PushOutcome:
    """Push one record: the task ``push_many`` runs, safe to run again or twice at once.

    A lost race for a name (another copy of this task published it first) is
    pushed again, which finds the name present; an attempt that fails the same
    way as the one before (another history there) is the record's failure.
    """
    previous = None
    for _ in range(PUSH_ATTEMPTS):
        try:
            result = push(item.record, item.url, remote=remote)
        except ConflictError as exc:
            if str(exc) == previous:
                break
            previous = str(exc)
            continue
        except Ih5Error as exc:
            return _failure(item, str(exc))
        except OSError as exc:
            return _failure(item, f"{exc.strerror or exc}: {exc.filename or item.record}")
        return PushOutcome(item.record, item.url, result=result, bytes=item.bytes)
    return _failure(item, previous or "")


def push_plan(
    items: Iterable[PushItem],
    *,
    executor: Executor | None = None,
    jobs: int = 1,
    remote: RemoteOptions | None = None,
    on_done: Callable[[PushOutcome], None] | None = None,
) -> list[PushOutcome]:
    """Push every item, one task per record on ``executor``; outcomes in item order."""
    listed = list(items)
    # Largest first: the long pushes start early and the short ones fill the gaps.
    order = sorted(range(len(listed)), key=lambda index: -listed[index].bytes)
    if remote is not None and remote.progress is not None:
        raise ValueError("push_many reports progress per record (on_done), not per upload")
    outcomes = run_tasks(
        partial(push_item, remote=remote),
        [listed[index] for index in order],
        _failure,
        executor=executor,
        jobs=jobs,
        on_done=on_done,
    )
    by_index = dict(zip(order, outcomes, strict=True))
    return [by_index[index] for index in range(len(listed))]


def push_many(
    records: Iterable[str | os.PathLike[str]],
    prefix: str,
    *,
    executor: Executor | None = None,
    jobs: int = 1,
    remote: RemoteOptions | None = None,
    on_done: Callable[[PushOutcome], None] | None = None,
) -> list[PushOutcome]:
    """Push each local record ``DIR/NAME`` to ``PREFIX/NAME``, one task per record.

    :func:`plan_push`, then the tasks on ``executor`` (default: a local pool of
    ``jobs`` processes). Failures stay per record; running it again copies only
    what is left. Outcomes come in the order of ``records``.
    """
    return push_plan(
        plan_push(records, prefix), executor=executor, jobs=jobs, remote=remote, on_done=on_done
    )
