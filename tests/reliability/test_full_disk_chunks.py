"""A full disk during chunk-level patches: DiskFullError, nothing left behind, and the same
call works once space is freed.

Writes into a dataset of an older patch, appends (resize + write), shrinking a
dataset whose chunks the open patch holds, copying a chunk-patched dataset into
the patch and merging one all store chunks through the disk space reserved
ahead of HDF5 (``ih5/record/room.py``). Each case runs on a small tmpfs (tests
run as root; skipped where mounting is not allowed) that a filler file fills up
to a given number of free bytes. HDF5 crashes the interpreter when a deferred
write meets a full disk, so a regression shows as a dead test process.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ih5 import DiskFullError, IH5Record
from ih5.record import IH5Dataset
from tests.helpers.tmpfs import mounted_tmpfs

SIZE = 1536 * 1024
"""Size of the tmpfs: room for the records and a few hundred KiB to fill."""
FREE_LEVELS = [0, 8 * 1024, 64 * 1024, 300 * 1024]
"""Free bytes left by the filler in the CI-sized run."""
LONG_FREE_LEVELS = [0, 1024, 4096, 16384, 32768, 65536, 100_000, 150_000, 200_000, 300_000]
CHUNK = 2048
"""float64 values per chunk: 16 KiB."""


@pytest.fixture(scope="module")
def tmpfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A freshly mounted small tmpfs, unmounted afterwards."""
    with mounted_tmpfs(tmp_path_factory.mktemp("tmpfs"), SIZE, "the full-disk suite") as mount:
        yield mount


def dataset(record: IH5Record, path: str = "c") -> IH5Dataset:
    found = record[path]
    assert isinstance(found, IH5Dataset)
    return found


def noise(count: int, seed: int) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """Values no chunk of the record holds yet (so nothing is reused by hash)."""
    return np.random.default_rng(seed).random(count)


def edit_one_element(where: Path) -> object:
    with IH5Record(where / "rec", "r+") as rec:
        dataset(rec)[CHUNK * 3 + 5] = -1.0
    return None


def write_a_region(where: Path) -> object:
    with IH5Record(where / "rec", "r+") as rec:
        dataset(rec)[CHUNK : CHUNK * 9] = noise(CHUNK * 8, 2)
    return None


def append_rows(where: Path) -> object:
    with IH5Record(where / "rec", "r+") as rec:
        target = dataset(rec)
        size = len(target)
        target.resize((size + CHUNK * 4,))
        target[size:] = noise(CHUNK * 4, 3)
    return None


def shrink_own_chunks(where: Path) -> object:
    with IH5Record(where / "rec", "r+") as rec:
        target = dataset(rec)
        target[0 : CHUNK * 4] = noise(CHUNK * 4, 4)
        target.resize((CHUNK + 100,))  # blanks the tail of the patch's own second chunk
        target.resize((CHUNK * 3,))
    return None


def copy_patched_dataset(where: Path) -> object:
    with IH5Record(where / "patched", "r+") as rec:
        dataset(rec).copy_into_patch()
    return None


def merge_patched_record(where: Path) -> object:
    with IH5Record(where / "patched") as rec:
        return rec.merge_files(where / "merged.ih5")


Operation = Callable[[Path], object]
OPERATIONS: dict[str, Operation] = {
    "edit one element": edit_one_element,
    "write a region": write_a_region,
    "append rows": append_rows,
    "shrink own chunks": shrink_own_chunks,
    "copy a patched dataset": copy_patched_dataset,
    "merge a patched record": merge_patched_record,
}


def prepare(where: Path) -> None:
    """Empty the tmpfs; put a chunked record and one whose dataset grew by chunk deltas on it."""
    for entry in where.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    with IH5Record(where / "rec", "w") as rec:
        rec.create_dataset("c", data=noise(CHUNK * 10, 1), chunks=(CHUNK,), maxshape=(None,))
    with IH5Record(where / "patched", "w") as rec:
        rec.create_dataset("c", shape=(0,), dtype="f8", chunks=(CHUNK,), maxshape=(None,))
    for version in range(3):
        with IH5Record(where / "patched", "r+") as rec:
            target = dataset(rec)
            target.resize(((version + 1) * CHUNK * 3,))
            target[version * CHUNK * 3 :] = noise(CHUNK * 3, 10 + version)


def fill(where: Path, free: int) -> Path:
    """Leave about ``free`` bytes free on the tmpfs; return the filler file."""
    stats = os.statvfs(where)
    filler = where / "filler"
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - free))
    return filler


def snapshot(where: Path) -> dict[str, bytes]:
    """Every file's bytes (lock files are kept on purpose and carry no bytes)."""
    return {
        str(path.relative_to(where)): path.read_bytes()
        for path in sorted(where.rglob("*"))
        if path.is_file() and path.name != "filler"
    }


def run_case(where: Path, name: str, free: int, capfd: pytest.CaptureFixture[str]) -> str:
    """Run one operation at one fill level; return 'ok' or 'full' after checking the rules."""
    operation = OPERATIONS[name]
    prepare(where)
    before = snapshot(where)
    filler = fill(where, free)
    capfd.readouterr()
    try:
        operation(where)
    except DiskFullError as exc:
        outcome = "full"
        assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC, (name, free)
        assert str(where) in str(exc), (name, free, str(exc))
    else:
        outcome = "ok"
    printed = capfd.readouterr().err
    assert printed == "", (name, free, printed[:500])
    filler.unlink()
    if outcome == "full":
        after = snapshot(where)
        new = sorted(set(after) - set(before) - {p for p in after if p.endswith(".lock")})
        assert new == [], (name, free, new)
        assert {p: after[p] for p in before} == before, (name, free)
        operation(where)  # space is back: the same call now succeeds
    return outcome


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_full_disk_during_chunk_patches_gives_typed_error_and_nothing_left(
    tmpfs: Path, name: str, long_run: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    """At every fill level the operation either succeeds or raises DiskFullError (ENOSPC,
    naming the location), prints nothing, leaves every earlier file as it was and no new
    one, and succeeds when run again once space is freed."""
    levels = LONG_FREE_LEVELS if long_run else FREE_LEVELS
    outcomes = [run_case(tmpfs, name, free, capfd) for free in levels]
    assert "full" in outcomes, (name, outcomes)


def test_values_written_after_a_full_disk_read_back(
    tmpfs: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A write refused for lack of space leaves the open patch usable: once space is freed
    in the same session the write goes through and reads back."""
    prepare(tmpfs)
    filler = fill(tmpfs, 64 * 1024)  # room for the patch, not for eight chunks
    values = noise(CHUNK * 8, 5)
    with IH5Record(tmpfs / "rec", "r+") as rec:
        with pytest.raises(DiskFullError):
            dataset(rec)[CHUNK : CHUNK * 9] = values
        filler.unlink()
        dataset(rec)[CHUNK : CHUNK * 9] = values
    with IH5Record(tmpfs / "rec") as rec:
        assert np.array_equal(dataset(rec)[CHUNK : CHUNK * 9], values)
    assert capfd.readouterr().err == ""
