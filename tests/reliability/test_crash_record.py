"""Records under injected faults: creation, commits, discards and merges end old or new.

Each test sweeps one operation under one fault mode: an error (EIO/ENOSPC)
at its n-th file operation, errors from the n-th on (a full disk), or a
SIGKILL right before it (see ``sweep.py`` for the invariants checked after
every trial). The CI-sized run samples the points; ``--long`` tries each.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ih5 import IH5Dataset, IH5MFRecord, IH5Record

from .faults import Mode
from .states import ABSENT, continue_record, observe_record
from .sweep import Scenario, sweep

MODES = ["error", "sticky", "kill"]


def build_record(directory: Path, *, manifest: bool = False, patches: int = 1) -> Path:
    """A base holding every kind of node, then ``patches`` small patches."""
    kind = IH5MFRecord if manifest else IH5Record
    record = directory / "rec"
    with kind(record, "w") as rec:
        rec["old"] = np.arange(5)
        rec["kept"] = np.arange(10, 20)
        rec["kept"].attrs["unit"] = "m"
        rec.create_group("grp/sub").attrs["level"] = 1
        rec["grp/sub/text"] = "hello"
        rec.attrs["title"] = "base"
    for index in range(patches):
        with kind(record, "r+") as rec:
            rec[f"p{index}"] = np.full(3, index)
            rec.attrs["title"] = f"patch {index}"
    return record


def change(rec: IH5Record) -> None:
    """One change set with every kind of change: add, delete, substitute, set attrs, edit data."""
    rec.create_dataset("new/data", data=np.arange(300), chunks=True, compression="gzip")
    rec["new/data"].attrs["unit"] = "s"
    del rec["old"]
    del rec["grp"]
    rec.create_group("grp").attrs["level"] = 2
    rec.attrs["title"] = "new"
    kept = rec["kept"]
    assert isinstance(kept, IH5Dataset)
    kept.copy_into_patch()[0] = -1


def create(directory: Path) -> None:
    with IH5Record(directory / "rec", "w", lock_timeout=5) as rec:
        rec["data"] = np.arange(50)
        rec.create_group("g").attrs["k"] = 1
        rec.attrs["title"] = "created"


def commit(directory: Path, *, manifest: bool) -> None:
    kind = IH5MFRecord if manifest else IH5Record
    with kind(directory / "rec", "r+", lock_timeout=5) as rec:
        change(rec)


def discard(directory: Path) -> None:
    with IH5Record(directory / "rec", "r+", lock_timeout=5) as rec:
        change(rec)
        rec.discard_patch()


def merge(directory: Path, *, manifest: bool) -> None:
    kind = IH5MFRecord if manifest else IH5Record
    with kind(directory / "rec") as rec:
        rec.merge_files(directory / "merged.ih5")


def observe_merge(directory: Path, *, manifest: bool) -> tuple[Any, Any]:
    """The source record (never changed by a merge) and the merged file, if any."""
    source = observe_record(directory / "rec", manifest=manifest)
    return source, observe_record(directory / "merged", manifest=manifest)


def resume_merge(directory: Path, *, manifest: bool) -> tuple[Any, Any]:
    """Merge again if the merged file is missing, then commit a patch on top of it."""
    source, merged = observe_merge(directory, manifest=manifest)
    if merged == ABSENT:
        merge(directory, manifest=manifest)
        merged = observe_record(directory / "merged", manifest=manifest)
    continue_record(directory / "merged", manifest=manifest)
    return source, merged


def record_scenario(
    name: str, operation: Any, commit_name: str | None, *, manifest: bool = False
) -> Scenario:
    """An operation on the record ``rec`` of ``build_record`` (base and one patch)."""
    return Scenario(
        name=name,
        build=partial(build_record, manifest=manifest),
        operation=operation,
        observe=lambda d: observe_record(d / "rec", manifest=manifest),
        resume=lambda d: continue_record(d / "rec", manifest=manifest),
        commit=commit_name,
    )


@pytest.mark.parametrize("mode", MODES)
def test_record_create_under_faults_leaves_no_record_or_the_new_one(
    tmp_path: Path, mode: Mode, long_run: bool
) -> None:
    scenario = Scenario(
        name="IH5Record create (w)",
        build=lambda d: None,
        operation=create,
        observe=lambda d: observe_record(d / "rec"),
        resume=lambda d: continue_record(d / "rec"),
        commit="rec.ih5",
    )
    sweep(scenario, tmp_path, mode, long_run)


@pytest.mark.parametrize("mode", MODES)
def test_record_commit_under_faults_leaves_old_or_new_state(
    tmp_path: Path, mode: Mode, long_run: bool
) -> None:
    scenario = record_scenario("IH5Record commit", partial(commit, manifest=False), "rec.p2.ih5")
    sweep(scenario, tmp_path, mode, long_run)


@pytest.mark.parametrize("mode", MODES)
def test_mfrecord_commit_under_faults_leaves_old_or_new_state_with_its_manifest(
    tmp_path: Path, mode: Mode, long_run: bool
) -> None:
    scenario = record_scenario(
        "IH5MFRecord commit", partial(commit, manifest=True), "rec.p2.ih5", manifest=True
    )
    sweep(scenario, tmp_path, mode, long_run)


@pytest.mark.parametrize("mode", MODES)
def test_record_discard_under_faults_leaves_the_old_state(
    tmp_path: Path, mode: Mode, long_run: bool
) -> None:
    scenario = record_scenario("IH5Record discard", discard, None)
    sweep(scenario, tmp_path, mode, long_run)


@pytest.mark.parametrize("manifest", [False, True], ids=["IH5Record", "IH5MFRecord"])
@pytest.mark.parametrize("mode", MODES)
def test_merge_files_under_faults_leaves_no_target_or_a_complete_one(
    tmp_path: Path, mode: Mode, manifest: bool, long_run: bool
) -> None:
    scenario = Scenario(
        name=f"{'IH5MFRecord' if manifest else 'IH5Record'}.merge_files",
        build=partial(build_record, manifest=manifest, patches=2),
        operation=partial(merge, manifest=manifest),
        observe=partial(observe_merge, manifest=manifest),
        resume=partial(resume_merge, manifest=manifest),
        commit="merged.ih5",
    )
    sweep(scenario, tmp_path, mode, long_run)
