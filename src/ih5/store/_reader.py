"""A seekable, read-only file over ranged reads, with a block cache shared per object.

h5py opens a Python file object (``read``, ``readinto``, ``seek``, ``tell``).
HDF5 reads its metadata in many small, scattered pieces and dataset values in
large ones: small reads are served from cached blocks of ``block_size`` bytes
(one request fills a run of missing blocks); large reads go to the server as
one ranged request, streamed straight into the caller's buffer, and are never
cached as blocks. Large reads that follow one another (a chunked dataset read
chunk by chunk) fetch a window ahead of them that grows by ``READ_AHEAD_GROWTH``
up to ``MAX_READ_AHEAD``, so that a dataset of many chunks costs a few
requests, not one per chunk.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

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
FetchInto = Callable[[int, memoryview], None]
"""Fill the buffer with the object's bytes from an offset on, copying them in as they arrive
(so that the copy into HDF5's buffer overlaps the transfer)."""


class BlockCache:
    """The cached blocks of one immutable object, shared by all readers of it."""

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_blocks: int = DEFAULT_CACHE_BLOCKS,
        fetch_into: FetchInto | None = None,
    ) -> None:
        self.fetch = fetch
        self.fetch_into = fetch_into
        self.size = size
        self.block_size = block_size
        self.max_blocks = max_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._mutex = threading.Lock()
        self._window: Sequence[tuple[int, memoryview]] = ()
        self._window_end = 0
        self._next = -1
        self._ahead = block_size

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
        if self._window and self._window[0][0] <= offset and end <= self._window_end:
            self._next = end
            count = _copy(self._window, offset, view[: end - offset])
            if end == self._window_end:
                self._window = ()  # read to its end: do not keep it alive
            return count
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
        pieces = self.fetch(offset, stop)
        if stop > end:
            self._window, self._window_end = pieces, stop
        self._next = end
        return _copy(pieces, offset, view[: end - offset])


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

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        count = self._cache.read_into(self._position, memoryview(buffer).cast("B"))
        self._position += count
        return count
