"""The block-cached reader h5py reads remote containers through."""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterator

import pytest

from ih5.store._reader import BlockCache, RangeReader, merge_spans


class Counted:
    """An object's bytes and the ranged requests made for them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.requests: list[tuple[int, int]] = []

    def fetch(self, start: int, end: int) -> list[tuple[int, memoryview]]:
        self.requests.append((start, end))
        return [(start, memoryview(self.data)[start:end])]


def test_any_sequence_of_seeks_and_reads_returns_the_objects_bytes() -> None:
    data = os.urandom(300_000)
    source = Counted(data)
    reader = RangeReader(BlockCache(source.fetch, len(data), block_size=4096), "x")
    rng = random.Random(7)
    for _ in range(500):
        offset, length = rng.randrange(len(data) + 10), rng.choice([1, 7, 4096, 10_000, 90_000])
        reader.seek(offset)
        assert reader.read(length) == data[offset : offset + length]
        assert reader.tell() == min(offset + length, max(offset, len(data)))
    reader.seek(-10, io.SEEK_END)
    assert reader.read() == data[-10:]


def test_small_reads_inside_one_block_cost_one_request() -> None:
    source = Counted(os.urandom(100_000))
    cache = BlockCache(source.fetch, 100_000, block_size=8192)
    for offset in range(0, 8000, 100):
        cache.read(offset, 50)
    assert source.requests == [(0, 8192)]


def test_primed_blocks_are_not_fetched_again() -> None:
    data = os.urandom(20_000)
    source = Counted(data)
    cache = BlockCache(source.fetch, len(data), block_size=4096)
    cache.prime(0, data[:8192])
    assert bytes(cache.read(100, 3000)) == data[100:3100]
    assert bytes(cache.read(4000, 3000)) == data[4000:7000]  # across two primed blocks
    assert source.requests == []


def test_sequential_large_reads_fetch_ahead_in_growing_windows() -> None:
    chunk, chunks = 1 << 16, 64
    data = os.urandom(chunk * chunks)
    source = Counted(data)
    cache = BlockCache(source.fetch, len(data), block_size=chunk)
    out = b"".join(bytes(cache.read(index * chunk, chunk)) for index in range(chunks))
    assert out == data
    assert len(source.requests) < chunks // 4


def test_a_large_read_elsewhere_fetches_exactly_its_bytes() -> None:
    data = os.urandom(1 << 20)
    source = Counted(data)
    cache = BlockCache(source.fetch, len(data), block_size=4096)
    assert bytes(cache.read(500_000, 100_000)) == data[500_000:600_000]
    assert source.requests == [(500_000, 600_000)]


def test_a_large_read_is_streamed_into_the_callers_buffer_in_one_request() -> None:
    data = os.urandom(1 << 20)
    source = Counted(data)
    streamed: list[tuple[int, int]] = []

    def fetch_into(start: int, view: memoryview) -> None:
        streamed.append((start, start + len(view)))
        view[:] = data[start : start + len(view)]

    cache = BlockCache(source.fetch, len(data), block_size=4096, fetch_into=fetch_into)
    out = bytearray(200_000)
    assert cache.read_into(300_000, memoryview(out)) == 200_000
    assert out == data[300_000:500_000]
    assert (streamed, source.requests) == ([(300_000, 500_000)], [])


def test_an_expected_run_of_ranges_is_fetched_by_one_request() -> None:
    chunk = 1 << 16
    data = os.urandom(chunk * 32)
    source = Counted(data)
    cache = BlockCache(source.fetch, len(data), block_size=4096)
    chunks = [(index * chunk, (index + 1) * chunk) for index in range(4, 20)]
    cache.expect(chunks)
    out = b"".join(bytes(cache.read(start, end - start)) for start, end in chunks)
    assert out == data[4 * chunk : 20 * chunk]
    assert source.requests == [(4 * chunk, 20 * chunk)]


def test_expected_ranges_a_large_gap_apart_are_fetched_separately() -> None:
    data = os.urandom(4 << 20)
    source = Counted(data)
    cache = BlockCache(source.fetch, len(data), block_size=4096)
    spans = [(0, 100_000), (100_000, 200_000), (3 << 20, (3 << 20) + 100_000)]
    cache.expect(spans)
    for start, end in spans:
        assert bytes(cache.read(start, end - start)) == data[start:end]
    assert source.requests == [(0, 200_000), (3 << 20, (3 << 20) + 100_000)]


def test_reads_after_expect_is_withdrawn_fetch_only_their_own_bytes() -> None:
    data = os.urandom(1 << 20)
    source = Counted(data)
    cache = BlockCache(source.fetch, len(data), block_size=4096)
    cache.expect([(0, 1 << 20)])
    cache.expect(())
    assert bytes(cache.read(500_000, 100_000)) == data[500_000:600_000]
    assert source.requests == [(500_000, 600_000)]


def test_nearby_ranges_merge_into_one_run_and_sort() -> None:
    assert merge_spans([(500, 600), (0, 100), (150, 200), (10_000, 10_001)], gap=64) == [
        (0, 200),
        (500, 600),
        (10_000, 10_001),
    ]


class Streamed(Counted):
    """Counted, also answering a request as a stream of pieces; counts pieces taken."""

    def __init__(self, data: bytes, piece: int, fail_after: int | None = None) -> None:
        super().__init__(data)
        self.piece = piece
        self.fail_after = fail_after
        self.taken = 0

    def stream(self, start: int, end: int) -> Iterator[memoryview]:
        self.requests.append((start, end))
        for low in range(start, end, self.piece):
            if self.fail_after is not None and self.taken == self.fail_after:
                raise ConnectionError("connection reset")
            self.taken += 1
            yield memoryview(self.data)[low : min(low + self.piece, end)]


def test_an_expected_run_is_streamed_and_read_only_as_far_as_the_reads_go() -> None:
    chunk = 1 << 16
    data = os.urandom(chunk * 16)
    source = Streamed(data, piece=chunk)
    cache = BlockCache(source.fetch, len(data), block_size=4096, stream=source.stream)
    cache.expect([(0, len(data))])
    assert bytes(cache.read(0, chunk)) == data[:chunk]
    assert source.taken == 1
    out = b"".join(bytes(cache.read(i * chunk, chunk)) for i in range(1, 16))
    assert out == data[chunk:]
    assert source.requests == [(0, len(data))]


def test_a_stream_cut_short_fails_the_read_that_needs_the_missing_bytes() -> None:
    chunk = 1 << 16
    data = os.urandom(chunk * 8)
    source = Streamed(data, piece=chunk, fail_after=3)
    cache = BlockCache(source.fetch, len(data), block_size=4096, stream=source.stream)
    cache.expect([(0, len(data))])
    assert bytes(cache.read(0, 3 * chunk)) == data[: 3 * chunk]
    with pytest.raises(ConnectionError):
        cache.read(3 * chunk, chunk)
    source.fail_after = None
    assert bytes(cache.read(3 * chunk, chunk)) == data[3 * chunk : 4 * chunk]  # asked again
