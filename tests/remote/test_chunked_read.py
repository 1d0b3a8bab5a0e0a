"""Reading a chunked dataset of a remote record: each run of adjacent chunks is one request."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ih5 import IH5Record, push
from ih5.store import ObjectStore
from tests.helpers.nodes import as_dataset

CHUNK = 1 << 18  # bytes per chunk (uint8 elements)
CHUNKS = 24


def _write_chunked(path: Path) -> np.ndarray[tuple[int], np.dtype[np.uint8]]:
    values = np.random.default_rng(3).integers(0, 255, CHUNK * CHUNKS, dtype=np.uint8)
    with IH5Record(path, "w") as rec:
        rec.create_dataset("chunked", data=values, chunks=(CHUNK,))
        rec.create_dataset("grid", data=values.reshape(1 << 12, -1), chunks=(1 << 9, 1 << 9))
    return values


def _requests_for(
    url: str, read: str
) -> tuple[int, np.ndarray[tuple[int, ...], np.dtype[np.uint8]]]:
    with IH5Record(url) as rec:
        store = rec.store
        assert isinstance(store, ObjectStore)
        before = store.stats.requests
        dataset = as_dataset(rec[read.split("[")[0]])
        if read == "chunked":
            values = dataset[:]
        elif read == "chunked[middle]":
            values = dataset[5 * CHUNK + 10 : 17 * CHUNK - 10]
        else:
            values = dataset[:, 1 << 9 : 3 << 9]
        return store.stats.requests - before, values


def test_a_whole_chunked_dataset_over_s3_is_one_request(bucket: str, tmp_path: Path) -> None:
    values = _write_chunked(tmp_path / "rec")
    push(tmp_path / "rec", f"{bucket}/p/rec")
    requests, read = _requests_for(f"{bucket}/p/rec", "chunked")
    assert np.array_equal(read, values)
    assert requests == 1


def test_a_slice_across_chunks_over_http_is_one_request(
    http_docs: tuple[Path, str], tmp_path: Path
) -> None:
    directory, url = http_docs
    values = _write_chunked(tmp_path / "rec")
    for path in tmp_path.glob("rec*.ih5"):
        shutil.copy(path, directory)
    requests, read = _requests_for(f"{url}/rec", "chunked[middle]")
    assert np.array_equal(read, values[5 * CHUNK + 10 : 17 * CHUNK - 10])
    assert requests == 1


def test_a_column_band_of_a_2d_dataset_reads_only_its_chunks(bucket: str, tmp_path: Path) -> None:
    values = _write_chunked(tmp_path / "rec").reshape(1 << 12, -1)
    push(tmp_path / "rec", f"{bucket}/p/rec")
    requests, read = _requests_for(f"{bucket}/p/rec", "grid")
    assert np.array_equal(read, values[:, 1 << 9 : 3 << 9])
    # 8 chunk rows x 2 of 3 chunk columns, stored row by row: the unread chunk between
    # two rows' pairs is a smaller gap than a request is worth.
    assert requests == 1


def test_a_chunk_patched_dataset_costs_one_request_per_container_it_reads(
    bucket: str, tmp_path: Path
) -> None:
    values = _write_chunked(tmp_path / "rec")
    with IH5Record(tmp_path / "rec", "r+") as rec:
        changed = np.full(6 * CHUNK, 7, dtype=np.uint8)  # more than the patch's first block
        as_dataset(rec["chunked"])[5 * CHUNK : 11 * CHUNK] = changed
    values[5 * CHUNK : 11 * CHUNK] = changed
    push(tmp_path / "rec", f"{bucket}/p/rec")
    requests, read = _requests_for(f"{bucket}/p/rec", "chunked")
    assert np.array_equal(read, values)
    # The base's chunks around the changed ones, and the patch's chunks.
    assert requests == 2


def test_a_dataset_of_many_chunks_has_its_index_beside_its_header(
    bucket: str, tmp_path: Path
) -> None:
    # 320 chunks of 64 KiB: HDF5's chunk index has one leaf per 64 chunks. Left to
    # itself HDF5 would put each leaf between the data, 4 MiB apart, each a request.
    values = np.random.default_rng(5).integers(0, 255, 320 << 16, dtype=np.uint8)
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec["before"] = np.zeros(3 << 20, dtype=np.uint8)  # pushes the data past the first block
        rec.create_dataset("many", data=values, chunks=(1 << 16,))
    push(tmp_path / "rec", f"{bucket}/p/rec")
    with IH5Record(f"{bucket}/p/rec") as rec:
        store = rec.store
        assert isinstance(store, ObjectStore)
        before = store.stats.requests
        read = as_dataset(rec["many"])[:]
        requests = store.stats.requests - before
    assert np.array_equal(read, values)
    assert requests == 1
