"""A file's identity and stat as one key, and when a key may be trusted to reveal a change.

What ih5 learns from a file (its hashsum, its user block) may be remembered under
the file's key: device, inode, size, and modification and change times in ns. Any
write changes mtime or ctime, so a changed file gets a new key. Except within one
timestamp tick: a write in the same tick as the stat the key came from leaves the
timestamps as they were. As in git's index, a key whose timestamps are not clearly
older than the moment it was taken is "racy" and must not be remembered.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def still_at(fd: int, path: str) -> bool:
    """Whether the file open at ``fd`` is still the one at ``path`` (not moved, deleted or
    replaced), ``path`` itself not followed."""
    try:
        on_disk = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


COARSE_MARGIN_NS = 2_000_000_000
"""The racy window on file systems with whole-second timestamps (FAT's are 2 s)."""
FINE_MARGIN_NS = 50_000_000
"""The racy window with sub-second timestamps: Linux stamps files from a clock that
advances once per kernel tick (at most 10 ms), so 50 ms is five ticks or more."""


def stat_key(info: os.stat_result, *extra: object) -> str:
    """The key of a file's identity and state (plus ``extra`` facts the key depends on)."""
    key = f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"
    return key + "".join(f":{fact}" for fact in extra) if extra else key


def identity_of(key: str) -> str:
    """The device:inode part of a key (which file, whatever its state)."""
    return ":".join(key.split(":", 2)[:2])


def racy_margin_ns(info: os.stat_result) -> int:
    """How far the timestamps of ``info`` must lie behind a moment to be trusted at it."""
    whole_seconds = info.st_mtime_ns % 1_000_000_000 == 0 == info.st_ctime_ns % 1_000_000_000
    return COARSE_MARGIN_NS if whole_seconds else FINE_MARGIN_NS


def is_settled(info: os.stat_result, taken_ns: int) -> bool:
    """True when a write after ``taken_ns`` (a ``time.time_ns()``) must change the stat key."""
    newest = max(info.st_mtime_ns, info.st_ctime_ns)
    return newest + racy_margin_ns(info) < taken_ns


class StatMemo(Generic[T]):
    """What this process read from files, reused while each file's stat key holds.

    A bounded LRU keyed by path. A file read while its timestamps were racy is not
    remembered, so a write in the same tick cannot hide behind an old entry.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._entries: OrderedDict[str, tuple[str, T]] = OrderedDict()
        self._mutex = threading.Lock()

    def get(self, path: str | os.PathLike[str], read: Callable[[os.stat_result, int], T]) -> T:
        """What ``read(info, taken_ns)`` returns for ``path``, from memory if the file has
        not changed (``info`` is the file's stat, taken at ``taken_ns``)."""
        return self.get_keyed(path, read)[0]

    def get_keyed(
        self, path: str | os.PathLike[str], read: Callable[[os.stat_result, int], T]
    ) -> tuple[T, str]:
        """As :meth:`get`, with the stat key of the file it was read from (or matched)."""
        name = os.fspath(path)
        taken = time.time_ns()
        info = os.stat(name)
        key = stat_key(info)
        with self._mutex:
            hit = self._entries.get(name)
            if hit is not None and hit[0] == key:
                self._entries.move_to_end(name)
                return hit[1], key
        value = read(info, taken)
        if is_settled(info, taken):
            with self._mutex:
                self._entries[name] = (key, value)
                self._entries.move_to_end(name)
                while len(self._entries) > self._limit:
                    self._entries.popitem(last=False)
        return value, key

    def clear(self) -> None:
        """Forget every entry (as a new process would start)."""
        with self._mutex:
            self._entries.clear()
