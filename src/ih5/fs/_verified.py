"""Verified hashsums: a file hashed once is trusted while its identity and stat are unchanged.

An entry maps a file's stat key (``ih5.fs._filestate``, plus the bytes skipped) to
the hashsum the file had; a changed file misses and is hashed again. A file whose
timestamps are racy when hashing begins is not remembered. Entries are grouped per
record, one cache entry for all of its containers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ih5.fs._filestate import identity_of, is_settled, stat_key
from ih5.fs._hashing import Progress, hashsum_file
from ih5.fs._usercache import read_entry, write_entry

_KIND = "verified"


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

    def is_verified(self, path: Path, skip: int, hashsum: str, state: str | None = None) -> bool:
        """True when ``path`` was hashed to ``hashsum`` and has not changed since.

        ``state`` is the file's stat key (``stat_key``) when the caller just took it.
        """
        if state is None:
            try:
                state = stat_key(os.stat(path))
            except OSError:
                return False
        return self._entries.get(f"{state}:{skip}") == hashsum

    def hash(self, path: Path, algorithm: str, skip: int, progress: Progress | None = None) -> str:
        """Hash ``path`` after ``skip`` bytes and remember the result if the file held still."""
        started = time.time_ns()
        before = os.stat(path)
        actual = hashsum_file(path, algorithm, skip=skip, progress=progress)
        key = stat_key(before, skip)
        if is_settled(before, started) and stat_key(os.stat(path), skip) == key:
            self._added[key] = actual
        return actual

    def save(self) -> None:
        """Store what was hashed (merged with entries other processes stored meanwhile)."""
        if not self._added:
            return
        replaced = {identity_of(key) for key in self._added}
        kept = {  # without older states of the files just hashed
            key: value for key, value in self._load().items() if identity_of(key) not in replaced
        }
        merged = {**kept, **self._added}
        write_entry(_KIND, self._name, json.dumps(merged, separators=(",", ":")).encode())
        self._entries = merged
        self._added = {}
