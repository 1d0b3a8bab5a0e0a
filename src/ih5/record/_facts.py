"""Per-container facts: which paths a container holds, of what kind, with which attributes.

Facts are read once per committed container and cached by its patch uuid and
hashsum: a committed container never changes, so nothing needs re-reading when
a record is reopened or grows by a patch. Reading facts never reads dataset
values (except 1-byte scalars, to recognise deletion markers).
"""

from __future__ import annotations

import enum
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import h5py

from ih5.format import SUBST_ATTR, is_deletion_marker
from ih5.fs import read_entry, write_entry
from ih5.record._chunkmap import CHUNKS_ATTR, DeltaFacts, is_chunk_delta, read_delta
from ih5.record._paths import join_path


class NodeKind(enum.Enum):
    """What a container holds at a path."""

    GROUP = "group"
    DATASET = "dataset"
    DELETED = "deleted"
    CHUNKS = "chunks"
    """A chunk delta: changed chunks or a new shape of an older dataset (chunkmap.py)."""


@dataclass(frozen=True, slots=True)
class NodeFact:
    """One path of one container: kind, substitution flag, attributes, member names."""

    kind: NodeKind
    substituting: bool
    attrs: Mapping[str, bool]
    """Attribute name -> True when the attribute is a deletion marker."""
    children: tuple[str, ...]
    delta: DeltaFacts | None = None
    """For a chunk delta: its shape and chunk index."""


ContainerFacts = Mapping[str, NodeFact]
"""Absolute path ("/", "/a/b") -> fact, for one container."""


def _attr_facts(obj: h5py.HLObject) -> dict[str, bool]:
    facts: dict[str, bool] = {}
    for name in obj.attrs:
        if not isinstance(name, str):
            # h5py hands out names that are not UTF-8 as bytes; ih5 and metador never write them.
            raise ValueError(f"attribute name {name!r} of {obj.name} is not UTF-8")
        if name in (SUBST_ATTR, CHUNKS_ATTR):
            continue
        attr_id = obj.attrs.get_id(name)
        maybe_marker = attr_id.shape == () and attr_id.dtype.kind == "V"
        facts[name] = maybe_marker and is_deletion_marker(obj.attrs[name])
    return facts


def _check_member(group: h5py.Group, path: str, name: object) -> None:
    """Refuse member names ih5 cannot address and links leaving the container."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\x00" in name:
        raise ValueError(f"member {name!r} of {path} has a name that is not a valid path part")
    if not isinstance(group.get(name, getlink=True), (h5py.HardLink, h5py.SoftLink)):
        raise ValueError(f"member {name!r} of {path} is a link to another file")


def read_facts(file: h5py.File) -> dict[str, NodeFact]:
    """Index every path of an open container without reading dataset values.

    Damage or crafted content (names that are no path parts, external links, a group
    reached twice, e.g. through a link loop) raises ValueError.
    """
    nodes: dict[str, NodeFact] = {}
    pending: list[tuple[str, h5py.Group]] = [("/", file)]
    seen = {file["/"].id}
    while pending:
        path, group = pending.pop()
        names = tuple(group.keys())
        nodes[path] = NodeFact(NodeKind.GROUP, SUBST_ATTR in group.attrs, _attr_facts(group), names)
        for name in names:
            _check_member(group, path, name)
            child = group[name]
            child_path = join_path(path, name)
            if isinstance(child, h5py.Group) and is_chunk_delta(child):
                nodes[child_path] = NodeFact(
                    NodeKind.CHUNKS, True, _attr_facts(child), (), read_delta(child)
                )
            elif isinstance(child, h5py.Group):
                if child.id in seen:
                    # Without this a link loop would be walked forever.
                    raise ValueError(f"group {child_path} is linked at two paths (a link loop?)")
                seen.add(child.id)
                pending.append((child_path, child))
            elif is_deletion_marker(child):
                nodes[child_path] = NodeFact(NodeKind.DELETED, False, {}, ())
            else:
                nodes[child_path] = NodeFact(NodeKind.DATASET, False, _attr_facts(child), ())
    return nodes


_KINDS = dict(enumerate(NodeKind))
_CODES = {kind: code for code, kind in _KINDS.items()}


def facts_to_bytes(facts: ContainerFacts) -> bytes:
    """Compact JSON of a container's facts (for the per-user cache)."""
    rows = [
        [path, _CODES[fact.kind], int(fact.substituting), fact.attrs, fact.children]
        for path, fact in facts.items()
    ]
    return json.dumps(rows, separators=(",", ":")).encode("utf-8")


def facts_from_bytes(raw: bytes) -> dict[str, NodeFact] | None:
    """Facts stored by :func:`facts_to_bytes`; None for anything that does not fit.

    The cache entry's CRC already caught damage; this checks the shape only.
    """
    try:
        rows = json.loads(raw)
        facts = {
            path: NodeFact(_KINDS[kind], substituting == 1, attrs, tuple(children))
            for path, kind, substituting, attrs, children in rows
        }
    except (ValueError, TypeError, KeyError):
        return None
    for path, fact in facts.items():
        if not isinstance(fact.attrs, dict):
            return None
        for name in fact.children:
            if join_path(path, name) not in facts:
                return None
    return facts if "/" in facts else None


class FactsCache:
    """A bounded, thread-safe LRU of container facts keyed by (patch uuid, hashsum).

    The bound counts paths (about 350 bytes each), not containers: opening a chain
    scans its containers in order, and an LRU holding fewer containers than the chain
    would never hit, while a count of containers alone would not bound the memory.
    With ``persistent``, a miss looks in the per-user cache directory next (where
    other processes left the facts of the same committed container) and stores what
    it computed there.
    """

    def __init__(self, max_paths: int = 250_000, *, persistent: bool = False) -> None:
        self._persistent = persistent
        self._max_paths = max_paths
        self._paths = 0
        self._entries: OrderedDict[tuple[str, str], ContainerFacts] = OrderedDict()
        self._mutex = threading.Lock()

    def get(self, key: tuple[str, str], compute: Callable[[], ContainerFacts]) -> ContainerFacts:
        """Return the cached facts for ``key``, computing them on a miss."""
        with self._mutex:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        facts = self._load(key) if self._persistent else None
        if facts is None:
            facts = compute()
            if self._persistent and persistable(facts):
                write_entry("facts", _entry_name(key), facts_to_bytes(facts))
        with self._mutex:
            if key not in self._entries:
                self._entries[key] = facts
                self._paths += len(facts)
            while self._paths > self._max_paths and len(self._entries) > 1:
                self._paths -= len(self._entries.popitem(last=False)[1])
        return facts

    @staticmethod
    def _load(key: tuple[str, str]) -> ContainerFacts | None:
        raw = read_entry("facts", _entry_name(key))
        return None if raw is None else facts_from_bytes(raw)

    def clear(self) -> None:
        """Forget every entry (as a new process would start)."""
        with self._mutex:
            self._entries.clear()
            self._paths = 0


def persistable(facts: ContainerFacts) -> bool:
    """Whether ``facts`` go to the per-user cache: chunk deltas stay in this process
    (their chunk index is not serialised)."""
    return all(fact.delta is None for fact in facts.values())


def _entry_name(key: tuple[str, str]) -> str:
    patch_uuid, hashsum = key
    return f"{patch_uuid}.{hashsum.replace(':', '-')}.json"


FACTS_CACHE = FactsCache(persistent=True)
"""The process-wide facts cache (``FACTS_CACHE.clear()`` forgets what this process read)."""
