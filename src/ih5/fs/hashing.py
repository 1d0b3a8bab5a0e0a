"""Streaming hashsums as qualified strings (``sha256:<hex>``, ``sha512:<hex>``)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from typing import Protocol

from ih5.errors import HashsumFormatError

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
