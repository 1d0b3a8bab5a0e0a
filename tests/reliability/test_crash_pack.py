"""Stubs and packing under injected faults: a run ends old or new, and running again finishes it.

The later writer of a packing run is the next packing run: it must reach
the new state from whatever a faulted run left, and a patch committed on
top must still work.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ih5 import IH5MFRecord, RecordExistsError, pack_directory
from ih5.format import load_refs
from ih5.record._commit import CommitProtocol
from ih5.store import LocalStore

from .faults import Mode
from .states import ABSENT, continue_record, copy_tree, observe_record
from .sweep import Scenario, sweep
from .test_crash_record import build_record

MODES = ["error", "sticky", "kill"]

TREE: dict[str, bytes | None] = {
    "a/one.bin": bytes(range(256)) * 4,
    "a/two.txt": b"two\n",
    "b/deep/three.bin": b"3" * 100,
    "empty": None,
    "top.txt": b"top\n",
}


def make_source(root: Path) -> Path:
    for relative, data in TREE.items():
        path = root / relative
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    os.symlink("a/two.txt", root / "link")
    return root


def edit_source(root: Path) -> None:
    """Changes for a re-pack: one file changed, one added, a directory removed."""
    (root / "a" / "one.bin").write_bytes(b"changed")
    (root / "new.bin").write_bytes(np.arange(10, dtype="u1").tobytes())
    shutil.rmtree(root / "b")


def pack(directory: Path, where: str) -> None:
    pack_directory(directory / "src", directory / where / "rec")


def observe_packed(directory: Path) -> Any:
    return observe_record(directory / "out" / "rec", manifest=True)


def resume_packed(directory: Path) -> Any:
    """Pack again (the later writer), then commit a patch on top; return the state packed."""
    pack(directory, "out")
    packed = observe_packed(directory)
    continue_record(directory / "out" / "rec", manifest=True)
    return packed


def build_first(directory: Path) -> None:
    make_source(directory / "src")


def build_repack(directory: Path) -> None:
    make_source(directory / "src")
    pack(directory, "out")
    edit_source(directory / "src")


def pack_scenario(name: str, build: Any, commit: str) -> Scenario:
    return Scenario(
        name=name,
        build=build,
        operation=partial(pack, where="out"),
        observe=observe_packed,
        resume=resume_packed,
        commit=commit,
        garbage_in=lambda d: [d / "out"] if (d / "out").exists() else [],
    )


@pytest.mark.parametrize("mode", MODES)
def test_pack_directory_first_pack_under_faults_leaves_no_record_or_the_packed_one(
    tmp_path: Path, mode: Mode, long_run: bool
) -> None:
    scenario = pack_scenario("pack_directory (first)", build_first, "rec.ih5")
    sweep(scenario, tmp_path, mode, long_run)


@pytest.mark.parametrize("mode", MODES)
def test_pack_directory_repack_under_faults_leaves_old_or_new_state(
    tmp_path: Path, mode: Mode, long_run: bool
) -> None:
    scenario = pack_scenario("pack_directory (re-pack)", build_repack, "rec.p1.ih5")
    sweep(scenario, tmp_path, mode, long_run)


# --- manifest-only re-pack: the patch is written on a stub beside a lone manifest ---


def build_stub_repack(directory: Path) -> None:
    make_source(directory / "src")
    pack(directory, "real")
    (directory / "remote").mkdir()
    shutil.copy2(directory / "real" / "rec.ih5mf.json", directory / "remote")
    edit_source(directory / "src")


def observe_remote(directory: Path) -> Any:
    """The patch beside the lone manifest, if any: the real record with it copied in.

    The patch is its container; a manifest alone is not a patch (readers of the
    real record ignore a manifest without its container). A container published
    without its manifest is completed from its staged manifest, as the next run does.
    """
    remote = directory / "remote"
    if not (remote / "rec.p1.ih5").exists():
        return ABSENT
    (patch,) = load_refs([remote / "rec.p1.ih5"])
    CommitProtocol(LocalStore(remote), "rec").complete_manifest(patch)
    check = copy_tree(directory / "real", directory / "check")
    try:
        for name in ("rec.p1.ih5", "rec.p1.ih5mf.json"):
            shutil.copy2(remote / name, check / name)
        return observe_record(check / "rec", manifest=True)
    finally:
        shutil.rmtree(check)


def resume_remote(directory: Path) -> Any:
    """Pack again: it must end with the patch and its manifest beside the lone manifest."""
    pack(directory, "remote")
    names = [name for name in os.listdir(directory / "remote") if not name.endswith(".lock")]
    assert sorted(names) == ["rec.ih5mf.json", "rec.p1.ih5", "rec.p1.ih5mf.json"]
    return observe_remote(directory)


@pytest.mark.parametrize("mode", MODES)
def test_pack_directory_repack_on_a_stub_under_faults_leaves_no_patch_or_a_complete_one(
    tmp_path: Path, mode: Mode, long_run: bool
) -> None:
    scenario = Scenario(
        name="pack_directory (on stub)",
        build=build_stub_repack,
        operation=partial(pack, where="remote"),
        observe=observe_remote,
        resume=resume_remote,
        commit="rec.p1.ih5",
        garbage_in=lambda d: [d / "remote"],
        record_dirs=False,
    )
    sweep(scenario, tmp_path, mode, long_run)


# --- stubs ---------------------------------------------------------------------------


def build_for_stub(directory: Path) -> None:
    (directory / "real").mkdir()
    build_record(directory / "real", manifest=True)
    (directory / "stubs").mkdir()


def create_stub(directory: Path) -> None:
    IH5MFRecord.create_stub(directory / "stubs" / "rec", directory / "real" / "rec.p1.ih5mf.json")


def observe_stub(directory: Path) -> Any:
    return observe_record(directory / "stubs" / "rec", manifest=True, values=False)


def resume_stub(directory: Path) -> Any:
    """Build the stub again if it is missing, then commit a patch on top of it."""
    if observe_stub(directory) == ABSENT:
        # Opening rolls forward a stub that a killed run had sealed: it exists then.
        with contextlib.suppress(RecordExistsError):
            create_stub(directory)
    found = observe_stub(directory)
    continue_record(directory / "stubs" / "rec", manifest=True, values=False)
    return found


@pytest.mark.parametrize("mode", MODES)
def test_create_stub_under_faults_leaves_no_stub_or_a_complete_one(
    tmp_path: Path, mode: Mode, long_run: bool
) -> None:
    scenario = Scenario(
        name="IH5MFRecord.create_stub",
        build=build_for_stub,
        operation=create_stub,
        observe=observe_stub,
        resume=resume_stub,
        commit="rec.ih5",
        garbage_in=lambda d: [d / "stubs"],
    )
    sweep(scenario, tmp_path, mode, long_run)
