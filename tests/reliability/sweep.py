"""Sweeping an operation: a dry run counts its injection points, then one trial per point.

Each trial runs the operation on a fresh copy of the starting directory in a
forked child, with an error at its n-th file operation (once, or from then
on: a full disk) or a SIGKILL right before it, and then checks in the parent:

- the child ended as the fault says: killed, or returned / raised a typed
  error (an ``Ih5Error`` or ``OSError``), never something else;
- a reader sees the old state (the start) or the new one (the dry run's),
  never a third; which one is fixed by where the fault hit: before the
  operation's commit point (the rename that publishes the new state) a
  reader sees the old state, after it the new one; an operation that raised
  left the old state, unless only the directory fsync after the commit
  point failed, which cannot be undone; one that handled the error went on
  to the new state;
- a later writer can go on (``Scenario.resume``) and finds the state the
  reader saw, or the new one where it rolls a sealed commit forward;
- after it, nothing is left that ih5 should have removed.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .faults import Fault, Mode, Outcome, run_trial
from .states import copy_tree, garbage
from .stats import REPORT, SweepRow

CI_POINTS = 12
"""Points tried per operation and mode in the CI-sized run (``--long`` tries every one)."""


@dataclass(frozen=True)
class Scenario:
    """An operation under test and how to look at what it leaves."""

    name: str
    build: Callable[[Path], object]
    """Create the starting state inside an empty directory."""
    operation: Callable[[Path], object]
    """The operation under test, run on a copy of the starting directory."""
    observe: Callable[[Path], Any]
    """What a reader sees (ABSENT or a state); checks the files' own consistency too."""
    resume: Callable[[Path], Any]
    """A later writer continues; returns the state it found before changing it."""
    commit: str | None
    """The file name whose rename publishes the new state; None if the state never changes."""
    garbage_in: Callable[[Path], list[Path]] = lambda root: [root]
    """The directories to check for leftovers after the later writer."""
    record_dirs: bool = True
    """Whether those directories hold records (a manifest there needs its container)."""


def kind_of(label: str) -> str:
    """The kind of an injection point label (``os.replace``, ``h5py.close``, ``write``)."""
    return label.split(" ", 1)[0].split("(", 1)[0]


def commit_index(labels: Sequence[str], name: str | None) -> int | None:
    """1-based number of the last publish (link or rename) onto ``name`` (the commit point)."""
    if name is None:
        return None
    hits = [
        number
        for number, label in enumerate(labels, 1)
        if kind_of(label) in ("os.replace", "os.rename", "os.link") and label.split()[-1] == name
    ]
    assert hits, f"the dry run never published anything onto {name}: {labels}"
    return hits[-1]


def choose_points(labels: Sequence[str], commit: int | None, full: bool, seed: str) -> list[int]:
    """Every point (``full``), or a sample: the ends, around the commit, one per kind, random."""
    count = len(labels)
    if full or count <= CI_POINTS:
        return list(range(1, count + 1))
    chosen = {1, count}
    if commit is not None:
        chosen |= {commit - 1, commit, commit + 1} & set(range(1, count + 1))
    rng = random.Random(seed)
    by_kind: dict[str, list[int]] = {}
    for number, label in enumerate(labels, 1):
        by_kind.setdefault(kind_of(label), []).append(number)
    for numbers in by_kind.values():
        if len(chosen) < CI_POINTS:
            chosen.add(rng.choice(numbers))
    rest = sorted(set(range(1, count + 1)) - chosen)
    chosen |= set(rng.sample(rest, min(len(rest), max(0, CI_POINTS - len(chosen)))))
    return sorted(chosen)


def _is_directory_sync(label: str, directory_names: set[str]) -> bool:
    return kind_of(label) in ("os.open", "os.fsync") and label.split()[-1] in directory_names


def _classify(
    row: SweepRow,
    outcome: Outcome,
    fault: Fault,
    commit: int | None,
    seen: Any,
    old: Any,
    new: Any,
    directories: set[str],
) -> None:
    """Check the child's end and the state a reader sees against where the fault hit."""
    where = f"{row.operation}: {fault.describe()} ({outcome.fired})"
    assert seen in (old, new), f"{where}: a reader sees a third state: {seen!r}"
    assert outcome.typed, f"{where}: raised an untyped error: {outcome.error}"
    fired = outcome.fired is not None
    if fault.mode == "kill":
        assert outcome.killed == fired, f"{where}: exit code {outcome.exitcode}"
        row.kills += fired
    else:
        assert outcome.exitcode == 0, f"{where}: exit code {outcome.exitcode}"
        row.injected += fired
        row.swallowed += fired and not outcome.raised
    if fired:
        row.kinds.add(kind_of(outcome.fired or ""))
    # Before the commit point the old state, after it the new one; an error that the
    # operation handled (did not raise) must not have stopped it.
    published = commit is None or not fired or fault.at > commit
    expected = new if published or (fault.mode != "kill" and not outcome.raised) else old
    if fault.mode != "kill" and fired and outcome.raised and published and commit is not None:
        # The new state is visible already: only its durability step may still fail
        # (a cleanup failing after it on a full disk carries that failure as its context).
        syncs = [label for label in outcome.escaped if _is_directory_sync(label, directories)]
        assert syncs, f"{where}: raised ({outcome.error}) after its new state was published"
        row.late_raise += 1
    assert seen == expected, (
        f"{where}: a reader sees the {'new' if seen == new else 'old'} state, expected the "
        f"{'new' if expected == new else 'old'} one (error: {outcome.error})"
    )
    row.old += seen == old and old != new
    row.new += seen == new


def _trial(
    scenario: Scenario,
    row: SweepRow,
    fault: Fault,
    start: Path,
    trial: Path,
    expected: tuple[Any, Any, int | None],
    labels: Sequence[str],
) -> None:
    old, new, commit = expected
    copy_tree(start, trial)
    outcome = run_trial(partial(scenario.operation, trial), fault)
    if outcome.fired == "killed":
        outcome.fired = labels[fault.at - 1]
    try:
        seen = scenario.observe(trial)
        directories = {path.name for path in scenario.garbage_in(trial)}
        _classify(row, outcome, fault, commit, seen, old, new, directories)
        found = scenario.resume(trial)
        assert found == seen or (seen == old and found == new), (
            f"{row.operation}: {fault.describe()}: the next writer found another state "
            "than the reader"
        )
    except Exception:
        # Failing to open or to continue counts too: it would need manual repair.
        row.inconsistent += 1
        raise
    row.forward += found != seen
    left = [
        f"{directory.name}/{name}"
        for directory in scenario.garbage_in(trial)
        for name in garbage(directory, manifests_need_containers=scenario.record_dirs)
    ]
    row.remains |= {
        name
        for directory in scenario.garbage_in(trial)
        for name in os.listdir(directory)
        if not name.endswith((".ih5", ".ih5mf.json", ".json")) and (directory / name).is_file()
    }
    row.garbage += bool(left)
    assert not left, f"{row.operation}: {fault.describe()}: the next writer left {left}"


def sweep(scenario: Scenario, workdir: Path, mode: Mode, full: bool) -> SweepRow:
    """Count the operation's injection points, then fault each chosen one in turn."""
    row = REPORT.sweep(scenario.name, mode)
    start = workdir / "start"
    start.mkdir(parents=True)
    scenario.build(start)
    old = scenario.observe(start)
    dry = copy_tree(start, workdir / "dry")
    dry_run = run_trial(partial(scenario.operation, dry), Fault("count"))
    assert dry_run.error is None, f"{scenario.name}: the dry run failed: {dry_run.error}"
    new = scenario.observe(dry)
    if scenario.commit is not None:
        assert new != old, f"{scenario.name}: the dry run changed nothing"
    commit = commit_index(dry_run.labels, scenario.commit)
    row.points = dry_run.count
    shutil.rmtree(dry)
    for number in choose_points(dry_run.labels, commit, full, f"{scenario.name}-{mode}"):
        # A full disk is ENOSPC; a single failure alternates between EIO and ENOSPC.
        code = errno.EIO if number % 2 and mode == "error" else errno.ENOSPC
        trial = workdir / f"trial{number}"
        row.tried += 1
        _trial(
            scenario,
            row,
            Fault(mode, number, code),
            start,
            trial,
            (old, new, commit),
            dry_run.labels,
        )
        shutil.rmtree(trial)
    return row
