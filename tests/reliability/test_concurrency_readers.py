"""Readers that re-open a record while a writer commits patches see committed states only.

The parent plans every patch (small random changes) and models the state
after each one, keyed by patch index. A writer process commits the patches
while reader processes open the record, walk it, and compare what they see
with the model of the patch index they opened.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ih5 import IH5MFRecord, IH5Record

from .faults import FORK
from .processes import workers
from .states import check_manifest, content
from .stats import REPORT

RUN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Change:
    """One change of a patch: add, rewrite or delete a dataset, set an attribute, add a group."""

    kind: str
    path: str
    value: int


def data(value: int) -> list[int]:
    return [value] * (value % 5 + 1)


def plan(rng: random.Random, patches: int) -> list[list[Change]]:
    """Random change sets; each only touches paths that exist at that point."""
    datasets: list[str] = []
    groups: list[str] = []
    changes: list[list[Change]] = []
    for index in range(1, patches + 1):
        step: list[Change] = []
        for number in range(rng.randint(1, 3)):
            value = index * 10 + number
            kinds = ["add", "add", "group"] + ["delete", "rewrite", "attr"] * bool(datasets)
            kind = rng.choice(kinds)
            if kind == "add":
                parent = rng.choice(["", *groups])
                path = f"{parent}d{value}" if not parent else f"{parent}/d{value}"
                datasets.append(path)
            elif kind == "group":
                path = f"g{value}"
                groups.append(path)
            else:
                path = rng.choice(datasets)
                if kind == "delete":
                    datasets.remove(path)
            step.append(Change(kind, path, value))
        changes.append(step)
    return changes


def apply(rec: IH5Record, step: list[Change], index: int) -> None:
    for change in step:
        if change.kind == "add":
            rec[change.path] = np.array(data(change.value), dtype="<i8")
        elif change.kind == "group":
            rec.create_group(change.path).attrs["made"] = change.value
        elif change.kind == "delete":
            del rec[change.path]
        elif change.kind == "rewrite":
            del rec[change.path]
            rec[change.path] = np.array(data(change.value), dtype="<i8")
        else:
            rec[change.path].attrs["v"] = change.value
    rec.attrs["step"] = index


def model_states(changes: list[list[Change]]) -> list[dict[str, Any]]:
    """The state after each patch (index 0: the empty base), as ``content`` shows it."""
    state: dict[str, Any] = {"/": ("group", {"step": 0})}
    states = [dict(state)]
    for index, step in enumerate(changes, 1):
        for change in step:
            if change.kind in ("add", "rewrite"):
                state[change.path] = ("dataset", ("<i8", data(change.value)), {})
            elif change.kind == "group":
                state[change.path] = ("group", {"made": change.value})
            elif change.kind == "delete":
                del state[change.path]
            else:
                kind, values, attrs = state[change.path]
                state[change.path] = (kind, values, {**attrs, "v": change.value})
        state["/"] = ("group", {"step": index})
        states.append(dict(state))
    return states


def write_patches(record: Path, changes: list[list[Change]], kind: type[IH5Record]) -> None:
    with kind(record, "r+", lock_timeout=10) as rec:
        for index, step in enumerate(changes, 1):
            if index > 1:
                rec.create_patch()
            apply(rec, step, index)
            rec.commit_patch()


def read_until_done(
    record: Path, models: list[dict[str, Any]], kind: type[IH5Record], done: Event, out: Path
) -> None:
    """Open, walk and compare in a loop; one more pass after the writer is done."""
    passes = 0
    seen: set[int] = set()
    problems: list[str] = []
    while True:
        last = done.is_set()
        try:
            with kind(record) as rec:
                index = rec.user_block.patch_index
                state = content(rec)
                if isinstance(rec, IH5MFRecord):
                    check_manifest(rec)
        except Exception as exc:  # any failure to open or walk is a finding
            problems.append(f"{type(exc).__name__}: {exc}")
        else:
            seen.add(index)
            if state != models[index]:
                problems.append(f"patch {index}: {state!r} != {models[index]!r}")
        passes += 1
        if last:
            break
    report = {"passes": passes, "seen": sorted(seen), "problems": problems}
    out.write_text(json.dumps(report))


@pytest.mark.parametrize("kind", [IH5Record, IH5MFRecord], ids=["IH5Record", "IH5MFRecord"])
def test_record_readers_during_commits_see_only_committed_states(
    tmp_path: Path, kind: type[IH5Record], long_run: bool
) -> None:
    patches, readers = (300, 4) if long_run else (100, 2)
    row = REPORT.stress_run(f"{kind.__name__} readers during {patches} commits")
    changes = plan(random.Random(20240601), patches)
    models = model_states(changes)
    record = tmp_path / "rec"
    with kind(record, "w") as rec:
        rec.attrs["step"] = 0
    began = time.monotonic()
    done = FORK.Event()
    outs = [tmp_path / f"reader{number}.json" for number in range(readers)]
    with workers(RUN_TIMEOUT) as pool:
        for number, out in enumerate(outs):
            pool.start(f"reader{number}", read_until_done, record, models, kind, done, out)
        pool.start("writer", write_patches, record, changes, kind)
        writer_code = pool.join(["writer"])["writer"]
        done.set()
        codes = pool.join()
    row.seconds = time.monotonic() - began
    reports = [json.loads(out.read_text()) for out in outs if out.exists()]
    problems = [problem for report in reports for problem in report["problems"]]
    row.processes, row.operations = readers + 1, patches
    row.reads = sum(report["passes"] for report in reports)
    row.states = len({index for report in reports for index in report["seen"]})
    row.inconsistent = len(problems) + readers - len(reports)
    assert writer_code == 0
    assert set(codes.values()) == {0}, codes
    assert problems == []
    assert len(reports) == readers
    assert row.states > 2, "the readers saw too few states to test anything"
    with IH5Record(record) as rec:
        assert content(rec) == models[-1]
