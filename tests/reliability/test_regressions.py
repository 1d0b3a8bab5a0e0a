"""Minimal reproductions of what the fault sweeps found, one test per bug."""

from __future__ import annotations

import errno
import os
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from ih5 import (
    IH5MFRecord,
    IH5Record,
    RecordExistsError,
    atomic_update_json,
    atomic_write_json,
    pack_directory,
    read_json,
)
from ih5.fs import is_temp_name

from .faults import Fault, failing, run_trial
from .states import content, values_at


@pytest.fixture
def record(tmp_path: Path) -> Path:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec["data"] = np.arange(3)
    return tmp_path / "rec"


@pytest.mark.parametrize("step", ["h5py.close", "os.unlink"])
def test_discard_patch_that_fails_leaves_nothing_for_the_next_writer_to_resume(
    record: Path, step: str
) -> None:
    with pytest.raises(OSError), IH5Record(record, "r+") as rec:
        rec["discarded"] = 1
        with failing(step):
            rec.discard_patch()
    with IH5Record(record, "r+") as rec:
        assert rec.chain.writer is not None and len(rec.chain.writer.file) == 0  # a fresh one
        assert "discarded" not in rec
    assert not list(record.parent.glob(".rec.*"))


def test_atomic_update_json_whose_in_flight_note_cannot_be_cleared_still_succeeds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "doc.json"
    atomic_write_json(path, {"n": [0]})
    with failing("os.ftruncate"):
        atomic_update_json(path, lambda doc: {"n": [*doc["n"], 1]})
    assert read_json(path) == {"n": [0, 1]}
    atomic_update_json(path, lambda doc: {"n": [*doc["n"], 2]})
    assert read_json(path) == {"n": [0, 1, 2]}
    assert (tmp_path / "doc.json.lock").read_bytes() == b""


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A lone copy of a packed record's manifest, its source changed since."""
    source = tmp_path / "src"
    (source / "a").mkdir(parents=True)
    (source / "a" / "one.txt").write_bytes(b"one")
    pack_directory(source, tmp_path / "real" / "rec")
    (tmp_path / "remote").mkdir()
    shutil.copy2(tmp_path / "real" / "rec.ih5mf.json", tmp_path / "remote")
    (source / "two.txt").write_bytes(b"two")
    return tmp_path / "remote"


def pack_remote(remote: Path) -> None:
    pack_directory(remote.parent / "src", remote / "rec")


PATCH_FILES = ["rec.ih5mf.json", "rec.p1.ih5", "rec.p1.ih5mf.json"]
MOVE_PATCH = "os.link rec.p1.ih5 rec.p1.ih5"
"""Publishing the patch from the staging directory, before its manifest."""


def test_pack_directory_on_a_stub_that_fails_to_place_the_patch_leaves_no_part_of_it(
    remote: Path,
) -> None:
    with pytest.raises(OSError), failing(MOVE_PATCH):
        pack_remote(remote)
    assert os.listdir(remote) == ["rec.ih5mf.json"]


def test_pack_directory_on_a_stub_completes_a_patch_killed_before_it_was_placed(
    remote: Path,
) -> None:
    assert run_trial(partial(pack_remote, remote), Fault("kill", match=MOVE_PATCH)).killed
    assert "rec.p1.ih5" not in os.listdir(remote)
    pack_remote(remote)
    assert sorted(os.listdir(remote)) == PATCH_FILES
    for name in PATCH_FILES[1:]:
        shutil.copy2(remote / name, remote.parent / "real")
    with IH5MFRecord(remote.parent / "real" / "rec") as rec:
        assert sorted(rec) == ["a", "two.txt"]


def test_pack_directory_on_a_stub_removes_staging_directories_of_killed_runs(
    remote: Path,
) -> None:
    assert run_trial(partial(pack_remote, remote), Fault("kill", match="h5py.close")).killed
    assert [name for name in os.listdir(remote) if ".stub-" in name]
    pack_remote(remote)
    assert sorted(os.listdir(remote)) == PATCH_FILES


@pytest.mark.parametrize("mode", ["x", "w-"])
def test_record_create_over_a_sealed_base_of_a_killed_writer_refuses_as_existing(
    tmp_path: Path, mode: str
) -> None:
    record = tmp_path / "rec"

    def create() -> None:
        with IH5Record(record, "w") as rec:
            rec["data"] = np.arange(3)

    killed = Fault("kill", match="os.link .rec.ih5.")
    assert run_trial(create, killed).killed
    with pytest.raises(RecordExistsError):
        IH5Record(record, mode)
    with IH5Record(record) as rec:
        assert content(rec)["data"][1] == ("<i8", [0, 1, 2])


def test_commit_patch_whose_directory_fsync_fails_raises_that_error_and_keeps_the_commit(
    record: Path,
) -> None:
    with pytest.raises(OSError) as raised, IH5Record(record, "r+") as rec:
        rec["new"] = 1
        with failing(f"os.fsync {record.parent.name}"):
            rec.commit_patch()
    assert (raised.type, raised.value.errno) == (OSError, errno.EIO)
    with IH5Record(record) as rec:
        assert values_at(rec, "new") == 1


def test_merge_files_removes_the_temp_file_of_a_merge_killed_before(record: Path) -> None:
    target = record.parent / "merged.ih5"

    def merge() -> None:
        with IH5Record(record) as rec:
            rec.merge_files(target)

    assert run_trial(merge, Fault("kill", match="os.link")).killed
    assert [path for path in record.parent.iterdir() if is_temp_name(path.name)]
    merge()
    assert not [path for path in record.parent.iterdir() if is_temp_name(path.name)]
