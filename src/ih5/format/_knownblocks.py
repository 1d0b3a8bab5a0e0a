"""User blocks remembered across processes while their files are unchanged.

Opening a record reads every container's user block; for a long chain in a new
process that is most of the cost of an open. The blocks of one record directory
are kept as one per-user cache entry (``ih5.fs._usercache``), keyed by each file's
stat key (``ih5.fs._filestate``), so a file that changed, or was racy when read,
is read again. Each block is kept as its fields in one compact row (see
``compact_block``), so that a new process rebuilds it without parsing its JSON text
or any uuid twice. A damaged entry, or a row that does not fit, reads as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from uuid import UUID

from ih5.format._naming import parse_container_name
from ih5.format._userblock import (
    IH5UserBlock,
    block_from_compact,
    compact_block,
    read_user_block_with_size,
)
from ih5.fs import is_settled, read_entry, stat_key, write_entry

_KIND = "userblocks"
_FORMAT = "r2"
"""In each entry's name: a version that kept blocks another way never reads (or rewrites)
this one's entries, nor this version its."""


class KnownUserBlocks:
    """The remembered user blocks of the containers of one record, in one directory."""

    def __init__(self, first: Path) -> None:
        parsed = parse_container_name(first.name)
        where = f"{os.path.realpath(first.parent)}/{parsed[0] if parsed else first.name}"
        digest = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        self._name = f"{digest}.{_FORMAT}"
        self._known = self._load()
        self._added: dict[str, list[object]] = {}
        self._hits: set[str] = set()
        self._uuids: dict[str, UUID] = {}

    def _load(self) -> dict[str, list[object]]:
        raw = read_entry(_KIND, self._name)
        try:
            entries = json.loads(raw) if raw is not None else {}
        except ValueError:
            return {}
        return entries if isinstance(entries, dict) else {}

    def read(self, path: Path, info: os.stat_result, taken: int) -> tuple[IH5UserBlock, int]:
        """The user block of ``path`` and its size, from the cache when the file is unchanged
        (``info``: its stat, taken at ``taken``, a ``time.time_ns()``)."""
        key = stat_key(info)
        hit = self._known.get(key)
        if isinstance(hit, list) and len(hit) == 2 and type(hit[0]) is int:
            user_block = block_from_compact(hit[1], self._uuids)
            if user_block is not None:
                self._hits.add(key)
                return user_block, hit[0]
        user_block, size = read_user_block_with_size(path)
        if is_settled(info, taken) and stat_key(os.stat(path)) == key:
            self._added[key] = [size, compact_block(user_block)]
        return user_block, size

    def save(self) -> None:
        """Store what was read anew, forgetting entries no file matched this time."""
        if not self._added:
            return
        kept = {key: value for key, value in self._known.items() if key in self._hits}
        merged = {**kept, **self._added}
        write_entry(_KIND, self._name, json.dumps(merged, separators=(",", ":")).encode())
        self._known, self._added = merged, {}
