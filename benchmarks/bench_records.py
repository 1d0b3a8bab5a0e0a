"""Record speed: reads through long chains, opens, verification and merge, against h5py/hashlib.

Every row has a baseline measured in the same run, interleaved with it (best of the rounds):

(a) read   a 16-value dataset at depth 5 (/a/b/c/d/e/ds) from records with 1, 10, 100,
           1000 patches. The dataset lives in the newest patch (it is rewritten by the
           patch that ends each chain; the other patches change a root attribute, an
           attribute of /a/b on its path, or a small dataset elsewhere); baseline: raw
           h5py reading the same dataset from the merged file. Targets: <= 1.5x at 100
           patches, flat (<= 1.2x) from 100 to 1000 patches.
(b) open   ``IH5Record(path)`` (default verification) + the first read + close, with this
           process's facts cache emptied before each open, as a new process would; and the
           same with ``verify=False`` at 100 containers; baseline: h5py.File open + read +
           close of the merged file; the best single open of ``--opens`` rounds. Targets:
           <= 50 ms at every chain length, <= 10 ms with ``verify=False`` at 100 containers.
(c) big    open + one read of a 1 GiB one-container record that was verified before
           (unchanged since), against h5py opening the container and reading the same
           value: <= 3x. ``verify="full"`` re-hashes it: >= 0.8x hashlib's throughput.
(d) first  open + one read of a 100,000-node manifest record in a fresh process
           (``IH5MFRecord``, then ``IH5Record`` on it): <= 1 s (scaled with the node
           count in the quick run).
(e) merge  merge_files() of a record holding a 1 GiB gzip-chunked dataset (plus two small
           patches); baseline: h5py Group.copy of the dataset between plain files.

    .venv/bin/python benchmarks/bench_records.py            # full run (~3 GiB on disk)
    .venv/bin/python benchmarks/bench_records.py --quick    # CI-sized run (64 MiB, <= 100 patches)
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
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
from verdict import Check, finish, load_note

from ih5.manifest import IH5MFRecord
from ih5.record import IH5Record
from ih5.record._opening import forget_process_caches

BENCH = "bench_records"
DEPTH5 = "a/b/c/d/e/ds"
MIB = 1 << 20
TARGET_READ_RATIO_AT_100 = 1.5
TARGET_READ_FLATNESS = 1.2
TARGET_OPEN_S = 0.050
TARGET_OPEN_NO_VERIFY_S = 0.010
TARGET_BIG_RATIO = 3.0
TARGET_VERIFY_RATIO = 0.8
TARGET_FIRST_OPEN_S_PER_100K = 1.0
RACY_WAIT_S = 2.1
"""A verified container is trusted only once its timestamps are older than this."""


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


@contextmanager
def timed(talk: Console, what: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    talk.log(f"{what}: {time.perf_counter() - start:.1f} s")


# --- (a) and (b): chains of small patches -----------------------------------------


def depth5_value(patches: int) -> np.ndarray:
    return np.arange(16, dtype="f8") + patches


def build_chain(directory: Path, patches: int, lengths: Sequence[int]) -> Path:
    """A record with ``patches`` small patches; patch n rewrites /a/b/c/d/e/ds if n ends a
    chain of ``lengths``, so that each prefix reads it from its newest patch."""
    directory.mkdir()
    path = directory / "rec"
    with IH5Record(path, "w") as rec:
        rec[DEPTH5] = depth5_value(0)
        rec["misc/seed"] = np.zeros(4)
    with IH5Record(path, "r+") as rec:  # opening starts the first patch
        for index in range(1, patches + 1):
            if index > 1:
                rec.create_patch()
            if index in lengths:
                del rec[DEPTH5]
                rec[DEPTH5] = depth5_value(index)
            elif index % 3 == 0:
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


def merged_copy(record: Path, target: Path) -> Path:
    with IH5Record(record, "r", verify=False) as rec:
        return rec.merge_files(target)


def bench_reads(records: dict[int, Path], reads: int, repeat: int, work: Path) -> list[Row]:
    rows = []
    with ExitStack() as stack:
        calls: dict[str, Callable[[], object]] = {}
        raws: dict[str, Callable[[], object]] = {}
        for patches, path in records.items():
            merged = merged_copy(path, work / f"merged{patches}.ih5")
            raw = stack.enter_context(h5py.File(merged, "r"))
            rec = stack.enter_context(IH5Record(path, "r", verify=False))
            assert np.array_equal(rec[DEPTH5][()], depth5_value(patches))
            assert np.array_equal(raw[DEPTH5][()], depth5_value(patches))
            calls[chain_label(patches)] = lambda rec=rec: rec[DEPTH5][()]
            raws[chain_label(patches)] = lambda raw=raw: raw[DEPTH5][()]
        both = {f"ih5 {key}": call for key, call in calls.items()}
        both |= {f"raw {key}": call for key, call in raws.items()}
        best = best_per_call(both, reads, repeat)
    for case in calls:
        target = f"<= {TARGET_READ_RATIO_AT_100}" if case == "100 patches" else ""
        rows.append(Row("read", case, best[f"ih5 {case}"], best[f"raw {case}"], "µs", target))
    return rows


def read_once(rec: IH5Record | h5py.File) -> None:
    rec[DEPTH5][()]


def bench_opens(records: dict[int, Path], repeat: int, work: Path) -> list[Row]:
    rows = []
    for patches, path in records.items():
        merged = work / f"merged{patches}.ih5"

        def raw(merged: Path = merged) -> None:
            with h5py.File(merged, "r") as file:
                read_once(file)

        def ours(path: Path = path, verify: bool = True) -> None:
            forget_process_caches()  # as in a new process
            with IH5Record(path, "r", verify=verify) as rec:
                read_once(rec)

        calls: dict[str, Callable[[], object]] = {"raw": raw, "verify": ours}
        if patches == 100:
            calls["no verify"] = lambda path=path: ours(path, verify=False)
        ours(path)  # the first open verifies and remembers it
        best = best_per_call(calls, number=1, repeat=repeat)
        case = chain_label(patches)
        target = f"<= {TARGET_OPEN_S * 1e3:g} ms"
        rows.append(Row("open + read", case, best["verify"], best["raw"], "ms", target))
        if "no verify" in best:
            target = f"<= {TARGET_OPEN_NO_VERIFY_S * 1e3:g} ms"
            rows.append(
                Row("open + read, verify=False", case, best["no verify"], best["raw"], "ms", target)
            )
    return rows


# --- (c) one big container ---------------------------------------------------------


def build_big_record(directory: Path, size: int) -> Path:
    """A base holding ``size`` random bytes in one dataset, and a 16-value dataset."""
    directory.mkdir()
    path = directory / "big"
    rng = np.random.default_rng(0)
    with IH5Record(path, "w") as rec:
        dataset = rec.create_dataset("bytes", shape=(size,), dtype="u1")
        for start in range(0, size, 64 * MIB):
            stop = min(size, start + 64 * MIB)
            dataset[start:stop] = np.frombuffer(rng.bytes(stop - start), dtype="u1")
        rec["small"] = np.arange(16)
    return path


def hashlib_payload(container: Path) -> None:
    with open(container, "rb") as stream:
        stream.seek(1024)
        hashlib.file_digest(stream, "sha256")


def bench_big(path: Path, repeat: int) -> list[Row]:
    with IH5Record(path, "r", verify=False) as rec:
        (container,) = rec.containers
    payload = container.stat().st_size - 1024
    hashlib_payload(container)  # bring the file into the page cache
    time.sleep(RACY_WAIT_S)  # a file written just now is never trusted unhashed
    IH5Record(path, "r").close()  # verified once: remembered from now on

    def raw() -> None:
        with h5py.File(container, "r") as file:
            file["small"][()]

    def ours() -> None:
        forget_process_caches()
        with IH5Record(path, "r") as rec:
            rec["small"][()]

    best = best_per_call({"raw": raw, "ours": ours}, number=1, repeat=max(5, repeat))
    full = best_per_call(
        {
            "hashlib": lambda: hashlib_payload(container),
            "ih5": lambda: IH5Record(path, "r", verify="full").close(),
        },
        number=1,
        repeat=repeat,
    )
    case = f"{payload / MIB:,.0f} MiB, 1 container"
    return [
        Row(
            "open + read, verified before",
            case,
            best["ours"],
            best["raw"],
            "ms",
            f"<= {TARGET_BIG_RATIO:g}x",
        ),
        Row(
            "verify='full'",
            case,
            payload / full["ih5"],
            payload / full["hashlib"],
            "MiB/s",
            f">= {TARGET_VERIFY_RATIO}x",
        ),
    ]


# --- (d) a first open of a many-node record in a fresh process ----------------------


def build_wide(record: Path, groups: int, per_group: int) -> int:
    """A manifest record of ``groups`` groups of ``per_group`` scalars; return its nodes."""
    record.parent.mkdir()
    with IH5MFRecord(record, "w") as rec:
        for g in range(groups):
            group = rec.create_group(f"g{g:04d}")
            group.attrs["index"] = g
            for d in range(per_group):
                dataset = group.create_dataset(f"d{d:02d}", data=d)
                if d % 10 == 0:
                    dataset.attrs["unit"] = "m"
    with IH5MFRecord(record, "r+") as rec:  # opening starts a patch
        rec["g0000/d00"].attrs["unit"] = "mm"
    return 1 + groups * (1 + per_group)


CHILD = """
import sys, time
t0 = time.perf_counter()
from ih5.manifest import IH5MFRecord
from ih5.record import IH5Record
t1 = time.perf_counter()
cls = IH5MFRecord if sys.argv[2] == "mf" else IH5Record
with cls(sys.argv[1]) as rec:
    rec["g0000/d00"][()]
    rec["g0000/d00"].attrs["unit"]
print(time.perf_counter() - t1)
"""


def first_open(record: Path, kind: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(record), kind], check=True, capture_output=True
    )
    return float(out.stdout)


def bench_first_open(record: Path, nodes: int, repeat: int) -> list[Row]:
    def raw() -> float:
        script = (
            "import sys, time; t0 = time.perf_counter(); import h5py; t1 = time.perf_counter()\n"
            "with h5py.File(sys.argv[1]) as f: f['g0000/d00'][()]\n"
            "print(time.perf_counter() - t1)"
        )
        container = record.with_suffix(".ih5")  # the base holds every node
        out = subprocess.run(
            [sys.executable, "-c", script, str(container)], check=True, capture_output=True
        )
        return float(out.stdout)

    first_open(record, "mf")  # a first ever open may verify and fill the caches
    first_open(record, "plain")
    best = {"raw": float("inf"), "mf": float("inf"), "plain": float("inf")}
    for _ in range(repeat):
        best["raw"] = min(best["raw"], raw())
        best["mf"] = min(best["mf"], first_open(record, "mf"))
        best["plain"] = min(best["plain"], first_open(record, "plain"))
    target = f"<= {TARGET_FIRST_OPEN_S_PER_100K * nodes / 100_000:.2g} s"
    case = f"{nodes:,} nodes"
    return [
        Row("first open + read, IH5MFRecord", case, best["mf"], best["raw"], "ms", target),
        Row("first open + read, IH5Record", case, best["plain"], best["raw"], "ms", target),
    ]


# --- (e) merge -------------------------------------------------------------------


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
        with IH5Record(path, "r+") as rec:  # opening starts a patch
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
    table = Table(title=title, caption=f"load average {load_note()} at the end")
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


def checks(rows: Sequence[Row]) -> list[Check]:
    found = []
    reads = {row.case: row for row in rows if row.benchmark == "read"}
    if "100 patches" in reads:
        ratio = reads["100 patches"].ratio
        found.append(
            Check(
                BENCH,
                "read at 100 patches vs h5py",
                f"{ratio:.2f}x",
                f"<= {TARGET_READ_RATIO_AT_100}x",
                ratio <= TARGET_READ_RATIO_AT_100,
            )
        )
    if "100 patches" in reads and "1000 patches" in reads:
        growth = reads["1000 patches"].value / reads["100 patches"].value
        found.append(
            Check(
                BENCH,
                "read, 1000 vs 100 patches",
                f"{growth:.2f}x",
                f"<= {TARGET_READ_FLATNESS}x",
                growth <= TARGET_READ_FLATNESS,
            )
        )
    for row in rows:
        measured = f"{row.value * 1e3:.1f} ms ({row.ratio:.1f}x h5py)"
        if row.benchmark == "open + read":
            found.append(
                Check(
                    BENCH,
                    f"open + first read, {row.case}",
                    measured,
                    row.target,
                    row.value <= TARGET_OPEN_S,
                )
            )
        elif row.benchmark == "open + read, verify=False":
            found.append(
                Check(
                    BENCH,
                    f"open + one read, {row.case}, verify=False",
                    measured,
                    row.target,
                    row.value <= TARGET_OPEN_NO_VERIFY_S,
                )
            )
        elif row.benchmark == "open + read, verified before":
            found.append(
                Check(
                    BENCH,
                    f"open + one read, {row.case}",
                    measured,
                    row.target,
                    row.ratio <= TARGET_BIG_RATIO,
                )
            )
        elif row.benchmark == "verify='full'":
            found.append(
                Check(
                    BENCH,
                    f"verify='full', {row.case}",
                    f"{row.ratio:.2f}x hashlib",
                    row.target,
                    row.ratio >= TARGET_VERIFY_RATIO,
                )
            )
        elif row.benchmark.startswith("first open"):
            limit = float(row.target.split()[1])
            found.append(
                Check(
                    BENCH,
                    f"{row.benchmark}, {row.case}, new process",
                    f"{row.value:.3f} s",
                    row.target,
                    row.value <= limit,
                )
            )
    return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--reads", type=int, default=300, help="reads per timing round of (a)")
    parser.add_argument("--rounds", type=int, default=30, help="timing rounds of (a)")
    parser.add_argument("--opens", type=int, default=25, help="timing rounds of (b)")
    parser.add_argument(
        "--processes", type=int, default=7, help="timing rounds of (d), a fresh process each"
    )
    parser.add_argument("--big-mib", type=int, default=1024, help="record size for (c)")
    parser.add_argument("--groups", type=int, default=1000, help="groups of 99 scalars in (d)")
    parser.add_argument("--merge-mib", type=int, default=1024, help="dataset size for (e)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (c) and (e); best counts")
    parser.add_argument(
        "--dir", type=Path, default=Path.cwd(), help="where to make the temp dir (default: cwd)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--quick", action="store_true", help="CI-sized: <= 100 patches, 64 MiB")
    args = parser.parse_args(argv)
    if args.quick:
        args.patches = [n for n in args.patches if n <= 100]
        args.reads, args.rounds, args.repeat = 200, 6, 2
        # An open costs milliseconds: enough rounds that the best is not one a busy
        # machine slowed (a fresh process costs a hundred times more: fewer of those).
        args.opens, args.processes = 15, 3
        args.big_mib = args.merge_mib = 64
        args.groups = 100
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    talk = Console(stderr=True)
    workdir = Path(tempfile.mkdtemp(prefix="ih5-bench-records-", dir=args.dir))
    rows: list[Row] = []
    try:
        longest = max(args.patches)
        with timed(talk, f"built a record with {longest} patches"):
            chain = build_chain(workdir / "chain", longest, args.patches)
            records = {n: chain_prefix(chain, n, workdir / f"len{n}") for n in args.patches}
        with timed(talk, "(a) reads"):
            rows += bench_reads(records, args.reads, args.rounds, workdir)
        time.sleep(RACY_WAIT_S)
        with timed(talk, "(b) opens"):
            rows += bench_opens(records, args.opens, workdir)
        with timed(talk, f"(c) built a {args.big_mib} MiB record"):
            big = build_big_record(workdir / "big", args.big_mib * MIB)
        with timed(talk, "(c) open a verified record, verify='full'"):
            rows += bench_big(big, args.repeat)
        shutil.rmtree(workdir / "big")
        with timed(talk, f"(d) built a record of {args.groups} x 99 scalars"):
            nodes = build_wide(workdir / "wide" / "rec", args.groups, 99)
        with timed(talk, "(d) first opens in fresh processes"):
            rows += bench_first_open(workdir / "wide" / "rec", nodes, args.processes)
        with timed(talk, f"(e) built a {args.merge_mib} MiB gzip record"):
            gz = build_gzip_record(workdir / "merge", args.merge_mib * MIB)
        with timed(talk, "(e) merge"):
            rows += bench_merge(gz, workdir / "merge", args.repeat)
    finally:
        if args.keep:
            talk.log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    console = Console()
    console.width = max(console.width, 110)  # keep the table's rows on one line each
    console.print(render(rows, "ih5 records against raw h5py / hashlib (baseline, same run)"))
    return finish(checks(rows))


if __name__ == "__main__":
    sys.exit(main())
