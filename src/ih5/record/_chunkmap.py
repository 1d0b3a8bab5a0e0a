"""Chunk deltas: the ``ih5_chunks_v01`` representation of a change to some chunks of a dataset.

A patch that changes (or resizes) a chunked dataset of an older container
holds, at the dataset's path, a substituting group marked with the attribute
``CHUNKS_ATTR`` (docs/FORMAT.md, "Chunk-level patches"):

- ``chunks``: the chunks this patch stores, stacked along axis 0 (slot ``s``
  is rows ``s*c0 .. (s+1)*c0``), with the dataset's own type and creation
  properties (chunk shape, filters, fill value);
- ``index``: int64 rows ``(chunk coordinates..., source patch, source slot)``
  saying where each chunk the patch changed now comes from (slot -1: the
  dataset's plain storage in the source patch, at the same coordinates);
- ``hashes``: the sha256 of each stored slot's decoded bytes, for reuse;
- the marker attribute: JSON ``{"version": 1, "shape": [...], "floor": [...]}``,
  the dataset's shape after this patch and the smallest shape it had within
  the patch (older values beyond the floor stay hidden).

This module only reads and writes that representation; resolving a chunk
through a chain is :mod:`ih5.record._chunks`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from ih5.record._room import Room

CHUNKS_ATTR = "\x1achunks"
"""Marks a chunk-delta group; user attributes may not take this name."""
FORMAT_VERSION = 1
PLAIN_SLOT = -1
"""Source slot meaning: the plain dataset of the source patch, same chunk coordinates."""
FILL_SLOT = -2
"""Source slot meaning: the chunk shows only the fill value."""
CHUNKS_NAME = "chunks"
INDEX_NAME = "index"
HASHES_NAME = "hashes"
_INDEX_ROWS_PER_CHUNK = 32
_DIGEST_SIZE = 32
CHUNK_OVERHEAD = 1024
"""Bytes beyond a chunk's values that storing it may take: index and hash rows, the chunk's
B-tree entry, a filter's growth of incompressible data (checked before HDF5 writes)."""

Coords = tuple[int, ...]
"""Chunk coordinates in chunk units (element offset // chunk shape)."""


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """Where a chunk's bytes live: a patch index and a slot of its delta (or PLAIN_SLOT)."""

    level: int
    slot: int


@dataclass
class DeltaFacts:
    """What one container's chunk delta says about one dataset."""

    shape: tuple[int, ...]
    floor: tuple[int, ...]
    """The smallest shape within this patch: older values beyond it stay hidden."""
    rows: dict[Coords, ChunkRef] = field(default_factory=dict)
    """Chunk coordinates -> the chunk's source after this patch."""
    hashes: dict[bytes, int] = field(default_factory=dict)
    """sha256 digest -> own slot holding those bytes."""


def chunk_digest(buffer: np.ndarray[Any, Any]) -> bytes:
    """The sha256 of a decoded chunk buffer (object arrays: length-prefixed element bytes)."""
    digest = hashlib.sha256()
    digest.update(str(buffer.dtype).encode())
    if buffer.dtype.hasobject:
        for item in buffer.flat:
            raw = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            digest.update(len(raw).to_bytes(8, "little"))
            digest.update(raw)
    else:
        digest.update(np.ascontiguousarray(buffer).tobytes())
    return digest.digest()


def buffer_bytes(buffer: np.ndarray[Any, Any]) -> int:
    """An upper bound of the bytes HDF5 stores for ``buffer`` (variable-length items: their
    heap entries too)."""
    if not buffer.dtype.hasobject:
        return int(buffer.nbytes)
    total = 0
    for item in buffer.flat:
        size = len(item.encode("utf-8")) if isinstance(item, str) else len(bytes(item))
        total += size + 32
    return total


def is_chunk_delta(group: h5py.Group) -> bool:
    """True when ``group`` is a chunk delta (carries the marker attribute)."""
    return CHUNKS_ATTR in group.attrs


def _info(shape: tuple[int, ...], floor: tuple[int, ...]) -> str:
    return json.dumps({"version": FORMAT_VERSION, "shape": list(shape), "floor": list(floor)})


def read_delta(group: h5py.Group) -> DeltaFacts:
    """Read a chunk delta's shape, index and hashes (never the chunk values).

    Damage or an unknown version raises ValueError.
    """
    raw = group.attrs[CHUNKS_ATTR]
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    info = json.loads(text)
    if not isinstance(info, dict) or info.get("version") != FORMAT_VERSION:
        raise ValueError(f"chunk delta {group.name} has unknown version {text!r}")
    shape = tuple(int(n) for n in info["shape"])
    floor = tuple(int(n) for n in info["floor"])
    if len(floor) != len(shape):
        raise ValueError(f"chunk delta {group.name} has a floor {floor} for shape {shape}")
    facts = DeltaFacts(shape, floor)
    index = np.asarray(group[INDEX_NAME][()], dtype=np.int64)
    ndim = len(shape)
    if index.ndim != 2 or index.shape[1] != ndim + 2:
        raise ValueError(f"chunk delta {group.name} has an index of shape {index.shape}")
    for row in index:
        facts.rows[tuple(int(n) for n in row[:ndim])] = ChunkRef(int(row[ndim]), int(row[ndim + 1]))
    hashes = np.asarray(group[HASHES_NAME][()], dtype=np.uint8)
    for slot, digest in enumerate(hashes):
        facts.hashes.setdefault(digest.tobytes(), slot)
    return facts


class DeltaWriter:
    """The chunk delta of one dataset in the open patch: stores chunks, keeps the index."""

    def __init__(
        self, group: h5py.Group, facts: DeltaFacts, level: int, room: Room | None = None
    ) -> None:
        self.group = group
        self.facts = facts
        self.level = level
        self.room = room
        """The patch file's reserved disk space: every change is reserved before HDF5 sees it."""
        self._chunks = group[CHUNKS_NAME]
        self._index = group[INDEX_NAME]
        self._hashes = group[HASHES_NAME]
        chunk = self._chunks.chunks
        assert chunk is not None
        self.chunk0 = int(chunk[0])
        self._row_of: dict[Coords, int] = {coords: n for n, coords in enumerate(facts.rows)}
        self._slot_digest: dict[int, bytes] = {
            slot: digest
            for slot, digest in enumerate(np.asarray(self._hashes[()], dtype=np.uint8))
            for digest in [digest.tobytes()]
        }
        self._users: dict[int, int] = {}
        for ref in facts.rows.values():
            if ref.level == level and ref.slot >= 0:
                self._users[ref.slot] = self._users.get(ref.slot, 0) + 1

    @classmethod
    def create(
        cls,
        group: h5py.Group,
        plain: h5py.Dataset,
        shape: tuple[int, ...],
        level: int,
        room: Room | None = None,
    ) -> DeltaWriter:
        """Turn ``group`` into an empty chunk delta for the chunked dataset ``plain``."""
        if room is not None:
            room.ensure(3 * CHUNK_OVERHEAD)
        chunks = plain.chunks
        assert chunks is not None
        space = h5py.h5s.create_simple((0, *chunks[1:]), (h5py.h5s.UNLIMITED, *chunks[1:]))
        h5py.h5d.create(
            group.id,
            CHUNKS_NAME.encode(),
            plain.id.get_type(),
            space,
            dcpl=plain.id.get_create_plist(),
        )
        ndim = len(shape)
        group.create_dataset(
            INDEX_NAME,
            shape=(0, ndim + 2),
            maxshape=(None, ndim + 2),
            dtype=np.int64,
            chunks=(_INDEX_ROWS_PER_CHUNK, ndim + 2),
        )
        group.create_dataset(
            HASHES_NAME,
            shape=(0, _DIGEST_SIZE),
            maxshape=(None, _DIGEST_SIZE),
            dtype=np.uint8,
            chunks=(_INDEX_ROWS_PER_CHUNK, _DIGEST_SIZE),
        )
        group.attrs[CHUNKS_ATTR] = _info(shape, shape)
        return cls(group, DeltaFacts(shape, shape), level, room)

    @classmethod
    def load(cls, group: h5py.Group, level: int, room: Room | None = None) -> DeltaWriter:
        """Resume writing the chunk delta ``group`` of a resumed open patch."""
        return cls(group, read_delta(group), level, room)

    def reserve(self, nbytes: int) -> None:
        """Make sure ``nbytes`` more fit on the disk before HDF5 writes them (DiskFullError)."""
        if self.room is not None:
            self.room.ensure(nbytes)

    def set_shape(self, shape: tuple[int, ...]) -> None:
        """Record the dataset's new shape (a resize); a shrink lowers the floor for good."""
        self.reserve(0)
        self.facts.shape = shape
        self.facts.floor = tuple(min(a, b) for a, b in zip(self.facts.floor, shape, strict=True))
        self.group.attrs[CHUNKS_ATTR] = _info(shape, self.facts.floor)

    @property
    def stored(self) -> h5py.Dataset:
        """The stacked chunk dataset (slot ``s`` is rows s*c0 .. (s+1)*c0)."""
        return self._chunks

    def _set_row(self, coords: Coords, ref: ChunkRef) -> None:
        old = self.facts.rows.get(coords)
        if old is not None and old.level == self.level and old.slot >= 0:
            self._users[old.slot] -= 1
        if ref.level == self.level and ref.slot >= 0:
            self._users[ref.slot] = self._users.get(ref.slot, 0) + 1
        self.facts.rows[coords] = ref
        row = self._row_of.get(coords)
        if row is None:
            row = self._row_of[coords] = len(self._row_of)
            self._index.resize((row + 1, self._index.shape[1]))
        self._index[row] = [*coords, ref.level, ref.slot]

    def point(self, coords: Coords, ref: ChunkRef) -> None:
        """Let chunk ``coords`` come from an existing chunk ``ref`` (equal bytes)."""
        self.reserve(CHUNK_OVERHEAD)
        self._set_row(coords, ref)

    def store(self, coords: Coords, buffer: np.ndarray[Any, Any], digest: bytes) -> None:
        """Store the full chunk ``buffer`` as chunk ``coords`` of this patch."""
        self.reserve(buffer_bytes(buffer) + CHUNK_OVERHEAD)
        current = self.facts.rows.get(coords)
        if current is not None and current.level == self.level and current.slot >= 0:
            slot = current.slot
            if self._users.get(slot, 0) != 1:
                slot = self._free_slot()
        else:
            slot = self._free_slot()
        old_digest = self._slot_digest.get(slot)
        if old_digest is not None and self.facts.hashes.get(old_digest) == slot:
            del self.facts.hashes[old_digest]
        start = slot * self.chunk0
        if self._chunks.shape[0] < start + self.chunk0:
            self._chunks.resize(start + self.chunk0, axis=0)
        self._chunks[start : start + self.chunk0] = buffer
        if self._hashes.shape[0] <= slot:
            self._hashes.resize((slot + 1, _DIGEST_SIZE))
        self._hashes[slot] = np.frombuffer(digest, dtype=np.uint8)
        self._slot_digest[slot] = digest
        self.facts.hashes[digest] = slot
        self._set_row(coords, ChunkRef(self.level, slot))

    def _free_slot(self) -> int:
        """A slot no chunk uses any more (rewritten in this patch), else a new one."""
        for slot, users in self._users.items():
            if users == 0:
                return slot
        return len(self._slot_digest)


def describe_layout(
    dataset: h5py.Dataset, shape: tuple[int, ...], deltas: list[int]
) -> dict[str, Any]:
    """What a stub needs to accept chunk writes and resizes of ``dataset`` (JSON data).

    The type is HDF5's own encoding (``H5Tencode``, base64), so compound, enum and
    string types come back exactly; filters are HDF5 filter ids with their flags
    and parameters.
    """
    plist = dataset.id.get_create_plist()
    filters = []
    for number in range(plist.get_nfilters()):
        code, flags, values, _ = plist.get_filter(number)
        filters.append([int(code), int(flags), [int(v) for v in values]])
    fill: str | None = None
    if not dataset.dtype.hasobject:
        value = np.zeros((), dtype=dataset.dtype)
        plist.get_fill_value(value)
        fill = base64.b64encode(value.tobytes()).decode("ascii")
    return {
        "shape": list(shape),
        "maxshape": [None if n is None else int(n) for n in dataset.maxshape],
        "chunks": [int(n) for n in dataset.chunks],
        "type": base64.b64encode(dataset.id.get_type().encode()).decode("ascii"),
        "filters": filters,
        "fillvalue": fill,
        "deltas": list(deltas),
    }


def create_from_layout(parent: h5py.Group, name: str, layout: dict[str, Any]) -> h5py.Dataset:
    """Create an empty chunked dataset (no chunk written) with a described layout."""
    tid = h5py.h5t.decode(base64.b64decode(layout["type"]))
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_chunk(tuple(layout["chunks"]))
    for code, flags, values in layout["filters"]:
        plist.set_filter(code, flags, tuple(values))
    if layout["fillvalue"] is not None:
        raw = base64.b64decode(layout["fillvalue"])
        plist.set_fill_value(np.frombuffer(raw, dtype=tid.dtype).reshape(()).copy())
    maxshape = tuple(h5py.h5s.UNLIMITED if n is None else n for n in layout["maxshape"])
    space = h5py.h5s.create_simple(tuple(layout["shape"]), maxshape)
    h5py.h5d.create(parent.id, name.encode(), tid, space, dcpl=plist)
    dataset = parent[name]
    assert isinstance(dataset, h5py.Dataset)
    return dataset
