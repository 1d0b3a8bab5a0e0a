"""Streaming hashsums as qualified strings (``sha256:<hex>``, ``sha512:<hex>``)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol

from ih5.errors import HashsumFormatError

if TYPE_CHECKING:  # only handed in: importing ih5.fs loads no thread pool (nor logging)
    from concurrent.futures import Executor, Future

HASH_ALGORITHMS = {"sha256": 64, "sha512": 128}
"""Supported algorithms and the length of their hex digests."""

DEFAULT_ALGORITHM = "sha256"
CHUNK_SIZE = 1 << 20
"""Read buffer: large enough that the per-read overhead vanishes next to hashing."""

# \Z, not $: "$" also matches before a trailing newline.
_HASHSUM = re.compile(r"^(?P<alg>[a-z0-9]+):(?P<hex>[0-9a-f]+)\Z")


class Readable(Protocol):
    """A binary stream that can fill a buffer (files, sockets, HTTP bodies)."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


Progress = Callable[[int], None]
"""Called with the number of bytes just hashed."""


def _new_hasher(algorithm: str) -> hashlib._Hash:
    if algorithm not in HASH_ALGORITHMS:
        raise HashsumFormatError(
            f"unknown hash algorithm {algorithm!r}; use one of {sorted(HASH_ALGORITHMS)}"
        )
    return hashlib.new(algorithm)


def parse_hashsum(value: str) -> tuple[str, str]:
    """Split and validate a qualified hashsum; return ``(algorithm, hex_digest)``."""
    match = _HASHSUM.match(value) if isinstance(value, str) else None
    if match is None or HASH_ALGORITHMS.get(match["alg"]) != len(match["hex"]):
        raise HashsumFormatError(
            f"{value!r} is not a hashsum; expected 'sha256:<64 hex digits>' "
            "or 'sha512:<128 hex digits>'"
        )
    return match["alg"], match["hex"]


def hashsum_bytes(data: bytes | bytearray | memoryview, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """Return the qualified hashsum of ``data``."""
    hasher = _new_hasher(algorithm)
    hasher.update(data)
    return f"{algorithm}:{hasher.hexdigest()}"


def hashsum_stream(
    stream: Readable, algorithm: str = DEFAULT_ALGORITHM, progress: Progress | None = None
) -> str:
    """Hash a binary stream from its current position to its end."""
    hasher = _new_hasher(algorithm)
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while True:
        count = stream.readinto(view)
        if not count:
            break
        hasher.update(view[:count])
        if progress is not None:
            progress(count)
    return f"{algorithm}:{hasher.hexdigest()}"


def hashsum_file(
    path: str | os.PathLike[str],
    algorithm: str = DEFAULT_ALGORITHM,
    *,
    skip: int = 0,
    progress: Progress | None = None,
) -> str:
    """Hash a file's bytes after its first ``skip`` bytes (e.g. an HDF5 user block)."""
    _new_hasher(algorithm)
    with open(path, "rb", buffering=0) as stream:
        stream.seek(skip)
        return hashsum_stream(stream, algorithm, progress)


class HashingReader:
    """Read a file (``read`` / ``readinto``) while computing its qualified hashsum.

    Packing reads each file once through it: the bytes stored are the bytes hashed.
    With ``limit`` it hands out at most that many bytes: the size taken when the
    file was opened, so bytes appended meanwhile are never hashed (the archive then
    holds exactly the bytes its hashsum covers).

    With ``background`` the bytes are hashed there (hashlib lets go of the GIL)
    while the caller writes them, so hashing and writing share two cores. The
    caller must then leave every buffer it filled unchanged until its next read
    or ``hashsum()``: those wait for the hashing of the bytes before.
    """

    def __init__(
        self,
        stream: IO[bytes],
        progress: Progress | None = None,
        limit: int | None = None,
        algorithm: str = DEFAULT_ALGORITHM,
        background: Executor | None = None,
    ) -> None:
        self._stream = stream
        self._algorithm = algorithm
        self._hasher = _new_hasher(algorithm)
        self._progress = progress
        self._left = limit
        self._background = background
        self._pending: Future[None] | None = None
        self.count = 0
        """Bytes handed out so far."""

    def _settle(self) -> None:
        """Wait until every byte handed out so far is hashed."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def _seen(self, data: bytes | memoryview) -> None:
        self._settle()
        if self._background is not None and data:
            self._pending = self._background.submit(self._hasher.update, data)
        else:
            self._hasher.update(data)
        self.count += len(data)
        if self._left is not None:
            self._left -= len(data)
        if self._progress is not None:
            self._progress(len(data))

    def read(self, size: int = -1) -> bytes:
        """Read like a file object."""
        if self._left is not None:
            size = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(size)
        self._seen(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` like a raw file object."""
        self._settle()  # the buffer may hold bytes still being hashed
        view = memoryview(buffer).cast("B")
        if self._left is not None:
            view = view[: self._left]
        count = int(self._stream.readinto(view) or 0)  # type: ignore[attr-defined]
        self._seen(view[:count])
        return count

    def hashsum(self) -> str:
        """Hash the rest of the file too, and return the hashsum of all its bytes."""
        buffer = bytearray(CHUNK_SIZE)
        while self.readinto(buffer):
            pass
        self._settle()
        return f"{self._algorithm}:{self._hasher.hexdigest()}"

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._settle()
        self._stream.close()


class Writable(Protocol):
    """A binary stream that takes all of a buffer per ``write`` (buffered files, BytesIO)."""

    def write(self, data: memoryview, /) -> object: ...


class HashingWriter:
    """A write-only stream that hashes and counts every byte it passes on to ``out``.

    Unpacking writes a file through it, so that the bytes are checked against the
    hashsum they were packed with on their way out, without reading them back.
    """

    def __init__(self, out: Writable, algorithm: str = DEFAULT_ALGORITHM) -> None:
        self._out = out
        self._algorithm = algorithm
        self._hasher = _new_hasher(algorithm)
        self.size = 0
        """Bytes written so far."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write like a file object (all of ``data``); return how many bytes that was."""
        view = memoryview(data).cast("B")
        self._hasher.update(view)
        self._out.write(view)
        self.size += len(view)
        return len(view)

    def hashsum(self) -> str:
        """The qualified hashsum of everything written so far."""
        return f"{self._algorithm}:{self._hasher.hexdigest()}"
