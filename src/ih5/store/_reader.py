"""A seekable, read-only file over ranged reads, with a block cache shared per object.

h5py opens a Python file object (``read``, ``readinto``, ``seek``, ``tell``).
HDF5 reads its metadata in many small, scattered pieces and dataset values in
large ones: small reads are served from cached blocks of ``block_size`` bytes
(one request fills a run of missing blocks); large reads go to the server as
one ranged request, streamed straight into the caller's buffer, and are never
cached as blocks. Large reads that follow one another (a chunked dataset read
chunk by chunk) fetch a window ahead of them that grows by ``READ_AHEAD_GROWTH``
up to ``MAX_READ_AHEAD``, so that a dataset of many chunks costs a few
requests, not one per chunk. A window streams in the background while HDF5
copies out what has arrived. A reader that knows which byte ranges its next reads
cover (the chunks of a dataset selection) says so with :meth:`RangeReader.expect`:
each run of adjacent ranges is then fetched by one request when it is first read.
"""

from __future__ import annotations

import bisect
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

DEFAULT_BLOCK_SIZE = 1 << 20
"""Bytes per cached block. ``benchmarks/bench_remote.py`` sweeps 64 KiB .. 4 MiB: opening
takes one request per container at every size (a small container's user block and
HDF5 structure fit in the first block), times within noise; 1 MiB also covers the
structure of larger containers in that one request."""
DEFAULT_CACHE_BLOCKS = 64
"""Blocks kept per object (LRU)."""
MAX_READ_AHEAD = 128 << 20
"""Largest window fetched ahead of sequential large reads (chunk after chunk of a dataset);
it is dropped once read to its end."""
READ_AHEAD_GROWTH = 4
"""Each large read that continues the previous one widens the window by this factor.
``benchmarks/bench_remote.py`` (1 MiB chunks, 64 MiB): 2 -> 6 requests, 4 -> 5; on moto,
where every ranged GET costs the whole object, each request saved counts."""

Fetch = Callable[[int, int], Sequence[tuple[int, memoryview]]]
"""Return the bytes ``[start, end)`` of the object as pieces (offset, bytes), in order
(a large range may arrive in parts fetched at once)."""
Stream = Callable[[int, int], Iterator[memoryview]]
"""Yield the bytes ``[start, end)`` of the object in order, as they arrive from one request."""
FetchInto = Callable[[int, memoryview], None]
"""Fill the buffer with the object's bytes from an offset on, copying them in as they arrive
(so that the copy into HDF5's buffer overlaps the transfer)."""


EXPECT_GAP = 1 << 20
"""Expected ranges at most this far apart are fetched as one run: the bytes between
(other chunks, index nodes) cost less than another request. A request costs about
0.5 ms on 127.0.0.1 (a MiB at loopback speed), tens of ms on a real object store,
and a whole object's copy on moto."""


def merge_spans(spans: Sequence[tuple[int, int]], gap: int = EXPECT_GAP) -> list[tuple[int, int]]:
    """Sort ``[start, end)`` ranges and join those that overlap or lie within ``gap``."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(span for span in spans if span[1] > span[0]):
        if merged and start - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _Window:
    """The bytes ``[start, end)`` of an object fetched ahead of the reads that need them.

    A streamed window is read from its response as the reads need it, so HDF5 copies
    the first chunks while the last are still on the wire (in the socket's buffers).
    """

    def __init__(
        self,
        start: int,
        end: int,
        pieces: Sequence[tuple[int, memoryview]] = (),
        stream: Iterator[memoryview] | None = None,
    ) -> None:
        self.start, self.end = start, end
        self._pieces = list(pieces)
        self._arrived = end if stream is None else start
        self._stream = stream
        self._mutex = threading.Lock()

    def read_into(self, offset: int, view: memoryview) -> int:
        """Copy the bytes from ``offset`` on into ``view``, reading on until they are here."""
        end = offset + len(view)
        with self._mutex:
            while self._arrived < end and self._stream is not None:
                piece = next(self._stream, None)
                if piece is None:
                    self._stream = None
                    break
                self._pieces.append((self._arrived, piece))
                self._arrived += len(piece)
            pieces = self._pieces
            return _copy(pieces, offset, view)

    def close(self) -> None:
        """Drop the bytes and the rest of the response."""
        with self._mutex:
            stream, self._stream, self._pieces = self._stream, None, []
        close = getattr(stream, "close", None)
        if close is not None:
            close()


class BlockCache:
    """The cached blocks of one immutable object, shared by all readers of it."""

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_blocks: int = DEFAULT_CACHE_BLOCKS,
        fetch_into: FetchInto | None = None,
        stream: Stream | None = None,
    ) -> None:
        self.fetch = fetch
        self.fetch_into = fetch_into
        self.stream = stream
        self.size = size
        self.block_size = block_size
        self.max_blocks = max_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._mutex = threading.Lock()
        self._window: _Window | None = None
        self._next = -1
        self._ahead = block_size
        self._expected: list[tuple[int, int]] = []
        self._expected_starts: list[int] = []

    def expect(self, spans: Sequence[tuple[int, int]]) -> None:
        """Say that the next reads cover the ranges ``spans`` (``()``: they no longer do).

        A read that falls inside a run of expected ranges fetches the rest of that run
        (at most ``MAX_READ_AHEAD`` bytes) in one request and serves the following reads
        from it."""
        self._expected = merge_spans(spans)
        self._expected_starts = [start for start, _ in self._expected]
        if not spans:
            self._drop_window()

    def read_runs(self, runs: Sequence[tuple[int, memoryview]]) -> bool:
        """Fill each view with the object's bytes from its offset (runs in file order); runs
        less than ``EXPECT_GAP`` apart come by one request, streamed straight into the views.
        False when the object ends before the last byte asked for."""
        if runs and runs[-1][0] + len(runs[-1][1]) > self.size:
            return False
        group: list[tuple[int, memoryview]] = []
        for run in runs:
            if group and run[0] - (group[-1][0] + len(group[-1][1])) > EXPECT_GAP:
                self._read_group(group)
                group = []
            group.append(run)
        if group:
            self._read_group(group)
        return True

    def _read_group(self, runs: Sequence[tuple[int, memoryview]]) -> None:
        start, end = runs[0][0], runs[-1][0] + len(runs[-1][1])
        if self.stream is None:
            pieces = self.fetch(start, end)
            for offset, view in runs:
                _copy(pieces, offset, view)
            return
        first = 0
        position = start
        for piece in self.stream(start, end):
            stop = position + len(piece)
            for offset, view in runs[first:]:
                if offset >= stop:
                    break
                low, high = max(offset, position), min(offset + len(view), stop)
                if low < high:
                    view[low - offset : high - offset] = piece[low - position : high - position]
                if offset + len(view) <= stop:
                    first += 1
            position = stop

    def _open_window(self, start: int, end: int) -> _Window:
        self._drop_window()
        if self.stream is not None:
            window = _Window(start, end, stream=self.stream(start, end))
        else:
            window = _Window(start, end, self.fetch(start, end))
        self._window = window
        return window

    def _drop_window(self) -> None:
        window, self._window = self._window, None
        if window is not None:
            window.close()

    def prime(self, offset: int, data: bytes) -> None:
        """Keep the whole blocks contained in ``data`` read at ``offset`` (e.g. at discovery)."""
        end = offset + len(data)
        index = -(-offset // self.block_size)
        with self._mutex:
            while True:
                start = index * self.block_size
                stop = min(start + self.block_size, self.size)
                if start >= self.size or stop > end:
                    break
                self._blocks[index] = data[start - offset : stop - offset]
                index += 1
            self._trim()

    def _trim(self) -> None:
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)

    def read(self, offset: int, length: int) -> bytes:
        """The bytes ``[offset, offset + length)``, clipped to the object's end."""
        out = bytearray(max(0, min(offset + length, self.size) - offset))
        count = self.read_into(offset, memoryview(out))
        return bytes(out[:count])

    def read_into(self, offset: int, view: memoryview) -> int:
        """Fill ``view`` with the bytes from ``offset`` on; return how many (0 at the end)."""
        end = min(offset + len(view), self.size)
        if offset >= end:
            return 0
        window = self._window
        if window is not None and window.start <= offset and end <= window.end:
            return self._from_window(window, offset, end, view)
        if self._expected:
            run_end = self._expected_run(offset, end)
            if run_end > end:
                return self._read_expected(offset, end, run_end, view)
        if end - offset >= self.block_size:
            return self._read_large(offset, end, view)
        self._next = -1
        data = self._read_blocks(offset, end)
        view[: len(data)] = data
        return len(data)

    def _read_blocks(self, offset: int, end: int) -> bytes:
        first, last = offset // self.block_size, (end - 1) // self.block_size
        with self._mutex:
            have = {index: self._blocks.get(index) for index in range(first, last + 1)}
            for index, block in have.items():
                if block is not None:
                    self._blocks.move_to_end(index)
        missing = [index for index, block in have.items() if block is None]
        if missing:
            start = missing[0] * self.block_size
            stop = min((missing[-1] + 1) * self.block_size, self.size)
            data = b"".join(bytes(piece) for _, piece in self.fetch(start, stop))
            with self._mutex:
                for index in range(missing[0], missing[-1] + 1):
                    low = index * self.block_size - start
                    piece = data[low : low + self.block_size]
                    have[index] = piece
                    self._blocks[index] = piece
                self._trim()
        joined = b"".join(have[index] or b"" for index in range(first, last + 1))
        skip = offset - first * self.block_size
        return joined[skip : skip + (end - offset)]

    def _expected_run(self, offset: int, end: int) -> int:
        """The end of the expected run holding ``[offset, end)``, or 0 when none does."""
        index = bisect.bisect_right(self._expected_starts, offset) - 1
        if index < 0:
            return 0
        start, stop = self._expected[index]
        return stop if start <= offset and end <= stop else 0

    def _from_window(self, window: _Window, offset: int, end: int, view: memoryview) -> int:
        try:
            count = window.read_into(offset, view[: end - offset])
        except BaseException:
            self._drop_window()  # the next read asks again
            raise
        self._next = end
        if end == window.end and self._window is window:
            self._drop_window()  # read to its end: do not keep it alive
        return count

    def _read_expected(self, offset: int, end: int, run_end: int, view: memoryview) -> int:
        """Fetch the expected run from ``offset`` on in one request and serve this read."""
        stop = min(run_end, max(end, offset + MAX_READ_AHEAD), self.size)
        return self._from_window(self._open_window(offset, stop), offset, end, view)

    def _read_large(self, offset: int, end: int, view: memoryview) -> int:
        """One fetch for a large read, widened ahead when it continues the previous one."""
        sequential = self._next >= 0 and 0 <= offset - self._next < self.block_size
        self._ahead = (
            min(self._ahead * READ_AHEAD_GROWTH, MAX_READ_AHEAD)
            if sequential
            else 8 * self.block_size
        )
        stop = min(max(end, offset + self._ahead), self.size) if sequential else end
        if stop == end and self.fetch_into is not None:
            self.fetch_into(offset, view[: end - offset])
            self._next = end
            return end - offset
        if stop > end:
            return self._from_window(self._open_window(offset, stop), offset, end, view)
        self._next = end
        return _copy(self.fetch(offset, stop), offset, view[: end - offset])


def _copy(pieces: Sequence[tuple[int, memoryview]], offset: int, view: memoryview) -> int:
    """Copy the bytes from ``offset`` on out of ``pieces`` ((start, bytes), in order) into
    ``view``; return how many."""
    done = 0
    for start, piece in pieces:
        low = offset + done - start
        if low < 0 or low >= len(piece):
            continue
        count = min(len(piece) - low, len(view) - done)
        view[done : done + count] = piece[low : low + count]
        done += count
        if done == len(view):
            break
    return done


class RangeReader(io.RawIOBase):
    """A read-only, seekable binary file over a :class:`BlockCache`."""

    def __init__(self, cache: BlockCache, name: str) -> None:
        super().__init__()
        self._cache = cache
        self._position = 0
        self.name = name
        """The URL, for messages (h5py shows it as the file name)."""
        self.mode = "rb"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._cache.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def tell(self) -> int:
        return self._position

    def expect(self, spans: Sequence[tuple[int, int]]) -> None:
        """Say which byte ranges the next reads cover, so that each run of adjacent ones is
        fetched by one request (``()`` when the reads are done)."""
        self._cache.expect(spans)

    def read_runs(self, runs: Sequence[tuple[int, memoryview]]) -> bool:
        """Fill each view with the bytes from its offset (see :meth:`BlockCache.read_runs`)."""
        return self._cache.read_runs(runs)

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        count = self._cache.read_into(self._position, memoryview(buffer).cast("B"))
        self._position += count
        return count
