"""Chunk-level patches: small changes write small patches; reads stay close to raw h5py.

Side by side in one run with raw h5py (one mutable file, changed in place) and,
when installed, versioned-hdf5 (versions inside one mutable file):

(a) edit   one element of a chunked float32 dataset (1 MiB chunks) changed per
           version, at two dataset sizes. Targets: bytes added per version <= two
           chunks + 64 KiB; ms per version at the big size <= 1.5x the small size
           (commit time does not grow with the dataset).
(b) append 50 versions each adding 1,000 rows (1 KiB each) to a resizable dataset.
           Targets: total bytes <= 1.1x the data; median ms per version of the last
           ten <= 1.5x that of the first ten (flat).
(c) full read of a dataset after 20 chunk patches, against raw h5py reading the same
           values from one plain file. Target: <= 1.3x.
(d) small read (1,000 values in one chunk) through a record with 1,000 chunk patches,
           against raw h5py on one plain file. Target: <= 1.5x.

    .venv/bin/python benchmarks/bench_chunks.py            # CI-sized (64 MiB for (a))
    .venv/bin/python benchmarks/bench_chunks.py --full     # (a) on a 1 GiB dataset

versioned-hdf5 is optional (run_all.py installs it from ``peers.txt``); without it its
columns say so and only ih5's targets are checked.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from verdict import Check, finish

from ih5.record import IH5Dataset, IH5Record

MIB = 1 << 20
CHUNK = MIB // 4  # float32 values per 1 MiB chunk
ROW = 256  # float32 values per appended row: 1 KiB
TARGET_EDIT_BYTES = 2 * MIB + 64 * 1024
TARGET_EDIT_GROWTH = 1.5
TARGET_APPEND_BYTES = 1.1
TARGET_APPEND_FLATNESS = 1.5
TARGET_FULL_READ = 1.3
TARGET_SMALL_READ = 1.5

try:
    import versioned_hdf5

    HAVE_VERSIONED = True
except ImportError:  # the arm is skipped, with a message
    HAVE_VERSIONED = False


@dataclass
class Row:
    """One line of the table: ih5's number, raw h5py's and versioned-hdf5's."""

    benchmark: str
    case: str
    unit: str
    ih5: float
    raw: float | None
    versioned: float | None


def dataset(record: IH5Record, path: str = "x") -> IH5Dataset:
    found = record[path]
    assert isinstance(found, IH5Dataset)
    return found


def record_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob("rec*.ih5"))


def make_values(count: int) -> np.ndarray[Any, Any]:
    return (np.arange(count, dtype=np.float32) % 1000).astype(np.float32)


# --- (a) one-element edits --------------------------------------------------------


def edit_ih5(directory: Path, mib: int, versions: int) -> tuple[float, float]:
    """ms per version (open r+, patch, write, commit, close) and bytes added per version."""
    directory.mkdir()
    with IH5Record(directory / "rec", "w") as record:
        created = record.create_dataset(
            "x", shape=(mib * CHUNK,), dtype="f4", chunks=(CHUNK,), maxshape=(None,)
        )
        for start in range(0, mib * CHUNK, 64 * CHUNK):
            created[start : start + 64 * CHUNK] = make_values(min(64 * CHUNK, mib * CHUNK - start))
    rng = np.random.default_rng(1)
    before = record_bytes(directory)
    start = time.perf_counter()
    for version in range(versions):
        with IH5Record(directory / "rec", "r+", verify=False) as record:
            if not record.has_patch:
                record.create_patch()
            dataset(record)[int(rng.integers(mib * CHUNK))] = -float(version)
    elapsed = time.perf_counter() - start
    return elapsed / versions * 1e3, (record_bytes(directory) - before) / versions


def edit_raw(directory: Path, mib: int, versions: int) -> float:
    """ms per in-place edit of a plain h5py file (open, write, close)."""
    path = directory / "raw.h5"
    with h5py.File(path, "w") as file:
        created = file.create_dataset("x", shape=(mib * CHUNK,), dtype="f4", chunks=(CHUNK,))
        for start in range(0, mib * CHUNK, 64 * CHUNK):
            created[start : start + 64 * CHUNK] = make_values(min(64 * CHUNK, mib * CHUNK - start))
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for version in range(versions):
        with h5py.File(path, "r+") as file:
            file["x"][int(rng.integers(mib * CHUNK))] = -float(version)
    return (time.perf_counter() - start) / versions * 1e3


def edit_versioned(directory: Path, mib: int, versions: int) -> tuple[float, float] | None:
    if not HAVE_VERSIONED:
        return None
    path = directory / "versioned.h5"
    with h5py.File(path, "w") as file:
        vfile = versioned_hdf5.VersionedHDF5File(file)
        with vfile.stage_version("v0") as group:
            group.create_dataset(
                "x", data=make_values(mib * CHUNK), chunks=(CHUNK,), maxshape=(None,)
            )
    rng = np.random.default_rng(1)
    before = path.stat().st_size
    start = time.perf_counter()
    for version in range(versions):
        with h5py.File(path, "r+") as file:
            vfile = versioned_hdf5.VersionedHDF5File(file)
            with vfile.stage_version(f"v{version + 1}") as group:
                group["x"][int(rng.integers(mib * CHUNK))] = -float(version)
    elapsed = time.perf_counter() - start
    return elapsed / versions * 1e3, (path.stat().st_size - before) / versions


def bench_edits(workdir: Path, sizes: Sequence[int], versions: int) -> list[Row]:
    rows = []
    for mib in sizes:
        directory = workdir / f"edit{mib}"
        ms, added = edit_ih5(directory, mib, versions)
        raw_ms = edit_raw(directory, mib, versions)
        other = edit_versioned(directory, mib, versions)
        case = f"{mib} MiB dataset, {versions} versions"
        rows.append(Row("(a) edit", case, "ms/version", ms, raw_ms, other and other[0]))
        rows.append(
            Row("(a) edit", case, "KiB added/version", added / 1024, 0.0, other and other[1] / 1024)
        )
        shutil.rmtree(directory)
    return rows


# --- (b) appends ------------------------------------------------------------------


def append_ih5(directory: Path, versions: int, rows: int) -> tuple[list[float], int]:
    directory.mkdir()
    with IH5Record(directory / "rec", "w") as record:
        record.create_dataset(
            "x", shape=(0, ROW), dtype="f4", chunks=(rows, ROW), maxshape=(None, ROW)
        )
    times = []
    block = make_values(rows * ROW).reshape(rows, ROW)
    for version in range(versions):
        start = time.perf_counter()
        with IH5Record(directory / "rec", "r+", verify=False) as record:
            if not record.has_patch:
                record.create_patch()
            target = dataset(record)
            target.resize((version + 1) * rows, axis=0)
            target[version * rows :] = block + version
        times.append(time.perf_counter() - start)
    return times, record_bytes(directory)


def append_raw(directory: Path, versions: int, rows: int) -> tuple[list[float], int]:
    path = directory / "raw.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset(
            "x", shape=(0, ROW), dtype="f4", chunks=(rows, ROW), maxshape=(None, ROW)
        )
    times = []
    block = make_values(rows * ROW).reshape(rows, ROW)
    for version in range(versions):
        start = time.perf_counter()
        with h5py.File(path, "r+") as file:
            file["x"].resize((version + 1) * rows, axis=0)
            file["x"][version * rows :] = block + version
        times.append(time.perf_counter() - start)
    return times, path.stat().st_size


def append_versioned(directory: Path, versions: int, rows: int) -> tuple[list[float], int] | None:
    if not HAVE_VERSIONED:
        return None
    path = directory / "versioned.h5"
    with h5py.File(path, "w") as file:
        vfile = versioned_hdf5.VersionedHDF5File(file)
        with vfile.stage_version("v0") as group:
            group.create_dataset(
                "x", shape=(0, ROW), dtype="f4", chunks=(rows, ROW), maxshape=(None, ROW)
            )
    times = []
    block = make_values(rows * ROW).reshape(rows, ROW)
    for version in range(versions):
        start = time.perf_counter()
        with h5py.File(path, "r+") as file:
            vfile = versioned_hdf5.VersionedHDF5File(file)
            with vfile.stage_version(f"v{version + 1}") as group:
                group["x"].resize(((version + 1) * rows, ROW))
                group["x"][version * rows :] = block + version
        times.append(time.perf_counter() - start)
    return times, path.stat().st_size


def flatness(times: Sequence[float]) -> float:
    """Median time of the last ten versions over that of the first ten: medians, so that a
    stall of a busy machine during one version does not read as growth."""
    tenth = max(1, min(10, len(times) // 3))
    return float(np.median(times[-tenth:]) / np.median(times[:tenth]))


def bench_appends(workdir: Path, versions: int, rows: int) -> list[Row]:
    directory = workdir / "append"
    data = versions * rows * ROW * 4
    ours, our_bytes = append_ih5(directory, versions, rows)
    raw, raw_bytes = append_raw(directory, versions, rows)
    other = append_versioned(directory, versions, rows)
    case = f"{versions} x {rows} rows of 1 KiB ({data / MIB:.0f} MiB)"
    out = [
        Row(
            "(b) append",
            case,
            "ms/version",
            float(np.mean(ours)) * 1e3,
            float(np.mean(raw)) * 1e3,
            other and float(np.mean(other[0])) * 1e3,
        ),
        Row(
            "(b) append",
            case,
            "bytes / data",
            our_bytes / data,
            raw_bytes / data,
            other and other[1] / data,
        ),
        Row(
            "(b) append",
            case,
            "last 10 / first 10 ms (median)",
            flatness(ours),
            flatness(raw),
            other and flatness(other[0]),
        ),
    ]
    shutil.rmtree(directory)
    return out


# --- (c), (d) reads -------------------------------------------------------------


def patched_record(directory: Path, values: int, chunk: int, patches: int) -> tuple[Path, Path]:
    """A record whose dataset got one element changed per patch; and the same values in a plain
    file (its merge)."""
    directory.mkdir()
    with IH5Record(directory / "rec", "w") as record:
        record.create_dataset("x", data=make_values(values), chunks=(chunk,), maxshape=(None,))
    rng = np.random.default_rng(2)
    record = IH5Record(directory / "rec", "r+", verify=False)
    try:
        for version in range(patches):
            if not record.has_patch:
                record.create_patch()
            dataset(record)[int(rng.integers(values))] = -float(version)
            record.commit_patch()
        plain = record.merge_files(directory / "plain.ih5")
    finally:
        record.close()
    return directory / "rec", plain


def best(calls: dict[str, Callable[[], object]], number: int, repeat: int) -> dict[str, float]:
    """Best mean seconds per call over ``repeat`` interleaved rounds of ``number`` calls."""
    result = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, call in calls.items():
            result[name] = min(result[name], timeit.timeit(call, number=number) / number)
    return result


def read_versioned(
    directory: Path, values: np.ndarray[Any, Any], chunk: int, patches: int
) -> Path | None:
    if not HAVE_VERSIONED:
        return None
    path = directory / "versioned.h5"
    with h5py.File(path, "w") as file:
        vfile = versioned_hdf5.VersionedHDF5File(file)
        with vfile.stage_version("v0") as group:
            group.create_dataset("x", data=values, chunks=(chunk,), maxshape=(None,))
        rng = np.random.default_rng(2)
        for version in range(patches):
            with vfile.stage_version(f"v{version + 1}") as group:
                group["x"][int(rng.integers(len(values)))] = -float(version)
    return path


def bench_full_read(workdir: Path, mib: int, patches: int, repeat: int) -> list[Row]:
    directory = workdir / "full"
    values = mib * CHUNK
    rec, plain = patched_record(directory, values, CHUNK, patches)
    versioned = read_versioned(directory, make_values(values), CHUNK, patches)
    with IH5Record(rec, verify=False) as record, h5py.File(plain) as file:
        calls: dict[str, Callable[[], object]] = {
            "ih5": lambda: dataset(record)[()],
            "raw": lambda: file["x"][()],
        }
        handle = None
        if versioned is not None:
            handle = h5py.File(versioned)
            vfile = versioned_hdf5.VersionedHDF5File(handle)
            calls["versioned"] = lambda: vfile[vfile.current_version]["x"][()]
        assert np.array_equal(dataset(record)[()], file["x"][()])
        times = best(calls, 1, repeat)
        if handle is not None:
            handle.close()
    shutil.rmtree(directory)
    case = f"{mib} MiB after {patches} chunk patches"
    return [
        Row(
            "(c) full read",
            case,
            "ms",
            times["ih5"] * 1e3,
            times["raw"] * 1e3,
            times.get("versioned", 0) * 1e3 if versioned else None,
        )
    ]


def bench_small_read(workdir: Path, patches: int, reads: int, repeat: int) -> list[Row]:
    directory = workdir / "small"
    chunk = 16_384
    values = 256 * chunk
    rec, plain = patched_record(directory, values, chunk, patches)
    versioned = read_versioned(directory, make_values(values), chunk, patches)
    rng = np.random.default_rng(3)
    starts = (rng.integers(0, values // chunk, reads) * chunk + 100).tolist()
    with IH5Record(rec, verify=False) as record, h5py.File(plain) as file:
        ours, raw = dataset(record), file["x"]
        for start in starts[:50]:
            assert np.array_equal(ours[start : start + 1000], raw[start : start + 1000])

        def read_ours() -> None:
            for start in starts:
                ours[start : start + 1000]

        def read_raw() -> None:
            for start in starts:
                raw[start : start + 1000]

        calls: dict[str, Callable[[], object]] = {"ih5": read_ours, "raw": read_raw}
        handle = None
        if versioned is not None:
            handle = h5py.File(versioned)
            vfile = versioned_hdf5.VersionedHDF5File(handle)
            theirs = vfile[vfile.current_version]["x"]

            def read_versioned_x() -> None:
                for start in starts:
                    theirs[start : start + 1000]

            calls["versioned"] = read_versioned_x
        times = best(calls, 1, repeat)
        if handle is not None:
            handle.close()
    shutil.rmtree(directory)
    case = f"1,000 values through {patches} chunk patches"
    scale = 1e6 / reads
    return [
        Row(
            "(d) small read",
            case,
            "µs/read",
            times["ih5"] * scale,
            times["raw"] * scale,
            times.get("versioned", 0) * scale if versioned else None,
        )
    ]


# --- output -----------------------------------------------------------------------


def show(value: float | None) -> str:
    return "not installed" if value is None else f"{value:,.2f}"


def render(rows: Sequence[Row]) -> str:
    header = ("benchmark", "case", "unit", "ih5", "raw h5py", "versioned-hdf5", "ih5/raw")
    lines = [header]
    for row in rows:
        ratio = f"{row.ih5 / row.raw:.2f}" if row.raw else ""
        lines.append(
            (
                row.benchmark,
                row.case,
                row.unit,
                show(row.ih5),
                show(row.raw),
                show(row.versioned),
                ratio,
            )
        )
    widths = [max(len(line[n]) for line in lines) for n in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    )


def verdicts(rows: Sequence[Row], sizes: Sequence[int]) -> list[tuple[str, bool]]:
    out = []
    by = {(row.benchmark, row.case, row.unit): row for row in rows}
    edit = [row for row in rows if row.benchmark == "(a) edit"]
    for row in edit:
        if row.unit == "KiB added/version":
            out.append(
                (
                    f"(a) {row.case}: {row.ih5:,.0f} KiB added per version "
                    f"(target <= {TARGET_EDIT_BYTES / 1024:,.0f})",
                    row.ih5 * 1024 <= TARGET_EDIT_BYTES,
                )
            )
    ms = [row for row in edit if row.unit == "ms/version"]
    if len(ms) == 2:
        growth = ms[1].ih5 / ms[0].ih5
        out.append(
            (
                f"(a) ms per version {sizes[1]} MiB vs {sizes[0]} MiB: {growth:.2f}x "
                f"(target <= {TARGET_EDIT_GROWTH}, not growing with size)",
                growth <= TARGET_EDIT_GROWTH,
            )
        )
    for (bench, _, unit), row in by.items():
        if bench == "(b) append" and unit == "bytes / data":
            out.append(
                (
                    f"(b) total bytes {row.ih5:.3f}x the data (target <= {TARGET_APPEND_BYTES})",
                    row.ih5 <= TARGET_APPEND_BYTES,
                )
            )
        if bench == "(b) append" and unit.startswith("last 10"):
            out.append(
                (
                    f"(b) last ten versions {row.ih5:.2f}x the first ten "
                    f"(target <= {TARGET_APPEND_FLATNESS}, flat)",
                    row.ih5 <= TARGET_APPEND_FLATNESS,
                )
            )
        if bench == "(c) full read":
            assert row.raw
            out.append(
                (
                    f"(c) full read {row.ih5 / row.raw:.2f}x raw h5py "
                    f"(target <= {TARGET_FULL_READ})",
                    row.ih5 / row.raw <= TARGET_FULL_READ,
                )
            )
        if bench == "(d) small read":
            assert row.raw
            out.append(
                (
                    f"(d) small read {row.ih5 / row.raw:.2f}x raw h5py "
                    f"(target <= {TARGET_SMALL_READ})",
                    row.ih5 / row.raw <= TARGET_SMALL_READ,
                )
            )
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="(a) on a 1 GiB dataset")
    parser.add_argument(
        "--quick", action="store_true", help="CI-sized (the default; for run_all.py)"
    )
    parser.add_argument("--edit-mib", type=int, default=64, help="big dataset of (a), MiB")
    parser.add_argument("--edit-versions", type=int, default=10)
    parser.add_argument("--appends", type=int, default=50)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--read-mib", type=int, default=64, help="dataset of (c), MiB")
    parser.add_argument("--read-patches", type=int, default=20)
    parser.add_argument("--small-patches", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp dir goes")
    args = parser.parse_args(argv)
    if args.full:
        args.edit_mib = 1024
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not HAVE_VERSIONED:
        print(
            "versioned-hdf5 is not installed: its arm is skipped "
            "(.venv/bin/pip install versioned-hdf5)",
            file=sys.stderr,
        )
    workdir = Path(tempfile.mkdtemp(prefix="ih5-bench-chunks-", dir=args.dir))
    sizes = [max(1, args.edit_mib // 16), args.edit_mib]
    rows: list[Row] = []
    try:
        rows += bench_edits(workdir, sizes, args.edit_versions)
        rows += bench_appends(workdir, args.appends, args.rows)
        rows += bench_full_read(workdir, args.read_mib, args.read_patches, args.repeat)
        rows += bench_small_read(workdir, args.small_patches, args.reads, args.repeat)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(rows))
    return finish([as_check("bench_chunks", line, ok) for line, ok in verdicts(rows, sizes)])


def as_check(bench: str, line: str, ok: bool) -> Check:
    """A verdict line ``what: measured (target ...)`` as the check ``run_all.py`` reads."""
    text, _, target = line.rpartition(" (target ")
    what, _, measured = text.partition(": ")
    return Check(bench, what, measured or text, target.removesuffix(")"), ok)


if __name__ == "__main__":
    sys.exit(main())
