"""The per-user cache directory: small entries that spare work, never needed for correctness.

Entries live under ``$IH5_CACHE_DIR`` (empty: no cache), else ``$XDG_CACHE_HOME/ih5``,
else ``~/.cache/ih5`` — where the user can write, never beside a read-only archive.
Each entry carries a CRC-32 of its bytes: a damaged, truncated or foreign entry reads
as missing, and a cache that cannot be written is silently skipped.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import zlib
from pathlib import Path

_MAGIC = b"ih5cache1 "
LIMITS = {
    "facts": (4096, 1 << 30),
    "trees": (256, 1 << 29),
    "verified": (4096, 1 << 26),
    "userblocks": (4096, 1 << 28),
}
"""Per kind of entry: how many, and how many bytes in all, a cache directory keeps."""
_DEFAULT_LIMIT = (1024, 1 << 28)


def cache_root() -> Path | None:
    """The cache directory of this user, or None when caching is switched off."""
    explicit = os.environ.get("IH5_CACHE_DIR")
    if explicit is not None:
        return Path(explicit) if explicit else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "ih5"


def _entry_path(kind: str, name: str) -> Path | None:
    root = cache_root()
    return None if root is None else root / kind / name


def read_entry(kind: str, name: str) -> bytes | None:
    """The bytes stored under ``kind/name``, or None if missing, damaged or unreadable."""
    path = _entry_path(kind, name)
    if path is None:
        return None
    try:
        raw = path.read_bytes()
    except (OSError, ValueError):
        return None
    head, _, body = raw.partition(b"\n")
    if not head.startswith(_MAGIC):
        return None
    try:
        crc = int(head[len(_MAGIC) :], 16)
    except ValueError:
        return None
    return body if zlib.crc32(body) == crc else None


def write_entry(kind: str, name: str, data: bytes) -> None:
    """Store ``data`` under ``kind/name`` atomically (a reader sees old or new); never raises
    for a cache that cannot be written."""
    path = _entry_path(kind, name)
    if path is None:
        return
    temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        head = _MAGIC + b"%08x\n" % zlib.crc32(data)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, head + data)
        finally:
            os.close(fd)
        # No fsync: after a crash the entry is whole, empty or absent, and both read as missing.
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        return
    # A scan of the cache directory costs more than the write: prune on every
    # PRUNE_EVERY-th write of a kind (the bounds overshoot by that), counted from a random
    # start, so that short processes writing once (a CLI run) scan one time in PRUNE_EVERY.
    written = _WRITES.get(kind)
    if written is None:
        written = secrets.randbelow(PRUNE_EVERY)
    _WRITES[kind] = written + 1
    if written % PRUNE_EVERY == 0:
        _prune(path.parent, *LIMITS.get(kind, _DEFAULT_LIMIT))


PRUNE_EVERY = 64
_WRITES: dict[str, int] = {}


def _prune(directory: Path, keep: int, budget: int) -> None:
    """Remove the oldest-written entries beyond ``keep`` entries or ``budget`` bytes."""
    try:
        entries = []
        with os.scandir(directory) as listing:
            for entry in listing:
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    entries.append((info.st_mtime_ns, info.st_size, entry.path))
    except OSError:
        return
    total = sum(size for _, size, _ in entries)
    if len(entries) <= keep and total <= budget:
        return
    entries.sort(reverse=True)  # newest first: they stay
    kept = 0
    for number, (_, size, path) in enumerate(entries):
        kept += size
        if number >= keep or (kept > budget and number > 0):
            with contextlib.suppress(OSError):
                os.unlink(path)
