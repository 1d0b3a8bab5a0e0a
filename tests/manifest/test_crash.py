"""An IH5MFRecord commit killed at any step leaves the old or the new state, each with its manifest.

A forked child opens the record, writes a patch and commits it; during the
commit it SIGKILLs itself before its n-th call of a step the commit takes
(hashing, writing the manifest, sealing the user block, renaming, fsyncs),
for n = 1, 2, ... until a commit completes. After every kill the record must
open as IH5MFRecord and as IH5Record in the old or the new state with the
manifest of that state, and a new writer must be able to commit on top.
"""

from __future__ import annotations

import builtins
import multiprocessing
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import ih5.record._commit
import ih5.store
from ih5.manifest import IH5MFRecord, IH5Skeleton
from ih5.record import IH5Record
from tests.helpers.killpoints import KillPoint, arm_kill
from tests.record.helpers import untouched

from .helpers import MY_EXTS, build_mf_record, content

FORK = multiprocessing.get_context("fork")
CHILD_TIMEOUT = 30.0
MAX_KILL_POINTS = 200
NEW_EXTS = {"state": "new"}

KILL_POINTS: list[KillPoint] = [
    # The steps of the commit protocol (seal, stage the manifest, publish both), patched
    # where the protocol looks them up ...
    (ih5.record._commit, "hashsum_container"),
    (ih5.record._commit, "write_user_block"),
    (ih5.record._commit, "encode_user_block"),
    (ih5.record._commit, "write_new_file"),
    (ih5.store.LocalStore, "publish"),
    (ih5.store.LocalStore, "sync"),
    (h5py.File, "close"),
    # ... and the system calls inside them.
    (builtins, "open"),
    (os, "open"),
    (os, "write"),
    (os, "close"),
    (os, "fsync"),
    (os, "replace"),
    (os, "link"),
    (os, "unlink"),
]


@pytest.fixture(autouse=True)
def no_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-user cache off: a kill point is the n-th file operation, and cache writes,
    which happen once files are old enough (see ih5.fs._filestate), would shift them."""
    monkeypatch.setenv("IH5_CACHE_DIR", "")


def change(rec: IH5Record, extra_groups: int = 0) -> None:
    """The killed writer's patch."""
    for index in range(extra_groups):
        rec.create_group(f"g{index}").attrs["i"] = index
    rec["new/data"] = np.arange(100)
    rec["new/data"].attrs["unit"] = "s"
    del rec["grp/sub"]
    rec["data"].attrs["unit"] = "km"
    rec.attrs["title"] = "new"


def commit_killed_at(record: Path, n: int, extra_groups: int) -> None:
    """Child process: write the patch, then commit it with the n-th step armed to kill."""
    with IH5MFRecord(record, "r+", lock_timeout=5) as rec:
        change(rec, extra_groups)
        disarm = arm_kill(KILL_POINTS, n)
        rec.commit_patch(manifest_exts=NEW_EXTS)
        disarm()
    os._exit(0)


def run_killed_at(record: Path, n: int, extra_groups: int = 0) -> int | None:
    process = FORK.Process(target=commit_killed_at, args=(record, n, extra_groups), daemon=True)
    process.start()
    process.join(CHILD_TIMEOUT)
    if process.is_alive():
        process.kill()
        process.join()
        pytest.fail(f"the writer killed at step {n} did not end within {CHILD_TIMEOUT} s")
    return process.exitcode


def checked_state(record: Path) -> dict[str, Any]:
    """Open the record both ways; check the manifest describes the state; return the state."""
    with IH5MFRecord(record) as rec:
        manifest = rec.manifest
        assert manifest is not None
        assert manifest.user_block.patch_uuid == rec.user_block.patch_uuid
        assert manifest.skeleton == IH5Skeleton.from_tree(rec.chain.root)
        seen = content(rec)
        assert manifest.manifest_exts == (NEW_EXTS if seen["/"][1]["title"] == "new" else MY_EXTS)
    with IH5Record(record) as plain:
        assert content(plain) == seen
    return seen


def continue_writing(record: Path, seen: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A new writer commits on top of what the killed one left; return the state it found.

    A sealed container that only missed its rename is rolled forward (old -> new);
    an unsealed one is dropped, never resumed.
    """
    with IH5MFRecord(record, "r+", lock_timeout=5) as rec:
        assert untouched(rec)
        current = content(rec)
        assert current in (seen, new)
        rec.attrs["continued"] = 1
    after = checked_state(record)
    assert after.pop("/") == ("group", {**current["/"][1], "continued": 1})
    assert after == {key: value for key, value in current.items() if key != "/"}
    leftovers = [
        p.name for p in record.parent.iterdir() if p.name.endswith((".pending", ".writing"))
    ]
    assert not leftovers
    return current


@pytest.fixture
def start(tmp_path: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The record every trial copies, its state, and the state a completed commit leaves."""
    record = build_mf_record(tmp_path / "start")
    shutil.copytree(tmp_path / "start", tmp_path / "expected")
    with IH5MFRecord(tmp_path / "expected" / "rec", "r+") as rec:
        change(rec)
        rec.commit_patch(manifest_exts=NEW_EXTS)
    return record, checked_state(record), checked_state(tmp_path / "expected" / "rec")


def test_mfrecord_commit_killed_at_any_step_leaves_old_or_new_state(
    tmp_path: Path, start: tuple[Path, dict[str, Any], dict[str, Any]]
) -> None:
    record, old, new = start
    assert old != new
    outcomes: list[str] = []
    for n in range(1, MAX_KILL_POINTS + 1):
        trial = Path(shutil.copytree(record.parent, tmp_path / f"kill{n}")) / record.name
        exitcode = run_killed_at(trial, n)
        seen = checked_state(trial)
        assert seen in (old, new), f"killed at step {n}"
        outcome = "new" if seen == new else "old"
        continue_writing(trial, seen, new)
        shutil.rmtree(trial.parent)
        if exitcode == 0:
            assert outcome == "new"
            break
        assert exitcode == -signal.SIGKILL, f"the writer failed at step {n} (exit {exitcode})"
        outcomes.append(outcome)
    else:
        pytest.fail(f"the commit did not complete within {MAX_KILL_POINTS} steps")
    assert len(outcomes) >= 15
    assert outcomes[0] == "old"
    assert outcomes[-1] == "new"
    assert outcomes == sorted(outcomes, key=["old", "new"].index)


def test_mfrecord_commit_killed_before_hdf5_close_of_a_large_patch_lets_writers_continue(
    start: tuple[Path, dict[str, Any], dict[str, Any]],
) -> None:
    record, old, new = start
    # Step 1 is closing the patch's HDF5 file: killed there, a large patch leaves a pending
    # file whose metadata HDF5 never wrote, and which it may refuse to open again.
    assert run_killed_at(record, 1, extra_groups=3000) == -signal.SIGKILL
    assert checked_state(record) == old
    assert continue_writing(record, old, new) == old
