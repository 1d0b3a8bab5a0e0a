"""Selected rows stored end to end are read in one ranged read, with h5py's values and shape."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import h5py
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ih5.record._expected import read_end_to_end, remember_reader
from ih5.store._reader import BlockCache, RangeReader


class Served:
    """A file's bytes behind a reader that counts the ranged requests made for them."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.requests = 0
        self.streams = 0

    def fetch(self, start: int, end: int) -> list[tuple[int, memoryview]]:
        self.requests += 1
        return [(start, self.data[start:end])]

    def stream(self, start: int, end: int) -> Iterator[memoryview]:
        """One request, arriving in pieces that fall anywhere against the chunks."""
        self.requests += 1
        self.streams += 1
        for low in range(start, end, 1000):
            yield self.data[low : min(low + 1000, end)]


@contextmanager
def remote_dataset(
    values: np.ndarray[Any, Any], chunks: tuple[int, ...], **options: Any
) -> Iterator[tuple[h5py.Dataset, Served]]:
    """``values`` as a chunked dataset, opened through a registered remote reader."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file.create_dataset("d", data=values, chunks=chunks, **options)
    served = Served(buffer.getvalue())
    cache = BlockCache(served.fetch, len(served.data), block_size=4096, stream=served.stream)
    reader = RangeReader(cache, "mem")
    with h5py.File(reader, "r") as file:
        remember_reader(file, reader)
        served.requests = 0
        yield file["d"], served


def test_whole_rows_stored_end_to_end_take_one_request() -> None:
    values = np.arange(100_000, dtype="<f8")
    with remote_dataset(values, (10_000,)) as (dataset, served):
        out = read_end_to_end(dataset, np.s_[12_345:87_654])
        assert np.array_equal(out, values[12_345:87_654])
        assert served.requests == 1


def test_chunks_with_index_nodes_between_them_still_come_by_one_data_request() -> None:
    values = np.arange(300 * 256, dtype="<i4")  # 300 chunks: the chunk index splits
    with remote_dataset(values, (256,)) as (dataset, served):
        out = read_end_to_end(dataset, np.s_[:])
        assert np.array_equal(out, values)
        assert served.streams == 1  # (HDF5 reads the index nodes themselves first)


def test_compressed_chunks_are_left_to_hdf5() -> None:
    values = np.arange(10_000, dtype="i4")
    with remote_dataset(values, (1000,), compression="gzip") as (dataset, _):
        assert read_end_to_end(dataset, np.s_[:]) is None


def test_chunks_that_split_rows_are_left_to_hdf5() -> None:
    values = np.arange(10_000, dtype="i4").reshape(100, 100)
    with remote_dataset(values, (10, 50)) as (dataset, _):
        assert read_end_to_end(dataset, np.s_[:]) is None


def test_unwritten_chunks_are_left_to_hdf5() -> None:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        dataset = file.create_dataset("d", shape=(1000,), chunks=(100,), dtype="u1")
        dataset[0:100] = 1
        dataset[300:400] = 3
    served = Served(buffer.getvalue())
    reader = RangeReader(BlockCache(served.fetch, len(served.data)), "mem")
    with h5py.File(reader, "r") as file:
        remember_reader(file, reader)
        assert read_end_to_end(file["d"], np.s_[:]) is None


DTYPES = st.sampled_from(["u1", "<i2", ">i4", "<f8", ">f4", "S5", "c8", "?"])


@settings(max_examples=60, deadline=None)
@given(
    dtype=DTYPES,
    rows=st.integers(1, 60),
    row_shape=st.lists(st.integers(1, 4), max_size=2),
    chunk_rows=st.integers(1, 20),
    data=st.data(),
)
def test_any_selection_reads_what_h5py_reads(
    dtype: str, rows: int, row_shape: list[int], chunk_rows: int, data: st.DataObject
) -> None:
    shape = (rows, *row_shape)
    values = np.arange(int(np.prod(shape)), dtype="i8").reshape(shape).astype(dtype)
    first = data.draw(
        st.one_of(
            st.integers(-rows, rows - 1),
            st.builds(
                slice,
                st.none() | st.integers(-rows - 2, rows + 2),
                st.none() | st.integers(-rows - 2, rows + 2),
                st.none() | st.integers(1, 3),
            ),
            st.just(Ellipsis),
        )
    )
    rest = data.draw(st.lists(st.just(slice(None)) | st.integers(0, 0), max_size=len(row_shape)))
    selection = (first, *rest)
    with remote_dataset(values, (min(chunk_rows, rows), *row_shape)) as (dataset, _):
        expected = dataset[selection]
        got = read_end_to_end(dataset, selection)
        if got is not None:
            assert type(got) is type(expected)
            assert np.asarray(got).dtype == np.asarray(expected).dtype
            assert np.array_equal(got, expected)
            assert np.shape(got) == np.shape(expected)
