"""Remote records against local servers: what a re-pack costs, opening, and read throughput.

Starts moto's S3 server and nginx on 127.0.0.1 (as the test suites do) and measures,
in one run:

1. A re-pack into ``s3://`` as the record grows (10 MiB -> 1 GiB of data) and as
   its history grows (1 -> 200 patches): bytes downloaded (object bytes and every
   byte on the wire, through a counting proxy) and requests. Target: neither
   grows with the record (largest / smallest <= 1.5), and no container byte is
   downloaded.
2. Opening a remote record of 1, 10, 100 patches over S3 and HTTP: time and
   requests; and the block size of the reader's cache, chosen by the same
   measurement over 64 KiB .. 4 MiB.
3. Reading a dataset through ih5 (``rec[path][:]``) against the client's plain
   ranged download of the same bytes (obstore ``get_range``), for a contiguous
   dataset and for a packed file (1 MiB chunks). Target: ratio >= 0.8.

Note on moto: its server answers a ranged GET by copying the whole object first
(an 8 MiB range of a 128 MiB object takes ~9x as long as of an 8 MiB one), so on
S3-via-moto every request beyond the first costs the object's size; the HTTP
rows (nginx) show the reader against a server with real range support.
"Wire bytes" count every response byte through a counting proxy, S3 listings
included: the listing grows with the number of objects under the prefix.

    .venv/bin/python benchmarks/bench_remote.py           # CI-sized run
    .venv/bin/python benchmarks/bench_remote.py --full    # 10 MiB..1 GiB, 1..200 patches, 256 MiB
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import obstore
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from verdict import Check, finish  # noqa: E402

from ih5 import IH5Record, RemoteOptions, pack_directory, push  # noqa: E402
from ih5.store import ObjectStore, open_store  # noqa: E402
from tests.remote.faulty_proxy import faulty_proxy  # noqa: E402
from tests.remote.servers import run_moto, run_nginx  # noqa: E402

MIB = 1 << 20
TARGET_GROWTH = 1.5
TARGET_THROUGHPUT = 0.8
BLOCK_SIZES = (64 << 10, 256 << 10, 1 << 20, 4 << 20)


def _best(seconds: list[float]) -> float:
    return min(seconds)


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _write_random(path: Path, size: int) -> None:
    rng = np.random.default_rng(size)
    with open(path, "wb") as out:
        left = size
        while left:
            step = min(left, 64 * MIB)
            out.write(rng.integers(0, 256, step, dtype=np.uint8).tobytes())
            left -= step


def repack_by_size(work: Path, bucket: str, sizes: list[int], endpoint: str) -> list[list[object]]:
    """Re-pack cost (one tiny change) as the packed data grows."""
    rows: list[list[object]] = []
    with faulty_proxy(endpoint) as (proxy, plan):
        options = RemoteOptions(endpoint=proxy)
        for size in sizes:
            source = work / f"size-{size}"
            source.mkdir()
            _write_random(source / "data.bin", size)
            url = f"{bucket}/size/rec-{size // MIB}"
            pack_directory(source, url, remote=options, trust_mtime=True)
            (source / "note.txt").write_bytes(b"changed")
            wire = plan.response_bytes
            result = pack_directory(source, url, remote=options, trust_mtime=True)
            assert result.transfer is not None and result.action == "patched"
            rows.append(
                [
                    f"{size // MIB} MiB",
                    result.transfer.requests,
                    result.transfer.listings,
                    result.transfer.bytes_downloaded,
                    plan.response_bytes - wire,
                ]
            )
            shutil.rmtree(source)
    return rows


def repack_by_patches(
    work: Path, bucket: str, counts: list[int], endpoint: str
) -> list[list[object]]:
    """Re-pack cost (one tiny change) as the history grows."""
    rows: list[list[object]] = []
    source = work / "patches"
    source.mkdir()
    (source / "data.bin").write_bytes(os.urandom(MIB))
    url = f"{bucket}/patches/rec"
    with faulty_proxy(endpoint) as (proxy, plan):
        options = RemoteOptions(endpoint=proxy)
        patches = -1
        for count in counts:
            while patches < count - 1:
                (source / "note.txt").write_bytes(f"state {patches}".encode())
                pack_directory(source, url, remote=options, trust_mtime=True)
                patches += 1
            (source / "note.txt").write_bytes(f"state {patches}".encode())
            wire = plan.response_bytes
            result = pack_directory(source, url, remote=options, trust_mtime=True)
            patches += 1
            assert result.transfer is not None and result.patch_index == patches
            rows.append(
                [
                    f"{count} patches",
                    result.transfer.requests,
                    result.transfer.listings,
                    result.transfer.bytes_downloaded,
                    plan.response_bytes - wire,
                ]
            )
    return rows


def repack_without_cache(work: Path, bucket: str, count: int, endpoint: str) -> list[object]:
    """The same re-pack on a machine that never packed the record: one listing instead."""
    source = work / "patches"
    url = f"{bucket}/patches/rec"
    with faulty_proxy(endpoint) as (proxy, plan), _env({"IH5_CACHE_DIR": ""}):
        (source / "note.txt").write_bytes(b"a machine without the cache")
        wire = plan.response_bytes
        result = pack_directory(source, url, remote=RemoteOptions(endpoint=proxy), trust_mtime=True)
        assert result.transfer is not None
        return [
            f"{count} patches, no cache",
            result.transfer.requests,
            result.transfer.listings,
            result.transfer.bytes_downloaded,
            plan.response_bytes - wire,
        ]


def _local_record(directory: Path, patches: int) -> Path:
    directory.mkdir(parents=True)
    with IH5Record(directory / "rec", "w") as rec:
        rec["base/values"] = np.arange(10_000, dtype="f8")
        rec.attrs["kind"] = "bench"
    for index in range(1, patches):
        with IH5Record(directory / "rec", "a") as rec:
            if not rec.has_patch:
                rec.create_patch()
            rec[f"patch{index}/values"] = np.full(100, index, dtype="i4")
    return directory / "rec"


def _open_cost(url: str, options: RemoteOptions, repeats: int = 3) -> tuple[float, int]:
    seconds, requests = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        with IH5Record(url, remote=options) as rec:
            list(rec)
            stats = rec.store.stats  # type: ignore[attr-defined]
            requests = stats.requests
        seconds.append(time.perf_counter() - start)
    return _best(seconds), requests


def opening(
    work: Path, bucket: str, docs: Path, http_url: str, counts: list[int]
) -> tuple[list[list[object]], list[list[object]]]:
    """Open time and requests by history length; block-size sweep at the middle length."""
    rows: list[list[object]] = []
    urls: dict[int, tuple[str, str]] = {}
    for count in counts:
        record = _local_record(work / f"open-{count}", count)
        shutil.copytree(record.parent, docs / f"open-{count}")
        push(record, f"{bucket}/open-{count}/rec")
        urls[count] = (f"{bucket}/open-{count}/rec", f"{http_url}/open-{count}/rec")
    for count in counts:
        local_start = time.perf_counter()
        with IH5Record(work / f"open-{count}" / "rec") as rec:
            list(rec)
        local = time.perf_counter() - local_start
        s3_time, s3_requests = _open_cost(urls[count][0], RemoteOptions())
        http_time, http_requests = _open_cost(urls[count][1], RemoteOptions())
        rows.append(
            [
                count,
                f"{local * 1e3:.1f}",
                f"{s3_time * 1e3:.1f}",
                s3_requests,
                f"{http_time * 1e3:.1f}",
                http_requests,
            ]
        )
    middle = counts[len(counts) // 2]
    sweep: list[list[object]] = []
    for block in BLOCK_SIZES:
        options = RemoteOptions(block_size=block)
        s3_time, s3_requests = _open_cost(urls[middle][0], options)
        http_time, http_requests = _open_cost(urls[middle][1], options)
        sweep.append(
            [
                f"{block >> 10} KiB",
                f"{s3_time * 1e3:.1f}",
                s3_requests,
                f"{http_time * 1e3:.1f}",
                http_requests,
            ]
        )
    return rows, sweep


def _plain_download(store: ObjectStore, name: str, start: int, end: int) -> float:
    begin = time.perf_counter()
    data = obstore.get_range(store.inner, name, start=start, end=end)
    assert len(data) == end - start
    return time.perf_counter() - begin


def _through_ih5(url: str, path: str) -> tuple[float, int]:
    """Seconds and requests of reading one whole dataset of an opened record."""
    with IH5Record(url) as rec:
        store = rec.store
        assert isinstance(store, ObjectStore)
        before = store.stats.requests
        begin = time.perf_counter()
        values = rec[path][:]
        elapsed = time.perf_counter() - begin
        requests = store.stats.requests - before
    assert values.nbytes > 0
    return elapsed, requests


def _best_read(url: str, path: str) -> tuple[float, int]:
    runs = [_through_ih5(url, path) for _ in range(3)]
    return min(seconds for seconds, _ in runs), max(requests for _, requests in runs)


def throughput(work: Path, bucket: str, docs: Path, http_url: str, size: int) -> list[list[object]]:
    """ih5 dataset reads against plain ranged downloads of the same bytes."""
    record = work / "big" / "rec"
    record.parent.mkdir()
    rng = np.random.default_rng(1)
    with IH5Record(record, "w") as rec:
        rec["contiguous"] = rng.integers(0, 255, size, dtype=np.uint8)
        rec.create_dataset(
            "chunked", data=rng.integers(0, 255, size, dtype=np.uint8), chunks=(MIB,)
        )
    with h5py.File(record.with_suffix(".ih5"), "r") as file:
        offset = file["contiguous"].id.get_offset()
        chunk_ranges = [file["chunked"].id.get_chunk_info(index) for index in range(size // MIB)]
    block = 0  # h5py's offsets count from the file's first byte (the user block's)
    shutil.copytree(record.parent, docs / "big")
    push(record, f"{bucket}/big/rec")
    rows: list[list[object]] = []
    for label, url, location in (
        ("S3", f"{bucket}/big/rec", f"{bucket}/big"),
        ("HTTP", f"{http_url}/big/rec", f"{http_url}/big"),
    ):
        store = open_store(location)
        assert isinstance(store, ObjectStore)
        start = block + offset
        plain = _best([_plain_download(store, "rec.ih5", start, start + size) for _ in range(3)])
        ih5, requests = _best_read(url, "contiguous")
        first = block + min(info.byte_offset for info in chunk_ranges)
        last = block + max(info.byte_offset + info.size for info in chunk_ranges)
        plain_chunked = _best([_plain_download(store, "rec.ih5", first, last) for _ in range(3)])
        ih5_chunked, requests_chunked = _best_read(url, "chunked")
        for kind, baseline, measured, count in (
            ("contiguous", plain, ih5, requests),
            ("1 MiB chunks", plain_chunked, ih5_chunked, requests_chunked),
        ):
            ratio = baseline / measured
            rows.append(
                [
                    label,
                    kind,
                    f"{size / baseline / MIB:.0f}",
                    f"{size / measured / MIB:.0f}",
                    count,
                    f"{ratio:.2f}",
                    "PASS" if ratio >= TARGET_THROUGHPUT else "FAIL",
                ]
            )
    return rows


def _growth(rows: list[list[object]], column: int) -> float:
    values = [float(row[column]) for row in rows]  # type: ignore[arg-type]
    return max(values) / max(min(values), 1.0)


def _table(title: str, columns: list[str], rows: list[list[object]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*[str(cell) for cell in row])
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's full sizes")
    parser.add_argument(
        "--quick", action="store_true", help="CI-sized (the default; for run_all.py)"
    )
    args = parser.parse_args()
    # A terminated run still stops its servers (the ``with`` blocks below unwind).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [10 * MIB, 100 * MIB, 1024 * MIB] if args.full else [10 * MIB, 40 * MIB]
    counts = [1, 50, 200] if args.full else [1, 20]
    open_counts = [1, 10, 100] if args.full else [1, 10, 30]
    read_size = 256 * MIB if args.full else 64 * MIB
    console = Console()
    talk = Console(stderr=True)
    verdicts: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as temp:
        work = Path(temp)
        (work / "servers").mkdir()
        with (
            run_moto(work / "servers") as s3,
            run_nginx(work / "servers") as http,
            # A user cache of this run only: the first pack of each record starts cold.
            _env({**s3.environment(), "IH5_CACHE_DIR": str(work / "cache")}),
        ):
            s3.create_bucket("bench")
            bucket = "s3://bench"
            talk.print("re-pack cost by record size ...")
            by_size = repack_by_size(work, bucket, sizes, s3.endpoint)
            talk.print("re-pack cost by history length ...")
            by_patches = repack_by_patches(work, bucket, counts, s3.endpoint)
            cold = repack_without_cache(work, bucket, counts[-1] + 1, s3.endpoint)
            talk.print("opening ...")
            opens, sweep = opening(work, bucket, http.docs, http.url, open_counts)
            talk.print("read throughput ...")
            reads = throughput(work, bucket, http.docs, http.url, read_size)
    columns = ["record", "requests", "listings", "object bytes down", "wire bytes down"]
    console.print(_table("1a. re-pack into s3:// as the data grows", columns, by_size))
    console.print(
        _table("1b. re-pack into s3:// as the history grows", columns, [*by_patches, cold])
    )
    console.print(
        "(the 'no cache' row, not checked: a machine that never saw the record lists "
        "the prefix once, then remembers the newest index)"
    )
    checks = [
        ("size: requests", _growth(by_size, 1)),
        ("size: object bytes", _growth(by_size, 3)),
        ("size: wire bytes", _growth(by_size, 4)),
        ("patches: requests", _growth(by_patches, 1)),
        ("patches: object bytes", _growth(by_patches, 3)),
        ("patches: wire bytes", _growth(by_patches, 4)),
    ]
    for label, growth in checks:
        verdicts.append(
            Check(
                "bench_remote",
                f"re-pack {label}, largest / smallest",
                f"{growth:.2f}",
                f"<= {TARGET_GROWTH}",
                growth <= TARGET_GROWTH,
            )
        )
    smallest_container = min(sizes)
    no_payload = all(int(row[3]) < smallest_container // 100 for row in by_size)  # type: ignore[call-overload]
    verdicts.append(
        Check(
            "bench_remote",
            "re-pack: container bytes downloaded",
            "none" if no_payload else "some",
            "none",
            no_payload,
        )
    )
    console.print(
        _table(
            "2a. opening a remote record (best of 3)",
            ["patches", "local ms", "S3 ms", "S3 requests", "HTTP ms", "HTTP requests"],
            opens,
        )
    )
    console.print(
        _table(
            f"2b. reader block size, {open_counts[len(open_counts) // 2]} patches",
            ["block", "S3 ms", "S3 requests", "HTTP ms", "HTTP requests"],
            sweep,
        )
    )
    console.print(
        _table(
            f"3. reading a {read_size // MIB} MiB dataset: ih5 / plain ranged download",
            [
                "server",
                "layout",
                "plain MiB/s",
                "ih5 MiB/s",
                "ih5 requests",
                "ratio",
                f">= {TARGET_THROUGHPUT}",
            ],
            reads,
        )
    )
    verdicts += [
        Check(
            "bench_remote",
            f"read {read_size // MIB} MiB, {row[0]}, {row[1]}: ih5 / plain ranged download",
            f"{row[5]}",
            f">= {TARGET_THROUGHPUT}",
            row[-1] == "PASS",
        )
        for row in reads
    ]
    return finish(verdicts)


if __name__ == "__main__":
    sys.exit(main())
