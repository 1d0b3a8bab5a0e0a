"""Record speed: reads through long chains, open, verification and merge, against h5py/hashlib.

Four measurements, each with a baseline measured in the same run:

(a) read   a 16-value dataset at depth 5 (/a/b/c/d/e/ds) from records with 1, 10, 100,
           1000 patches (each patch changes a root attribute, an attribute of /a/b on the
           dataset's path, or a small dataset elsewhere); baseline: raw h5py reading the
           same dataset from the merged file. Targets: <= 1.5x at 100 patches, and flat
           (<= 1.2x) from 100 to 1000 patches.
(b) open   IH5Record(..., verify=False) + close, cold (process-wide facts cache emptied
           before each open) and warm (re-open); baseline: h5py.File open + close of the
           merged file.
(c) verify IH5Record(...) with hashsum verification of a ~1 GiB two-container record;
           baseline: hashlib.sha256 over the same bytes (hashlib.file_digest per container).
           Target: >= 0.8x hashlib's throughput.
(d) merge  merge_files() of a record holding a 1 GiB gzip-chunked dataset (plus two small
           patches); baseline: h5py Group.copy of the dataset between plain files.

    .venv/bin/python benchmarks/bench_records.py            # full run (~3 GiB on disk)
    .venv/bin/python benchmarks/bench_records.py --quick    # smoke run (64 MiB, <= 100 patches)
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from rich.console import Console
from rich.table import Table

import ih5.record.facts
import ih5.record.opening
from ih5.record import IH5Record
from ih5.record.facts import FactsCache

DEPTH5 = "a/b/c/d/e/ds"
MIB = 1 << 20
TARGET_READ_RATIO_AT_100 = 1.5
TARGET_READ_FLATNESS = 1.2
TARGET_VERIFY_RATIO = 0.8


@dataclass(frozen=True)
class Row:
    """One line of the table: a measured value against its baseline."""

    benchmark: str
    case: str
    value: float
    baseline: float
    unit: str
    target: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline


def best_per_call(
    calls: dict[str, Callable[[], object]], number: int, repeat: int
) -> dict[str, float]:
    """Seconds per call of each callable: the best mean of ``number`` calls over ``repeat``
    rounds. Rounds interleave the callables, so that a drifting machine load hits all alike."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, call in calls.items():
            best[name] = min(best[name], timeit.timeit(call, number=number) / number)
    return best


def chain_label(patches: int) -> str:
    return f"{patches} patch" if patches == 1 else f"{patches} patches"


def clear_facts_cache() -> None:
    """Empty the process-wide cache of container facts (opening.py holds its own reference)."""
    fresh = FactsCache()
    ih5.record.facts.FACTS_CACHE = fresh
    ih5.record.opening.FACTS_CACHE = fresh  # type: ignore[attr-defined]


@contextmanager
def timed(talk: Console, what: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    talk.log(f"{what}: {time.perf_counter() - start:.1f} s")


# --- (a) and (b): chains of small patches -----------------------------------------


def build_chain(directory: Path, patches: int) -> Path:
    """A record with ``patches`` small patches; none of them touches /a/b/c/d/e/ds."""
    directory.mkdir()
    path = directory / "rec"
    with IH5Record(path, "w") as rec:
        rec[DEPTH5] = np.arange(16, dtype="f8")
        rec["misc/seed"] = np.zeros(4)
    with IH5Record(path, "r+") as rec:  # opening starts the first patch
        for index in range(1, patches + 1):
            if index > 1:
                rec.create_patch()
            if index % 3 == 0:
                rec["a/b"].attrs["step"] = index
            elif index % 3 == 1:
                rec.attrs["step"] = index
            else:
                rec[f"misc/d{index}"] = np.full(4, index)
            rec.commit_patch()
    return path


def chain_prefix(source: Path, patches: int, directory: Path) -> Path:
    """A copy of ``source``'s base and first ``patches`` patches: a record of its own."""
    directory.mkdir()
    with IH5Record(source, "r", at=patches, verify=False) as rec:
        for container in rec.containers:
            shutil.copyfile(container, directory / container.name)
    return directory / source.name


def bench_reads(records: dict[int, Path], merged: Path, reads: int, repeat: int) -> list[Row]:
    with ExitStack() as stack:
        raw = stack.enter_context(h5py.File(merged, "r"))
        expected = raw[DEPTH5][()]
        calls: dict[str, Callable[[], object]] = {"raw": lambda: raw[DEPTH5][()]}
        for patches, path in records.items():
            rec = stack.enter_context(IH5Record(path, "r", verify=False))
            assert np.array_equal(rec[DEPTH5][()], expected)
            calls[chain_label(patches)] = lambda rec=rec: rec[DEPTH5][()]
        best = best_per_call(calls, reads, repeat)
    baseline = best.pop("raw")
    return [
        Row("read", case, value, baseline, "µs", "<= 1.5" if case == "100 patches" else "")
        for case, value in best.items()
    ]


def bench_opens(records: dict[int, Path], merged: Path, repeat: int) -> list[Row]:
    rows = []
    for patches, path in records.items():

        def open_warm(path: Path = path) -> None:
            IH5Record(path, "r", verify=False).close()

        def open_cold(path: Path = path) -> None:
            clear_facts_cache()
            IH5Record(path, "r", verify=False).close()

        calls = {
            "raw": lambda: h5py.File(merged, "r").close(),
            "cold": open_cold,
            "warm": open_warm,
        }
        best = best_per_call(calls, number=1, repeat=repeat)
        case = chain_label(patches)
        rows.append(Row("open, cold facts", case, best["cold"], best["raw"], "ms"))
        rows.append(Row("open, warm facts", case, best["warm"], best["raw"], "ms"))
    return rows


# --- (c) verification ------------------------------------------------------------


def write_random(rec: IH5Record, name: str, size: int, rng: np.random.Generator) -> None:
    dataset = rec.create_dataset(name, shape=(size,), dtype="u1")
    for start in range(0, size, 64 * MIB):
        stop = min(size, start + 64 * MIB)
        dataset[start:stop] = np.frombuffer(rng.bytes(stop - start), dtype="u1")


def build_big_record(directory: Path, size: int) -> Path:
    """A base and one patch, each holding half of ``size`` random bytes."""
    directory.mkdir()
    path = directory / "big"
    rng = np.random.default_rng(0)
    with IH5Record(path, "w") as rec:
        write_random(rec, "half0", size // 2, rng)
    with IH5Record(path, "r+") as rec:
        write_random(rec, "half1", size - size // 2, rng)
    return path


def hashlib_payloads(containers: Sequence[Path]) -> None:
    for container in containers:
        with open(container, "rb") as stream:
            stream.seek(1024)
            hashlib.file_digest(stream, "sha256")


def bench_verify(path: Path, repeat: int) -> list[Row]:
    with IH5Record(path, "r", verify=False) as rec:
        containers = rec.containers
    payload = sum(container.stat().st_size - 1024 for container in containers)
    hashlib_payloads(containers)  # bring the files into the page cache
    calls: dict[str, Callable[[], object]] = {
        "hashlib": lambda: hashlib_payloads(containers),
        "ih5": lambda: IH5Record(path, "r").close(),
    }
    best = best_per_call(calls, number=1, repeat=repeat)
    case = f"{payload / MIB:,.0f} MiB, {len(containers)} containers"
    return [
        Row(
            "verify",
            case,
            payload / best["ih5"],
            payload / best["hashlib"],
            "MiB/s",
            f">= {TARGET_VERIFY_RATIO}",
        )
    ]


# --- (d) merge -------------------------------------------------------------------


def build_gzip_record(directory: Path, size: int) -> Path:
    """A base holding ``size`` bytes of image-like int16 data, gzip-chunked, and two patches."""
    directory.mkdir()
    path = directory / "gz"
    rng = np.random.default_rng(1)
    count = size // 2
    step = 32 * MIB
    with IH5Record(path, "w") as rec:
        dataset = rec.create_dataset(
            "images", shape=(count,), dtype="i2", chunks=(MIB // 2,), compression="gzip"
        )
        for start in range(0, count, step):
            stop = min(count, start + step)
            signal = (np.sin(np.arange(start, stop) / 5000.0) * 2000).astype("i2")
            dataset[start:stop] = signal + rng.integers(0, 64, stop - start, dtype="i2")
    for index in (1, 2):
        with IH5Record(path, "r+") as rec:
            rec.attrs["step"] = index
            rec[f"small{index}"] = np.arange(10)
    return path


def bench_merge(path: Path, directory: Path, repeat: int) -> list[Row]:
    base = path.with_suffix(".ih5")

    def copy_raw() -> None:
        target = directory / "raw.h5"
        with h5py.File(base, "r") as source, h5py.File(target, "w") as out:
            source.copy(source["images"], out, "images")
        target.unlink()

    def merge() -> None:
        with IH5Record(path, "r", verify=False) as rec:
            target = rec.merge_files(directory / "merged.ih5")
        target.unlink()

    best = best_per_call({"raw": copy_raw, "ih5": merge}, number=1, repeat=repeat)
    with h5py.File(base, "r") as file:
        logical = file["images"].nbytes
    case = f"{logical / MIB:,.0f} MiB gzip dataset, {base.stat().st_size / MIB:,.0f} MiB stored"
    return [Row("merge", case, best["ih5"], best["raw"], "s")]


# --- output ----------------------------------------------------------------------

SCALE = {"µs": 1e6, "ms": 1e3, "s": 1.0, "MiB/s": 1.0 / MIB}


def render(rows: Sequence[Row], title: str) -> Table:
    table = Table(title=title)
    for column in ("benchmark", "case", "ih5", "baseline", "ratio ih5/baseline", "target"):
        table.add_column(column, justify="left" if column in ("benchmark", "case") else "right")
    for row in rows:
        scale = SCALE[row.unit]
        table.add_row(
            row.benchmark,
            row.case,
            f"{row.value * scale:,.1f} {row.unit}",
            f"{row.baseline * scale:,.1f} {row.unit}",
            f"{row.ratio:.2f}",
            row.target,
        )
    return table


def verdicts(rows: Sequence[Row]) -> list[str]:
    lines = []
    reads = {row.case: row for row in rows if row.benchmark == "read"}
    if "100 patches" in reads:
        ratio = reads["100 patches"].ratio
        ok = ratio <= TARGET_READ_RATIO_AT_100
        lines.append(f"(a) read at 100 patches {ratio:.2f}x raw h5py (target <= 1.5): {ok}")
    if "100 patches" in reads and "1000 patches" in reads:
        growth = reads["1000 patches"].value / reads["100 patches"].value
        ok = growth <= TARGET_READ_FLATNESS
        lines.append(f"(a) read 1000 vs 100 patches {growth:.2f}x (target <= 1.2, flat): {ok}")
    for row in rows:
        if row.benchmark == "verify":
            ok = row.ratio >= TARGET_VERIFY_RATIO
            lines.append(f"(c) verification {row.ratio:.2f}x hashlib (target >= 0.8): {ok}")
    return [line.replace(": True", ": PASS").replace(": False", ": FAIL") for line in lines]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--reads", type=int, default=300, help="reads per timing round of (a)")
    parser.add_argument("--rounds", type=int, default=30, help="timing rounds of (a)")
    parser.add_argument("--opens", type=int, default=7, help="timing rounds of (b)")
    parser.add_argument("--verify-mib", type=int, default=1024, help="record size for (c)")
    parser.add_argument("--merge-mib", type=int, default=1024, help="dataset size for (d)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (c) and (d); best counts")
    parser.add_argument(
        "--dir", type=Path, default=Path.cwd(), help="where to make the temp dir (default: cwd)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--quick", action="store_true", help="<= 100 patches, 64 MiB, fewer runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.patches = [n for n in args.patches if n <= 100]
        args.reads, args.rounds, args.opens, args.repeat = 200, 6, 3, 2
        args.verify_mib = args.merge_mib = 64
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    talk = Console(stderr=True)
    workdir = Path(tempfile.mkdtemp(prefix="ih5-bench-records-", dir=args.dir))
    rows: list[Row] = []
    try:
        longest = max(args.patches)
        with timed(talk, f"built a record with {longest} patches"):
            chain = build_chain(workdir / "chain", longest)
            records = {n: chain_prefix(chain, n, workdir / f"len{n}") for n in args.patches}
            with IH5Record(chain, "r", verify=False) as rec:
                merged = rec.merge_files(workdir / "merged.ih5")
        with timed(talk, "(a) reads"):
            rows += bench_reads(records, merged, args.reads, args.rounds)
        with timed(talk, "(b) opens"):
            rows += bench_opens(records, merged, args.opens)
        with timed(talk, f"(c) built a {args.verify_mib} MiB record"):
            big = build_big_record(workdir / "verify", args.verify_mib * MIB)
        with timed(talk, "(c) verification"):
            rows += bench_verify(big, args.repeat)
        shutil.rmtree(workdir / "verify")
        with timed(talk, f"(d) built a {args.merge_mib} MiB gzip record"):
            gz = build_gzip_record(workdir / "merge", args.merge_mib * MIB)
        with timed(talk, "(d) merge"):
            rows += bench_merge(gz, workdir / "merge", args.repeat)
    finally:
        if args.keep:
            talk.log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    console = Console()
    console.width = max(console.width, 100)  # keep the table's rows on one line each
    console.print(render(rows, "ih5 records against raw h5py / hashlib (baseline, same run)"))
    for line in verdicts(rows):
        console.print(line)


if __name__ == "__main__":
    main()
