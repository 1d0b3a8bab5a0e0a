"""Verified hashsums: a file hashed once is trusted while its identity and stat are unchanged.

An entry maps (device, inode, size, mtime_ns, ctime_ns, bytes skipped) to the
hashsum the file had; any write changes mtime or ctime, so a changed file misses
and is hashed again. As in git's index, a file whose timestamps are not clearly
older than the moment hashing began is "racy" (a write in the same timestamp tick
could go unseen) and is not remembered. Entries are grouped per record, one cache
entry for all of its containers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ih5.fs.hashing import Progress, hashsum_file
from ih5.fs.usercache import read_entry, write_entry

RACY_MARGIN_NS = 2_000_000_000
"""Timestamps this close to the start of hashing are racy (2 s: coarse file systems)."""
_KIND = "verified"


def _key(info: os.stat_result, skip: int) -> str:
    return (
        f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{skip}"
    )


def _file_of(key: str) -> str:
    """The device:inode part of a key."""
    return ":".join(key.split(":", 2)[:2])


class VerifiedHashsums:
    """The remembered hashsums of one record's containers (``group``: the record's uuid)."""

    def __init__(self, group: str) -> None:
        self._name = f"{group}.json"
        self._entries = self._load()
        self._added: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        raw = read_entry(_KIND, self._name)
        try:
            entries = json.loads(raw) if raw is not None else {}
        except ValueError:
            return {}
        if not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str)}

    def is_verified(self, path: Path, skip: int, hashsum: str) -> bool:
        """True when ``path`` was hashed to ``hashsum`` and has not changed since."""
        try:
            info = os.stat(path)
        except OSError:
            return False
        return self._entries.get(_key(info, skip)) == hashsum

    def hash(self, path: Path, algorithm: str, skip: int, progress: Progress | None = None) -> str:
        """Hash ``path`` after ``skip`` bytes and remember the result if the file held still."""
        started = time.time_ns()
        before = os.stat(path)
        actual = hashsum_file(path, algorithm, skip=skip, progress=progress)
        key = _key(before, skip)
        newest = max(before.st_mtime_ns, before.st_ctime_ns)
        if newest + RACY_MARGIN_NS < started and _key(os.stat(path), skip) == key:
            self._added[key] = actual
        return actual

    def save(self) -> None:
        """Store what was hashed (merged with entries other processes stored meanwhile)."""
        if not self._added:
            return
        replaced = {_file_of(key) for key in self._added}
        kept = {  # without older states of the files just hashed
            key: value for key, value in self._load().items() if _file_of(key) not in replaced
        }
        merged = {**kept, **self._added}
        write_entry(_KIND, self._name, json.dumps(merged, separators=(",", ":")).encode())
        self._entries = merged
        self._added = {}
