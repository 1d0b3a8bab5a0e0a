"""Manifest floor costs: skeletons, manifests, stubs and commits, each against a baseline.

Every row times one operation of ours and a baseline measured in the same run;
ratio = ours / baseline (median of the repeats):

- skeleton + manifest bytes (every entry from the tree, as a commit without a previous
  manifest makes them: ``ih5.manifest._fragments``) of
  a 100,000-node record (1,000 groups x 99 tiny datasets, an attribute on every
  group and every 10th dataset), against ``json.dumps`` of the same manifest held as
  plain data (both in memory: like with like); target <= 2x;
- the same for a record with one 1 GiB dataset, against a record with one
  8-byte dataset: the cost must not depend on data size (ratio ~1);
- ``IH5MFRecord.create_stub`` from the 100,000-node manifest (parse, build,
  hash, write its own manifest), against h5py creating the same empty tree with
  the same placeholders directly; target <= 1.5x;
- committing a one-attribute patch (``create_patch``, one attribute,
  ``commit_patch``) on the open 100,000-node manifest record, against the same on a
  one-node manifest record: target <= 100 ms, growing with the change, not the record;
- committing a one-value patch on an open 1 GiB, 100-container record, against the
  same on a one-container record with 8 bytes of data (ratio ~1).

metador-core 0.1.1 (the peer in the issue) cannot be installed beside ih5's
pydantic 2, so it has no arm here; its figure is quoted in the issue.

    .venv/bin/python benchmarks/bench_manifest.py            # full run (~1.2 GiB on disk)
    .venv/bin/python benchmarks/bench_manifest.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from rich.console import Console
from rich.table import Table
from verdict import Check, finish, load_note

from ih5.format import USER_BLOCK_SIZE
from ih5.manifest import IH5Manifest, IH5MFRecord, IH5Skeleton, manifest_path, without_manifest_ext
from ih5.manifest import _fragments as fragments
from ih5.manifest._manifest import manifest_bytes

BENCH = "bench_manifest"
PLACEHOLDER = h5py.Empty("f8")
WRITE_SLICE = 1 << 23
"""Elements (float64) written per slice while filling the big dataset: 64 MiB."""


@dataclass(frozen=True)
class Sizes:
    groups: int
    datasets_per_group: int
    big_bytes: int
    patches: int
    repeats: int
    small_repeats: int
    commits: int

    @property
    def nodes(self) -> int:
        return 1 + self.groups * (1 + self.datasets_per_group)


FULL = Sizes(
    groups=1000,
    datasets_per_group=99,
    big_bytes=1 << 30,
    patches=100,
    repeats=3,
    small_repeats=200,
    commits=20,
)
QUICK = Sizes(
    groups=100,
    datasets_per_group=49,
    big_bytes=16 << 20,
    patches=10,
    repeats=3,
    small_repeats=50,
    commits=5,
)


@dataclass(frozen=True)
class Row:
    name: str
    size: str
    ours: float
    baseline_name: str
    baseline: float
    target: str

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline


def median_time(func: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``func``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:g} {unit}"
        value /= 1024
    return f"{value:g} GiB"


# --- records ------------------------------------------------------------------------


def build_wide(record: Path, sizes: Sizes) -> None:
    """The many-node record: groups of tiny datasets with some attributes."""
    with IH5MFRecord(record, "w") as rec:
        for g in range(sizes.groups):
            group = rec.create_group(f"g{g:04d}")
            group.attrs["index"] = g
            for d in range(sizes.datasets_per_group):
                dataset = group.create_dataset(f"d{d:02d}", data=d)
                if d % 10 == 0:
                    dataset.attrs["unit"] = "m"


def build_data(record: Path, nbytes: int, patches: int = 1) -> None:
    """A record with one float64 dataset of ``nbytes`` and ``patches`` containers in all."""
    elements = max(nbytes // 8, 1)
    with IH5MFRecord(record, "w") as rec:
        dataset = rec.create_dataset("big", shape=(elements,), dtype="f8")
        for start in range(0, elements, WRITE_SLICE):
            stop = min(start + WRITE_SLICE, elements)
            dataset[start:stop] = np.arange(start, stop, dtype="f8")
        dataset.attrs["unit"] = "V"
    with IH5MFRecord(record, "r+") as rec:  # opening starts the first patch
        for index in range(1, patches):
            if index > 1:
                rec.create_patch()
            rec.attrs["patch"] = index
            rec.commit_patch()


# --- what is timed ------------------------------------------------------------------


def skeleton_and_manifest(rec: IH5MFRecord) -> bytes:
    """What a commit without a previous manifest does to make one: every skeleton entry
    from the resolved tree, then the file's bytes."""
    entries = fragments.from_tree(rec.chain.root)
    return manifest_bytes(
        uuid.uuid4(),
        without_manifest_ext(rec.user_block),
        fragments.skeleton_text(entries.values()),
        rec.manifest_exts,
    )


def plain_manifest_bytes(data: dict[str, Any]) -> bytes:
    """Baseline: the manifest held as plain data, serialised the way the format demands."""
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def h5py_empty_tree(path: Path, skeleton: IH5Skeleton) -> None:
    """Baseline: create a skeleton's tree with placeholders directly with h5py."""
    with h5py.File(path, "w", userblock_size=USER_BLOCK_SIZE) as file:
        for name, entry in skeleton.root.items():
            if name != "/":
                if entry.node_type == "group":
                    file.create_group(name)
                else:
                    file.create_dataset(name, data=PLACEHOLDER)
            attrs = file[name].attrs
            for key in entry.attrs:
                attrs[key] = PLACEHOLDER


def commit_times(record: Path, commits: int) -> float:
    """Median time of committing a one-value patch on the open record."""
    times = []
    with IH5MFRecord(record, "r+") as rec:
        rec.discard_patch()  # the one opening started: each timed commit makes its own
        for index in range(commits):
            start = time.perf_counter()
            rec.create_patch()
            rec.attrs["counter"] = index
            rec.commit_patch()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- benchmarks ---------------------------------------------------------------------


def bench_wide(work: Path, sizes: Sizes, talk: Console) -> list[Row]:
    record = work / "wide"
    talk.log(f"building a record with {sizes.nodes:,} nodes")
    build_wide(record, sizes)
    with IH5MFRecord(record) as rec:
        plain = json.loads(skeleton_and_manifest(rec))
        ours = median_time(lambda: skeleton_and_manifest(rec), sizes.repeats)
        container = rec.containers[0]
    base = median_time(lambda: plain_manifest_bytes(plain), sizes.repeats)
    talk.log("creating stubs from its manifest")
    manifest = manifest_path(container)
    skeleton = IH5Manifest.load(manifest).skeleton
    stubs = iter(range(sizes.repeats))
    stub_time = median_time(
        lambda: IH5MFRecord.create_stub(work / f"stub{next(stubs)}", manifest), sizes.repeats
    )
    trees = iter(range(sizes.repeats))
    tree_time = median_time(
        lambda: h5py_empty_tree(work / f"tree{next(trees)}.h5", skeleton), sizes.repeats
    )
    talk.log("committing one-attribute patches on it")
    commit = commit_times(record, sizes.commits)
    build_wide(work / "one", Sizes(0, 0, 0, 0, 0, 0, 0))
    one = commit_times(work / "one", sizes.commits)
    size = f"{sizes.nodes:,} nodes"
    return [
        Row("skeleton + manifest", size, ours, "json.dumps of it", base, "<= 2x"),
        Row("create_stub", size, stub_time, "h5py empty tree", tree_time, "<= 1.5x"),
        Row("commit one attribute", size, commit, "same, 1 node", one, "<= 100 ms"),
    ]


def bench_data_size(work: Path, sizes: Sizes, talk: Console) -> list[Row]:
    talk.log(f"writing a record with one {human_bytes(sizes.big_bytes)} dataset")
    build_data(work / "big1", sizes.big_bytes)
    build_data(work / "tiny1", 8)
    with IH5MFRecord(work / "big1") as big, IH5MFRecord(work / "tiny1") as tiny:
        ours = median_time(lambda: skeleton_and_manifest(big), sizes.small_repeats)
        base = median_time(lambda: skeleton_and_manifest(tiny), sizes.small_repeats)
    size = f"1 dataset, {human_bytes(sizes.big_bytes)}"
    return [Row("skeleton + manifest", size, ours, "same, 8 B dataset", base, "~1")]


def bench_commit(work: Path, sizes: Sizes, talk: Console) -> list[Row]:
    talk.log(f"writing a {human_bytes(sizes.big_bytes)}, {sizes.patches}-container record")
    build_data(work / "bigrec", sizes.big_bytes, sizes.patches)
    build_data(work / "tinyrec", 8)
    talk.log("committing one-value patches")
    ours = commit_times(work / "bigrec", sizes.commits)
    base = commit_times(work / "tinyrec", sizes.commits)
    size = f"{human_bytes(sizes.big_bytes)}, {sizes.patches} containers"
    return [Row("commit one value", size, ours, "same, 8 B, 1 container", base, "~1")]


def render(rows: Sequence[Row], title: str) -> Table:
    table = Table(title=title, caption=f"load average {load_note()} at the end")
    for column in ("operation", "record", "ours (ms)", "baseline", "baseline (ms)", "ratio"):
        justify = "left" if column in ("operation", "record", "baseline") else "right"
        table.add_column(column, justify=justify)
    table.add_column("want", justify="left")
    for row in rows:
        table.add_row(
            row.name,
            row.size,
            f"{row.ours * 1e3:.3f}",
            row.baseline_name,
            f"{row.baseline * 1e3:.3f}",
            f"{row.ratio:.2f}",
            row.target,
        )
    return table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to write the records (default: a temp dir)",
    )
    return parser.parse_args(argv)


def checks(rows: Sequence[Row]) -> list[Check]:
    found = []
    for row in rows:
        measured = f"{row.ours * 1e3:.1f} ms ({row.ratio:.2f}x {row.baseline_name})"
        what = f"{row.name}, {row.size}"
        if row.target == "<= 2x":
            found.append(Check(BENCH, what, measured, row.target, row.ratio <= 2.0))
        elif row.target == "<= 1.5x":
            found.append(Check(BENCH, what, measured, row.target, row.ratio <= 1.5))
        elif row.target == "<= 100 ms":
            found.append(Check(BENCH, what, measured, row.target, row.ours <= 0.100))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    talk = Console(stderr=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="bench_manifest-") as tmp:
        work = Path(tmp)
        rows += bench_wide(work, sizes, talk)
        rows += bench_data_size(work, sizes, talk)
        rows += bench_commit(work, sizes, talk)
    title = "manifest floor" + (" (--quick)" if args.quick else "")
    Console(width=120).print(render(rows, title))
    return finish(checks(rows))


if __name__ == "__main__":
    sys.exit(main())
