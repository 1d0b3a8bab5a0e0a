"""A full disk: every operation raises DiskFullError, leaves nothing behind, and works once
space is freed.

Each case runs on a small tmpfs (tests run as root; skipped where mounting is not
allowed) that a filler file fills up to a given number of free bytes. HDF5 crashes
the interpreter when a deferred write meets a full disk, so a regression here shows
as a dead test process, never as a pass.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ih5 import (
    DiskFullError,
    IH5MFRecord,
    IH5Record,
    atomic_update_json,
    pack_directory,
    unpack_record,
)
from tests.helpers.tmpfs import mounted_tmpfs

SIZE = 1536 * 1024
"""Size of the tmpfs: room for the fixtures and a few hundred KiB to fill."""
FREE_LEVELS = [0, 8 * 1024, 64 * 1024, 200 * 1024]
"""Free bytes left by the filler in the CI-sized run."""
LONG_FREE_LEVELS = [0, 1024, 4096, 8192, 16384, 32768, 65536, 100_000, 131072, 200_000, 300_000]


@pytest.fixture(scope="module")
def tmpfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A freshly mounted small tmpfs, unmounted afterwards."""
    with mounted_tmpfs(tmp_path_factory.mktemp("tmpfs"), SIZE, "the full-disk suite") as mount:
        yield mount


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of about 320 KiB to pack (off the tmpfs)."""
    root = tmp_path_factory.mktemp("source")
    (root / "sub").mkdir()
    rng = np.random.default_rng(7)
    for i in range(8):
        (root / "sub" / f"f{i}.bin").write_bytes(rng.bytes(40_000))
    (root / "a.txt").write_text("hello\n")
    return root


Operation = Callable[[Path, Path], object]
"""An operation on the disk ``where``, given the source directory."""


def commit(where: Path, source: Path) -> object:
    with IH5Record(where / "rec", "r+") as rec:
        rec["big"] = np.random.default_rng(1).random(20_000)
    return None


def manifest_commit(where: Path, source: Path) -> object:
    with IH5MFRecord(where / "mf", "r+") as rec:
        rec["big"] = np.random.default_rng(1).random(20_000)
    return None


def attribute_commit(where: Path, source: Path) -> object:
    with IH5MFRecord(where / "mf", "r+") as rec:
        rec.attrs["note"] = "y" * 200
    return None


def merge(where: Path, source: Path) -> object:
    with IH5Record(where / "rec") as rec:
        return rec.merge_files(where / "merged.ih5")


def pack(where: Path, source: Path) -> object:
    return pack_directory(source, where / "packed")


def repack(where: Path, source: Path) -> object:
    changed = where.parent / f"changed-{uuid.uuid4().hex}"
    shutil.copytree(source, changed)
    try:
        (changed / "sub" / "f0.bin").write_bytes(np.random.default_rng(3).bytes(40_000))
        (changed / "new.bin").write_bytes(np.random.default_rng(4).bytes(60_000))
        return pack_directory(changed, where / "packed0")
    finally:
        shutil.rmtree(changed)


def stub(where: Path, source: Path) -> object:
    built = IH5MFRecord.create_stub(where / "stub", where / "mf.ih5mf.json")
    if isinstance(built, IH5Record):
        built.close()
    return built


def unpack(where: Path, source: Path) -> object:
    return unpack_record(where / "packed0", where / "out")


def metadata_update(where: Path, source: Path) -> object:
    return atomic_update_json(where / "doc.json", lambda doc: {**doc, "k": "v" * 5000})


OPERATIONS: dict[str, Operation] = {
    "commit": commit,
    "manifest commit": manifest_commit,
    "attribute commit": attribute_commit,
    "merge": merge,
    "pack": pack,
    "re-pack": repack,
    "stub": stub,
    "unpack": unpack,
    "metadata update": metadata_update,
}


def prepare(where: Path, source: Path) -> None:
    """Empty the tmpfs and put the records every operation starts from on it."""
    for entry in where.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    with IH5Record(where / "rec", "w") as rec:
        rec["a"] = np.arange(1000)
    with IH5MFRecord(where / "mf", "w") as rec:
        rec["a"] = np.arange(1000)
        rec["g/b"] = np.arange(10)
    pack_directory(source, where / "packed0")
    (where / "doc.json").write_text("{}")


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


def run_case(
    where: Path, source: Path, name: str, free: int, capfd: pytest.CaptureFixture[str]
) -> str:
    """Run one operation at one fill level; return 'ok' or 'full' after checking the rules."""
    operation = OPERATIONS[name]
    prepare(where, source)
    before = snapshot(where)
    filler = fill(where, free)
    capfd.readouterr()
    try:
        operation(where, source)
    except DiskFullError as exc:
        outcome = "full"
        assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC, (name, free)
        assert str(where) in str(exc), (name, free, str(exc))
    else:
        outcome = "ok"
    noise = capfd.readouterr().err
    assert noise == "", (name, free, noise[:500])
    filler.unlink()
    if outcome == "full":
        after = snapshot(where)
        new = sorted(set(after) - set(before) - {p for p in after if p.endswith(".lock")})
        assert new == [], (name, free, new)
        assert {p: after[p] for p in before} == before, (name, free)
        # Space is back: the same call now succeeds.
        operation(where, source)
    return outcome


def free_levels(long_run: bool) -> list[int]:
    return LONG_FREE_LEVELS if long_run else FREE_LEVELS


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_full_disk_gives_typed_error_and_nothing_left(
    tmpfs: Path, source: Path, name: str, long_run: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    """At every fill level the operation either succeeds or raises DiskFullError (an
    OSError with ENOSPC naming the location), prints nothing, leaves every earlier file
    as it was and no new one, and succeeds when run again once space is freed."""
    outcomes = [run_case(tmpfs, source, name, free, capfd) for free in free_levels(long_run)]
    assert "full" in outcomes, (name, outcomes)


def test_written_patch_is_trimmed_to_its_real_size(tmp_path: Path) -> None:
    """The disk space reserved ahead of HDF5 (megabytes at a time) is given back: a patch
    of 160 KB of data is committed at about that size, plus at most the unused rest of
    one 32 KiB metadata block (docs/FORMAT.md)."""
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec["a"] = np.arange(10)
    commit(tmp_path, tmp_path)
    size = (tmp_path / "rec.p1.ih5").stat().st_size
    assert 160_000 < size < 200_000 + (32 << 10), size
