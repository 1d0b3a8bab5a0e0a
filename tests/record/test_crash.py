"""A writer killed at any point of writing a patch leaves the old or the new committed state.

A forked child opens the record, writes a patch and commits it; it is killed
with SIGKILL before its n-th call of a file operation (n = 1, 2, ... until the
commit completes), or after a random delay. After each kill the record must
open in its old or its new state, and a new writer must be able to continue.
"""

from __future__ import annotations

import builtins
import multiprocessing
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ih5.record import IH5Dataset, IH5Group, IH5Record
from tests.helpers.killpoints import KillPoint, arm_kill
from tests.helpers.nodes import as_dataset

from .helpers import untouched

FORK = multiprocessing.get_context("fork")
CHILD_TIMEOUT = 30.0
MAX_KILL_POINTS = 500

KILL_POINTS: list[KillPoint] = [
    (builtins, "open"),
    (os, "open"),
    (os, "close"),
    (os, "fsync"),
    (os, "replace"),
    (os, "rename"),
    (os, "unlink"),
    (h5py.File, "close"),
    (h5py.File, "flush"),
    (h5py.Group, "create_group"),
    (h5py.Group, "create_dataset"),
    (h5py.Group, "copy"),
    (h5py.AttributeManager, "__setitem__"),
]
"""The calls before which the child may be killed: file system steps and HDF5 writes."""


@pytest.fixture(autouse=True)
def no_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-user cache off: a kill point is the n-th file operation, and cache writes,
    which happen once files are old enough (see ih5.fs._filestate), would shift them."""
    monkeypatch.setenv("IH5_CACHE_DIR", "")


def state(group: IH5Group) -> dict[str, Any]:
    """Everything a reader can see in a record: kinds, attributes, values."""
    seen: dict[str, Any] = {}

    def describe(name: str, obj: IH5Group | IH5Dataset) -> None:
        attrs = {key: repr(obj.attrs[key]) for key in sorted(obj.attrs)}
        if isinstance(obj, IH5Dataset):
            seen[name] = ("dataset", obj.dtype.str, repr(obj[()].tolist()), attrs)
        else:
            seen[name] = ("group", attrs)

    describe("/", group)
    group.visititems(describe)
    return seen


def read_state(path: Path) -> dict[str, Any]:
    with IH5Record(path, "r") as rec:
        return state(rec)


def make_record(directory: Path) -> Path:
    """The committed record every trial starts from (a base and one patch)."""
    directory.mkdir()
    path = directory / "rec"
    with IH5Record(path, "w") as rec:
        rec["old"] = np.arange(5)
        rec["kept"] = np.arange(10, 20)
        rec.attrs["title"] = "old"
    with IH5Record(path, "r+") as rec:
        rec.create_group("grp").attrs["level"] = 1
    return path


def write_patch(path: Path, size: int) -> None:
    """The work of the killed writer: one patch with every kind of change, committed."""
    with IH5Record(path, "r+", lock_timeout=5) as rec:
        rec.create_dataset("new/data", data=np.arange(size), chunks=True, compression="gzip")
        rec["new/data"].attrs["unit"] = "m"
        del rec["old"]
        del rec["grp"]
        rec.create_group("grp").attrs["level"] = 2
        rec.attrs["title"] = "new"
        as_dataset(rec["kept"]).copy_into_patch()[0] = -1


def killed_at_call(path: Path, n: int) -> None:
    disarm = arm_kill(KILL_POINTS, n)
    write_patch(path, size=1000)
    disarm()
    os._exit(0)


def run_child(target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    process = FORK.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def finish(process: multiprocessing.process.BaseProcess) -> int | None:
    process.join(CHILD_TIMEOUT)
    if process.is_alive():
        process.kill()
        process.join()
        pytest.fail(f"the writer did not finish within {CHILD_TIMEOUT} s")
    return process.exitcode


def check_after_crash(path: Path, old: dict[str, Any], new: dict[str, Any]) -> str:
    """Assert the record is in the old or new state and a new writer can go on.

    A dead writer's unsealed patch is never resumed (it holds an unknown part of
    its change set); a sealed one that only missed its rename is rolled forward
    by the next writer. Returns "old", "new" or "old+rolled-forward".
    """
    seen = read_state(path)
    assert seen in (old, new)
    with IH5Record(path, "r+", lock_timeout=5) as rec:
        assert untouched(rec)
        current = state(rec)
        assert current == seen or (seen == old and current == new)
        rec.attrs["continued"] = True
    after = read_state(path)
    assert after.pop("/") == ("group", {**current["/"][1], "continued": repr(np.True_)})
    assert after == {name: value for name, value in current.items() if name != "/"}
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith((".pending", ".writing"))]
    assert not leftovers
    if current == seen:
        return "new" if seen == new else "old"
    return "old+rolled-forward"


@pytest.fixture
def pristine(tmp_path: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The start record, its state, and the state a completed writer leaves."""
    path = make_record(tmp_path / "pristine")
    shutil.copytree(path.parent, tmp_path / "expected")
    write_patch(tmp_path / "expected" / "rec", size=1000)
    return path, read_state(path), read_state(tmp_path / "expected" / "rec")


def test_crash_at_every_file_operation_leaves_old_or_new_state(
    tmp_path: Path, pristine: tuple[Path, dict[str, Any], dict[str, Any]]
) -> None:
    path, old, new = pristine
    outcomes: list[str] = []
    for n in range(1, MAX_KILL_POINTS + 1):
        trial = Path(shutil.copytree(path.parent, tmp_path / f"call{n}"))
        exitcode = finish(run_child(killed_at_call, trial / "rec", n))
        outcome = check_after_crash(trial / "rec", old, new)
        shutil.rmtree(trial)
        if exitcode == 0:
            assert outcome == "new"
            break
        assert exitcode == -signal.SIGKILL
        outcomes.append(outcome)
    else:
        pytest.fail(f"the writer did not complete within {MAX_KILL_POINTS} kill points")
    assert len(outcomes) > 20
    assert {"old", "old+rolled-forward", "new"} <= set(outcomes)
    states = [outcome.split("+")[0] for outcome in outcomes]
    assert states == sorted(states, key=["old", "new"].index), "a kill undid a commit"


def timed_writer(path: Path, size: int) -> None:
    write_patch(path, size)
    os._exit(0)


def test_crash_after_random_delay_leaves_old_or_new_state(
    tmp_path: Path, pristine: tuple[Path, dict[str, Any], dict[str, Any]]
) -> None:
    path, old, _ = pristine
    size = 400_000
    shutil.copytree(path.parent, tmp_path / "timed")
    start = time.monotonic()
    assert finish(run_child(timed_writer, tmp_path / "timed" / "rec", size)) == 0
    duration = time.monotonic() - start
    new = read_state(tmp_path / "timed" / "rec")
    rng = random.Random(20240521)
    outcomes = []
    for trial_index in range(16):
        trial = Path(shutil.copytree(path.parent, tmp_path / f"delay{trial_index}"))
        process = run_child(timed_writer, trial / "rec", size)
        time.sleep(rng.uniform(0.0, duration * 1.2))
        process.kill()
        finish(process)
        outcomes.append(check_after_crash(trial / "rec", old, new).split("+")[0])
        shutil.rmtree(trial)
    assert "old" in outcomes
