"""A file reader that hashes every byte it hands out, so packing reads each file once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Executor, Future
from types import TracebackType
from typing import IO

from ih5.fs import DEFAULT_ALGORITHM

CHUNK = 1 << 20


class HashingReader:
    """Read a file (``read`` / ``readinto``) while computing its qualified hashsum.

    With ``limit`` it hands out at most that many bytes: the size taken when
    the file was opened, so bytes appended while packing are never hashed
    (the archive then holds exactly the bytes its hashsum covers).

    With ``background`` the bytes are hashed there (hashlib lets go of the GIL)
    while the caller writes them, so hashing and writing share two cores. The
    caller must then leave every buffer it filled unchanged until its next read
    or ``hashsum()``: those wait for the hashing of the bytes before.
    """

    def __init__(
        self,
        stream: IO[bytes],
        progress: Callable[[int], None] | None = None,
        limit: int | None = None,
        background: Executor | None = None,
    ) -> None:
        self._stream = stream
        self._hasher = hashlib.new(DEFAULT_ALGORITHM)
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
        buffer = bytearray(CHUNK)
        while self.readinto(buffer):
            pass
        self._settle()
        return f"{DEFAULT_ALGORITHM}:{self._hasher.hexdigest()}"

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
