"""The commit protocol, one measured case per test: stage, seal, publish create-if-absent.

Safety must never depend on the advisory lock, so several tests open a second
writer with the lock bypassed (a no-op ``file_lock`` and a private in-process
writer registry) or delete the lock file under a live writer.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import multiprocessing
import os
import shutil
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ih5.record._record as record_module
from ih5 import ConflictError, IH5MFRecord, IH5Record, RecordLockedError, pack_directory
from ih5.errors import RecordClosedError, StrayFileWarning
from ih5.format import discover_containers, load_refs, validate_chain
from ih5.record import IH5Dataset
from ih5.record._commit import CommitProtocol, parse_staged_name
from ih5.record._record import _WriterRegistry
from ih5.store import LocalStore

from .helpers import untouched

FORK = multiprocessing.get_context("fork")
CHILD_TIMEOUT = 30.0


# --- helpers -----------------------------------------------------------------


def _no_lock(
    path: str | os.PathLike[str], timeout: float | None = 30.0
) -> contextlib.nullcontext[Path]:
    return contextlib.nullcontext(Path(path))


def open_unlocked(
    monkeypatch: pytest.MonkeyPatch, path: Path, kind: type[IH5Record] = IH5Record
) -> IH5Record:
    """Open ``path`` r+ as a writer whose lock does nothing (neither file nor in-process)."""
    with monkeypatch.context() as patched:
        patched.setattr(record_module, "file_lock", _no_lock)
        patched.setattr(IH5Record, "_writers", _WriterRegistry())
        return kind(path, "r+")


def build(directory: Path, patches: int = 0, kind: type[IH5Record] = IH5Record) -> Path:
    """A record ``directory/rec`` with ``base`` in the base and ``pK`` in patch K."""
    path = directory / "rec"
    with kind(path, "w") as rec:
        rec["base"] = 0
    for index in range(1, patches + 1):
        with kind(path, "r+") as rec:
            rec[f"p{index}"] = index
    return path


def members(path: Path, kind: type[IH5Record] = IH5Record) -> set[str]:
    """The root members of the record, opened with verify."""
    with kind(path, "r", verify=True) as rec:
        rec.verify()
        return set(rec)


def value(rec: IH5Record, path: str) -> Any:
    """The value of dataset ``path``."""
    dataset = rec[path]
    assert isinstance(dataset, IH5Dataset)
    return dataset[()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def staged_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if parse_staged_name(p.name) is not None)


def staged_states(directory: Path) -> list[str]:
    """The states of the staged files in ``directory``, in name order."""
    parsed = [parse_staged_name(name) for name in staged_names(directory)]
    return [staged.state for staged in parsed if staged is not None]


def fds_into(directory: Path) -> list[str]:
    """The open descriptors of this process pointing into ``directory``."""
    found = []
    for entry in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{entry}")
            if target.startswith(str(directory)):
                found.append(target)
    return sorted(found)


def check_chain(directory: Path) -> list[int]:
    """Validate the published chain (verify hashsums); return its patch indices."""
    refs = validate_chain(load_refs(discover_containers(directory, "rec")), verify_hashsums=True)
    return [ref.user_block.patch_index for ref in refs]


class Child:
    """A forked process running ``target(*args)``; ``result()`` is its value or error text."""

    def __init__(self, target: Callable[..., str], *args: Any) -> None:
        self._receive, send = FORK.Pipe(duplex=False)

        def main() -> None:
            try:
                outcome = target(*args)
            except BaseException as exc:
                outcome = f"{type(exc).__name__}: {traceback.format_exc()}"
            send.send(outcome)
            os._exit(0)

        self.process = FORK.Process(target=main, daemon=True)
        self.process.start()

    def result(self) -> str:
        try:
            if not self._receive.poll(CHILD_TIMEOUT):
                raise TimeoutError(f"child did not answer within {CHILD_TIMEOUT} s")
            value: str = self._receive.recv()
            return value
        finally:
            self.stop()

    def stop(self) -> None:
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


@contextlib.contextmanager
def child(target: Callable[..., str], *args: Any) -> Iterator[Child]:
    proc = Child(target, *args)
    try:
        yield proc
    finally:
        proc.stop()


# --- two writers, one index ------------------------------------------------------


def _commit_after_lock_deleted(path: Path, go: Any, barrier: Any) -> str:
    if not go.wait(CHILD_TIMEOUT):
        return "timeout"
    with IH5Record(path, "r+", lock_timeout=5) as rec:
        rec["child"] = 2
        barrier.wait(CHILD_TIMEOUT)
        try:
            rec.commit_patch()
        except ConflictError:
            rec.discard_patch()
            return "conflict"
    return "ok"


def test_lock_deleted_mid_run_two_processes_exactly_one_publishes_index_1(
    tmp_path: Path,
) -> None:
    """A writer's lock file is deleted while it works; a second process then locks a new
    lock file: both commit patch 1 at once, exactly one wins, the other gets ConflictError."""
    path = build(tmp_path)
    go, barrier = FORK.Event(), FORK.Barrier(2)
    with child(_commit_after_lock_deleted, path, go, barrier) as other:
        rec = IH5Record(path, "r+")
        try:
            rec["parent"] = 1
            (tmp_path / "rec.ih5.lock").unlink()
            go.set()
            barrier.wait(CHILD_TIMEOUT)
            try:
                rec.commit_patch()
                mine = "ok"
            except ConflictError:
                rec.discard_patch()
                mine = "conflict"
        finally:
            rec.close()
        theirs = other.result()
    assert sorted([mine, theirs]) == ["conflict", "ok"], theirs
    assert check_chain(tmp_path) == [0, 1]
    winner = "parent" if mine == "ok" else "child"
    assert members(path) == {"base", winner}
    assert staged_names(tmp_path) == []


def test_unlocked_writer_commit_after_other_commit_raises_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two handles (the second with a no-op lock) both commit patch 1: the second gets
    ConflictError, and the record holds exactly the first's change."""
    path = build(tmp_path)
    with IH5Record(path, "r+") as first:
        second = open_unlocked(monkeypatch, path)
        first["first"] = 1
        second["second"] = 2
        first.commit_patch()
        with pytest.raises(ConflictError):
            second.commit_patch()
        assert second.has_patch
        second.discard_patch()
        second.close()
    assert check_chain(tmp_path) == [0, 1]
    assert members(path) == {"base", "first"}
    assert staged_names(tmp_path) == []


def test_unlocked_writer_losing_race_past_the_check_raises_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loser passed every name check before the winner published (a race between the
    check and the hard link): create-if-absent still refuses it and publishes nothing."""
    path = build(tmp_path)
    with IH5Record(path, "r+") as first:
        second = open_unlocked(monkeypatch, path)
        first["first"] = 1
        second["second"] = 2
        first.commit_patch()
        before = digest(tmp_path / "rec.p1.ih5")
        with monkeypatch.context() as patched:
            patched.setattr(second, "_check_newest_on_disk", lambda: None)
            patched.setattr(CommitProtocol, "check_free", lambda self, final: None)
            with pytest.raises(ConflictError):
                second.commit_patch()
        assert digest(tmp_path / "rec.p1.ih5") == before
        second.discard_patch()
        second.close()
    assert members(path) == {"base", "first"}
    assert staged_names(tmp_path) == []


def test_acknowledged_commit_not_altered_by_unlocked_writer_writing_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """P1's commit is acknowledged, then P2 (lock bypassed, patch opened before) writes
    and commits: rec.p1.ih5 keeps its bytes, P2 gets ConflictError."""
    path = build(tmp_path)
    first = IH5Record(path, "r+")
    second = open_unlocked(monkeypatch, path)
    try:
        first["first"] = 1
        first.commit_patch()
        first.close()
        published = tmp_path / "rec.p1.ih5"
        before = digest(published)
        second["second"] = np.arange(1000)
        second.attrs["late"] = "yes"
        assert digest(published) == before
        with pytest.raises(ConflictError):
            second.commit_patch()
        assert digest(published) == before
        second.discard_patch()
    finally:
        first.close()
        second.close(commit=False)
    assert digest(published) == before
    assert members(path) == {"base", "first"}
    with IH5Record(path) as rec:
        assert "late" not in rec.attrs


# --- Ctrl-C between the two publishing steps -------------------------------------


def _interrupt_on_call(monkeypatch: pytest.MonkeyPatch, call: int) -> list[str]:
    """Make ``LocalStore.publish`` raise KeyboardInterrupt on its ``call``-th call."""
    original = LocalStore.publish
    seen: list[str] = []

    def publish(self: LocalStore, staged: Path, name: str) -> bool:
        seen.append(name)
        if len(seen) == call:
            raise KeyboardInterrupt
        return original(self, staged, name)

    monkeypatch.setattr(LocalStore, "publish", publish)
    return seen


def _commit_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at_publish: int
) -> tuple[Path, IH5MFRecord, list[str]]:
    """Commit a patch on a manifest record with Ctrl-C at its ``at_publish``-th publish step."""
    path = build(tmp_path, kind=IH5MFRecord)
    rec = IH5MFRecord(path, "r+")
    rec["new"] = 1
    seen = _interrupt_on_call(monkeypatch, at_publish)
    with pytest.raises(KeyboardInterrupt):
        rec.commit_patch()
    monkeypatch.undo()
    return path, rec, seen


def _orphan_manifests(directory: Path) -> list[str]:
    return sorted(
        p.name
        for p in directory.glob("rec*.ih5mf.json")
        if not p.with_name(p.name.removesuffix("mf.json")).exists()
    )


def test_ctrl_c_after_container_published_leaves_no_manifest_without_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyboardInterrupt right after the container is published (at the manifest step):
    no manifest is visible without its container."""
    _, rec, seen = _commit_interrupted(tmp_path, monkeypatch, at_publish=2)
    rec.close()
    assert seen == ["rec.p1.ih5", "rec.p1.ih5mf.json"]
    assert (tmp_path / "rec.p1.ih5").exists()
    assert _orphan_manifests(tmp_path) == []


def test_ctrl_c_after_container_published_next_open_completes_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a Ctrl-C between the container and its manifest, the next opener publishes
    the staged manifest: the record opens as IH5MFRecord and verifies."""
    path, rec, _ = _commit_interrupted(tmp_path, monkeypatch, at_publish=2)
    rec.close()
    assert not (tmp_path / "rec.p1.ih5mf.json").exists()
    with IH5MFRecord(path) as reopened:
        reopened.verify()
        assert set(reopened) == {"base", "new"}
        assert reopened.manifest is not None
    assert (tmp_path / "rec.p1.ih5mf.json").exists()
    assert staged_names(tmp_path) == []


def test_ctrl_c_before_container_published_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyboardInterrupt at the container's publishing step: nothing is published and the
    change set stays open for its writer."""
    path, rec, _ = _commit_interrupted(tmp_path, monkeypatch, at_publish=1)
    assert rec.has_patch
    rec.discard_patch()
    rec.close()
    assert not (tmp_path / "rec.p1.ih5").exists()
    assert _orphan_manifests(tmp_path) == []
    assert members(path, IH5MFRecord) == {"base"}


def test_reader_between_container_and_manifest_does_not_break_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that opens while a live writer sits between publishing its container and
    its manifest completes the manifest; the writer's commit still returns normally."""
    path = build(tmp_path, kind=IH5MFRecord)
    rec = IH5MFRecord(path, "r+")
    rec["new"] = 1
    original = LocalStore.publish
    calls: list[str] = []

    def publish(self: LocalStore, staged: Path, name: str) -> bool:
        calls.append(name)
        if len(calls) == 2:
            with IH5MFRecord(path) as reader:
                assert set(reader) == {"base", "new"}
        return original(self, staged, name)

    monkeypatch.setattr(LocalStore, "publish", publish)
    try:
        rec.commit_patch()
    finally:
        monkeypatch.undo()
        rec.close(commit=False)
    assert (tmp_path / "rec.p1.ih5mf.json").exists()
    assert staged_names(tmp_path) == []
    assert members(path, IH5MFRecord) == {"base", "new"}


# --- strays ---------------------------------------------------------------------

STRAY_NAMES = ["rec.p1 (copy).ih5", "rec.p02.ih5"]


def _renamed_patch(directory: Path, stray: str) -> Path:
    """A manifest-backed record whose patch 1 was renamed to ``stray`` (manifest kept)."""
    path = build(directory, patches=1, kind=IH5MFRecord)
    (directory / "rec.p1.ih5").rename(directory / stray)
    return path


@pytest.mark.parametrize("stray", STRAY_NAMES)
def test_renamed_patch_warns_on_opening_naming_it(tmp_path: Path, stray: str) -> None:
    """Opening a record beside a renamed patch warns StrayFileWarning naming the file."""
    path = _renamed_patch(tmp_path, stray)
    with pytest.warns(StrayFileWarning) as caught:
        IH5Record(path).close()
    assert any(str(tmp_path / stray) in str(w.message) for w in caught), [
        str(w.message) for w in caught
    ]


@pytest.mark.parametrize("stray", STRAY_NAMES)
def test_renamed_patch_listed_by_strays(tmp_path: Path, stray: str) -> None:
    """``strays()`` lists the renamed patch (claiming index 1) and its orphaned manifest."""
    path = _renamed_patch(tmp_path, stray)
    with pytest.warns(StrayFileWarning), IH5Record(path) as rec:
        found = {s.path.name: s.claims for s in rec.strays()}
    assert found == {stray: 1, "rec.p1.ih5mf.json": 1}


@pytest.mark.parametrize("stray", STRAY_NAMES)
def test_writer_commit_of_index_claimed_by_renamed_patch_raises_conflict(
    tmp_path: Path, stray: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer refuses to publish index 1 while a renamed patch claims it: ConflictError
    (at opening for writing, and at commit for a patch opened before the rename)."""
    path = _renamed_patch(tmp_path, stray)
    with pytest.warns(StrayFileWarning), pytest.raises(ConflictError):
        IH5MFRecord(path, "r+")
    assert not (tmp_path / "rec.p1.ih5").exists()
    # A patch opened before the rename appeared.
    (tmp_path / stray).rename(tmp_path / "moved-away")
    (tmp_path / "rec.p1.ih5mf.json").rename(tmp_path / "moved-away.json")
    with IH5MFRecord(path, "r+") as rec:
        rec["late"] = 1
        os.link(tmp_path / "moved-away", tmp_path / stray)
        with pytest.raises(ConflictError):
            rec.commit_patch()
        rec.discard_patch()
    assert not (tmp_path / "rec.p1.ih5").exists()
    assert not (tmp_path / "rec.p1.ih5mf.json").exists()


@pytest.mark.parametrize("stray", STRAY_NAMES)
def test_pack_never_overwrites_published_manifest_of_renamed_patch(
    tmp_path: Path, stray: str
) -> None:
    """``pack`` into a record whose patch 1 was renamed raises ConflictError and leaves
    the published rec.p1.ih5mf.json byte for byte."""
    records = tmp_path / "records"
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    records.mkdir()
    pack_directory(source, records / "rec")
    (source / "b.txt").write_text("b")
    pack_directory(source, records / "rec")
    (records / "rec.p1.ih5").rename(records / stray)
    manifest = records / "rec.p1.ih5mf.json"
    before = digest(manifest)
    (source / "c.txt").write_text("c")
    with pytest.warns(StrayFileWarning), pytest.raises(ConflictError):
        pack_directory(source, records / "rec")
    assert digest(manifest) == before
    assert not (records / "rec.p1.ih5").exists()


def test_pack_on_stub_never_overwrites_manifest_beside_it(tmp_path: Path) -> None:
    """Packing on a stub (only manifests in DIR) publishes the next patch beside them and
    leaves the manifest it was built from byte for byte."""
    records, stub_dir, source = tmp_path / "records", tmp_path / "stub", tmp_path / "src"
    source.mkdir()
    stub_dir.mkdir()
    (source / "a.txt").write_text("a")
    pack_directory(source, records / "rec")
    (source / "b.txt").write_text("b")
    pack_directory(source, records / "rec")
    shutil.copy(records / "rec.p1.ih5mf.json", stub_dir / "rec.p1.ih5mf.json")
    before = digest(stub_dir / "rec.p1.ih5mf.json")
    (source / "c.txt").write_text("c")
    result = pack_directory(source, stub_dir / "rec")
    assert result.action == "patched-on-stub"
    assert result.patch_index == 2
    assert digest(stub_dir / "rec.p1.ih5mf.json") == before
    assert {p.name for p in stub_dir.iterdir()} == {
        "rec.p1.ih5mf.json",
        "rec.p2.ih5",
        "rec.p2.ih5mf.json",
    }


# --- closed records -------------------------------------------------------------


def _closed(tmp_path: Path) -> tuple[IH5Record, dict[str, Any]]:
    """A closed writer and views taken while it was open."""
    path = tmp_path / "rec"
    with IH5Record(path, "w") as rec:
        rec["g/d"] = np.arange(3)
        rec["g"].attrs["a"] = 1
    rec = IH5Record(path, "r+")
    group = rec["g"]
    views = {"group": group, "dataset": group["d"], "attrs": group.attrs}
    rec.close()
    return rec, views


CLOSED_CALLS: dict[str, Callable[[IH5Record, dict[str, Any]], object]] = {
    "create_patch": lambda rec, views: rec.create_patch(),
    "commit_patch": lambda rec, views: rec.commit_patch(),
    "discard_patch": lambda rec, views: rec.discard_patch(),
    "write_dataset": lambda rec, views: rec.__setitem__("new", 1),
    "write_through_group": lambda rec, views: views["group"].__setitem__("new", 1),
    "write_attr": lambda rec, views: views["attrs"].__setitem__("b", 2),
    "read_root": lambda rec, views: rec["g"],
    "read_group": lambda rec, views: views["group"]["d"],
    "read_dataset": lambda rec, views: views["dataset"][()],
    "read_attr": lambda rec, views: views["attrs"]["a"],
    "list_group": lambda rec, views: list(views["group"]),
    "user_block": lambda rec, views: rec.user_block,
    "verify": lambda rec, views: rec.verify(),
}


@pytest.mark.parametrize("call", sorted(CLOSED_CALLS))
def test_closed_record_call_raises_record_closed_error(tmp_path: Path, call: str) -> None:
    """After close(), every call on the record or its views raises RecordClosedError
    (a ValueError)."""
    rec, views = _closed(tmp_path)
    with pytest.raises(RecordClosedError) as caught:
        CLOSED_CALLS[call](rec, views)
    assert isinstance(caught.value, ValueError)


def test_closed_record_keeps_no_file_descriptor_open(tmp_path: Path) -> None:
    """Opening, reading through views, writing a patch and closing leaves no descriptor
    into the record's directory."""
    path = build(tmp_path, patches=2)
    before = fds_into(tmp_path)
    rec = IH5Record(path, "r+")
    assert int(value(rec, "p1")) == 1
    rec["x"] = np.arange(5)
    assert list(value(rec, "x")) == [0, 1, 2, 3, 4]
    assert fds_into(tmp_path) != before
    rec.close()
    with pytest.raises(RecordClosedError):
        rec.create_patch()
    assert fds_into(tmp_path) == before


def test_closed_record_create_patch_keeps_live_writers_staging_file(tmp_path: Path) -> None:
    """A closed handle's create_patch() raises and leaves the staging file of the live
    writer that opened after it; that writer then commits."""
    path = build(tmp_path)
    stale = IH5Record(path, "r+")
    stale.close()
    with IH5Record(path, "r+") as live:
        live["live"] = 1
        staging = staged_names(tmp_path)
        assert len(staging) == 1
        with pytest.raises(RecordClosedError):
            stale.create_patch()
        with pytest.raises(RecordClosedError):
            stale.discard_patch()
        stale.close()
        assert staged_names(tmp_path) == staging
    assert members(path) == {"base", "live"}


# --- discarding and keeping change sets ------------------------------------------------


def test_exception_inside_with_discards_change_set(tmp_path: Path) -> None:
    """An exception inside ``with`` discards the change set: nothing published or staged."""
    path = build(tmp_path)
    with pytest.raises(RuntimeError), IH5Record(path, "r+") as rec:
        rec["lost"] = 1
        raise RuntimeError("boom")
    assert check_chain(tmp_path) == [0]
    assert staged_names(tmp_path) == []


def test_writer_that_only_opens_after_exception_publishes_nothing(tmp_path: Path) -> None:
    """After a discarded ``with``, a writer that merely opens and closes publishes nothing."""
    path = build(tmp_path)
    with pytest.raises(RuntimeError), IH5Record(path, "r+") as rec:
        rec["lost"] = 1
        raise RuntimeError("boom")
    with IH5Record(path, "r+") as rec:
        assert untouched(rec)
    assert check_chain(tmp_path) == [0]
    assert members(path) == {"base"}


def test_close_without_commit_keeps_change_set_for_next_writer(tmp_path: Path) -> None:
    """``close(commit=False)`` suspends the patch; the next writer resumes and commits it."""
    path = build(tmp_path)
    rec = IH5Record(path, "r+")
    rec["kept"] = 1
    rec.close(commit=False)
    assert check_chain(tmp_path) == [0]
    assert staged_states(tmp_path) == ["pending"]
    with IH5Record(path, "r+") as rec:
        assert rec.has_patch
        assert int(value(rec, "kept")) == 1
    assert members(path) == {"base", "kept"}
    assert staged_names(tmp_path) == []


# --- truncation (mode "w") -------------------------------------------------------------

OLD_STATES = [{"base"}, {"base", "p1"}, {"base", "p1", "p2"}]
NEW_STATE = {"new"}


class _CrashError(OSError):
    """The injected failure."""


def _crash_at(monkeypatch: pytest.MonkeyPatch, at: int) -> list[str]:
    """Make the ``at``-th call of os.replace or LocalStore.remove raise _CrashError."""
    calls: list[str] = []
    replace, remove = os.replace, LocalStore.remove

    def counted(label: str) -> None:
        calls.append(label)
        if len(calls) == at:
            raise _CrashError(errno.EIO, "injected", label)

    def fake_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        counted(f"replace {Path(dst).name}")
        replace(src, dst, *args, **kwargs)

    def fake_remove(self: LocalStore, name: str) -> None:
        counted(f"remove {name}")
        remove(self, name)

    monkeypatch.setattr(os, "replace", fake_replace)
    monkeypatch.setattr(LocalStore, "remove", fake_remove)
    return calls


def _truncate_with_crash(
    template: Path, trial: Path, monkeypatch: pytest.MonkeyPatch, at: int, kind: type[IH5Record]
) -> tuple[bool, str]:
    """Copy ``template`` to ``trial`` and run ``w`` on it, failing at step ``at``.

    Return whether it crashed and the step it crashed at.
    """
    shutil.copytree(template, trial)
    calls = _crash_at(monkeypatch, at)
    try:
        with kind(trial / "rec", "w") as rec:
            rec["new"] = 1
    except _CrashError:
        return True, calls[at - 1]
    finally:
        monkeypatch.undo()
    return False, "none"


def _truncation_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: type[IH5Record]
) -> Iterator[tuple[Path, int, str, bool]]:
    """Each trial's record, crash point, step and whether it crashed (the last did not)."""
    template = tmp_path / "template"
    template.mkdir()
    build(template, patches=2, kind=kind)
    for at in range(1, 30):
        trial = tmp_path / f"trial{at}"
        crashed, step = _truncate_with_crash(template, trial, monkeypatch, at, kind)
        yield trial / "rec", at, step, crashed
        if not crashed:
            return
    pytest.fail("the truncation never completed")


def _members_any_warnings(path: Path, kind: type[IH5Record]) -> tuple[set[str], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = members(path, kind)
    return state, [str(w.message) for w in caught]


@pytest.mark.parametrize("kind", [IH5Record, IH5MFRecord], ids=["plain", "manifest"])
def test_truncation_crash_at_every_step_leaves_old_prefix_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: type[IH5Record]
) -> None:
    """``w`` on an existing record, failing at the n-th replace/remove for n = 1, 2, ...:
    the directory always opens (verify) as the old record, a prefix of it, or the new one."""
    trials = 0
    for path, at, step, crashed in _truncation_trials(tmp_path, monkeypatch, kind):
        state, _ = _members_any_warnings(path, kind)
        assert state in [*OLD_STATES, NEW_STATE], (at, step, state)
        if crashed:
            trials += 1
        else:
            assert state == NEW_STATE
    assert trials >= 3


@pytest.mark.parametrize(
    "kind",
    [IH5Record, IH5MFRecord],
    ids=["plain", "manifest"],
)
def test_truncation_crash_next_writer_commits_on_top(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: type[IH5Record]
) -> None:
    """Whatever state a failed ``w`` left, the next writer opens it and commits a patch."""
    for path, at, step, _ in _truncation_trials(tmp_path, monkeypatch, kind):
        state, _ = _members_any_warnings(path, kind)
        with kind(path, "r+") as rec:
            rec["next"] = 1
        assert members(path, kind) == state | {"next"}, (at, step)


@pytest.mark.parametrize(
    "kind",
    [IH5Record, IH5MFRecord],
    ids=["plain", "manifest"],
)
def test_truncation_crash_leaves_no_stray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: type[IH5Record]
) -> None:
    """A failure at any step of ``w`` never leaves a file that opening reports as a stray."""
    reported = []
    for path, at, step, _ in _truncation_trials(tmp_path, monkeypatch, kind):
        _, messages = _members_any_warnings(path, kind)
        reported += [(at, step, message) for message in messages]
    assert reported == []


# --- writers dropped without close --------------------------------------------------------


def _drop_writer(path: Path) -> None:
    rec = IH5Record(path, "r+")
    rec["dropped"] = 1
    del rec
    gc.collect()


def test_dropped_writer_releases_lock_to_writer_in_same_process(tmp_path: Path) -> None:
    """A writer dropped without close() releases its lock once collected, and its patch is
    discarded: another writer in this process gets the lock at once."""
    path = build(tmp_path)
    _drop_writer(path)
    with IH5Record(path, "r+", lock_timeout=0) as rec:
        assert untouched(rec)
    assert members(path) == {"base"}
    assert staged_names(tmp_path) == []


def _open_writer(path: Path, go: Any, timeout: float) -> str:
    if not go.wait(CHILD_TIMEOUT):
        return "timeout"
    try:
        with IH5Record(path, "r+", lock_timeout=timeout) as rec:
            return "ok" if untouched(rec) else "patch"
    except RecordLockedError:
        return "locked"


def test_dropped_writer_releases_lock_to_writer_in_other_process(tmp_path: Path) -> None:
    """A writer dropped without close() releases its lock once collected: a writer in
    another process gets it (and was refused while the writer lived)."""
    path = build(tmp_path)
    go_early, go_late = FORK.Event(), FORK.Event()
    with (
        child(_open_writer, path, go_early, 0.2) as early,
        child(_open_writer, path, go_late, 5.0) as late,
    ):
        rec = IH5Record(path, "r+")
        rec["dropped"] = 1
        go_early.set()
        assert early.result() == "locked"
        del rec
        gc.collect()
        go_late.set()
        assert late.result() == "ok"
    assert members(path) == {"base"}
