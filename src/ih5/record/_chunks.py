"""A chunked dataset seen through its chunk deltas: which container holds each chunk, reads
and writes assembled chunk by chunk.

A dataset's values start as the plain dataset of the container that created
it; each later chunk delta (:mod:`ih5.record._chunkmap`) says which chunks it
changed and the shape after it. A chunk is looked up newest delta first. An
element is visible from a source only if it lies inside every shape from that
source's patch to now: a shrink hides elements for good, and growing again
shows the fill value there, as in h5py.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import h5py
import numpy as np

from ih5.errors import IntegrityError, StubError
from ih5.record._chunkmap import (
    CHUNK_OVERHEAD,
    FILL_SLOT,
    PLAIN_SLOT,
    ChunkRef,
    Coords,
    DeltaFacts,
    DeltaWriter,
    buffer_bytes,
    chunk_digest,
)
from ih5.record._expected import expecting_all
from ih5.record._selection import Axis, Selection, as_array, is_contiguous, normalize

Stored = Callable[[int], h5py.Dataset]
"""Patch index -> the ``chunks`` dataset of that patch's delta for this dataset."""


@dataclass(frozen=True)
class Located:
    """Where a chunk's values come from and how far they are visible."""

    ref: ChunkRef | None
    """None: nothing is visible, the chunk is all fill value."""
    clip: tuple[int, ...]
    """Elements at or beyond this (absolute) index on any axis show the fill value."""


@dataclass(frozen=True)
class PreparedWrite:
    """A checked write: the normalized selection and the value broadcast onto its box."""

    selection: Selection
    value: np.ndarray[Any, Any]


def _min_shape(left: Sequence[int], right: Sequence[int]) -> tuple[int, ...]:
    return tuple(min(a, b) for a, b in zip(left, right, strict=False))


class Source(NamedTuple):
    """A chunk readable by one HDF5 call: its dataset, the offset of its rows there along
    axis 0, and how far (absolute indices) its values are visible."""

    dataset: h5py.Dataset
    shift: int
    limit: tuple[int, ...]


_UNKNOWN = object()
"""Marks a chunk whose :class:`Source` was not looked up yet."""


@dataclass
class _Memo:
    """What a view of committed deltas works out once, shared with its extended copies."""

    latest: dict[Coords, int] | None = None
    """Chunk coordinates -> position of the newest committed delta with a row for them."""
    known: dict[bytes, ChunkRef] | None = None
    """Digest -> a committed chunk holding those bytes."""


class ChunkedDataset:
    """Values of one dataset assembled from its plain storage and its chunk deltas.

    A view of committed deltas never changes and is kept by the chain; the open
    patch's delta is laid on top of it by :meth:`extended`, at no cost that grows
    with the number of patches.
    """

    def __init__(
        self,
        plain: h5py.Dataset,
        plain_level: int,
        deltas: Sequence[tuple[int, DeltaFacts]],
        stored: Stored,
        plain_readable: bool = True,
    ) -> None:
        chunks = plain.chunks
        if chunks is None:
            raise TypeError(f"{plain.name} is not chunked")
        self.plain = plain
        self.plain_level = plain_level
        self.stored = stored
        self.plain_readable = plain_readable
        self.chunks: tuple[int, ...] = tuple(chunks)
        self.dtype: np.dtype[Any] = plain.dtype
        self.plain_shape: tuple[int, ...] = tuple(plain.shape)
        self._base = list(deltas)
        self.shape: tuple[int, ...] = self._base[-1][1].shape if self._base else self.plain_shape
        count, ndim = len(self._base), len(self.chunks)
        floors = np.array([facts.floor for _, facts in self._base], dtype=np.int64)
        floors = floors.reshape(count, ndim)
        newer = np.full((count, ndim), np.iinfo(np.int64).max, dtype=np.int64)
        if count > 1:
            newer[:-1] = np.minimum.accumulate(floors[::-1], axis=0)[::-1][1:]
        self._newer = newer
        """newer[j]: the smallest floor of the deltas newer than delta j, per axis."""
        self._floors: tuple[int, ...] = self.plain_shape
        if count:
            self._floors = _min_shape(tuple(floors.min(axis=0).tolist()), self.plain_shape)
        self.plain_clip = _min_shape(self.shape, self._floors)
        """How far plain storage is visible (every floor, its own shape)."""
        self._cap: tuple[int, ...] = self.shape
        """Caps every committed delta's visibility: the shape, or the open delta's floor."""
        self._clips: dict[int, tuple[int, ...]] = {}
        """position -> how far the chunks of that delta are visible (newer floors, the cap)."""
        self._memo = _Memo()
        self._sources: dict[Coords, Source | None] = {}
        """Chunk coordinates -> where one HDF5 call reads them (committed views only)."""
        self._fill: tuple[Any] | None = None
        self._tail: tuple[int, DeltaFacts] | None = None
        """The open patch's delta laid over the committed ones (see :meth:`extended`)."""

    def extended(self, level: int, facts: DeltaFacts) -> ChunkedDataset:
        """This view with the open patch's delta ``facts`` (patch ``level``) laid on top.

        Its chunk rows are read live; its shape and floor are taken now.
        """
        view = copy.copy(self)
        view._tail = (level, facts)
        view.shape = facts.shape
        view._cap = _min_shape(facts.shape, facts.floor)
        view.plain_clip = _min_shape(view._cap, self._floors)
        view._clips = {}
        view._sources = {}  # stays empty: the open delta's rows change under it
        return view

    def _clip(self, position: int) -> tuple[int, ...]:
        """How far the chunks committed delta ``position`` stores are visible."""
        clip = self._clips.get(position)
        if clip is None:
            clip = tuple(np.minimum(self._newer[position], self._cap).tolist())
            self._clips[position] = clip
        return clip

    @property
    def deltas(self) -> list[tuple[int, DeltaFacts]]:
        """(patch index, delta facts) of every delta laid over the plain storage, oldest first."""
        return self._base if self._tail is None else [*self._base, self._tail]

    # --- locating ----------------------------------------------------------

    @property
    def fill(self) -> Any:
        """The fill value, as h5py reports it for the plain dataset."""
        if self._fill is None:
            self._fill = (self.plain.fillvalue,)
        return self._fill[0]

    def origin(self, coords: Coords) -> tuple[int, ...]:
        """First element of chunk ``coords``."""
        return tuple(c * n for c, n in zip(coords, self.chunks, strict=False))

    def _newest_rows(self) -> dict[Coords, int]:
        """Chunk coordinates -> position of the newest committed delta with a row for them."""
        memo = self._memo
        if memo.latest is None:
            latest: dict[Coords, int] = {}
            for position, (_, facts) in enumerate(self._base):
                latest.update(dict.fromkeys(facts.rows, position))
            memo.latest = latest
        return memo.latest

    def locate(self, coords: Coords) -> Located:
        """Where chunk ``coords`` comes from: the newest delta with a row for it, else plain.

        Visibility only shrinks towards older deltas, so checking the found delta's
        clip covers every newer one.
        """
        origin = [c * n for c, n in zip(coords, self.chunks, strict=True)]
        ref: ChunkRef | None = None
        tail = self._tail
        if tail is not None:
            ref = tail[1].rows.get(coords)
            clip = self.shape
        if ref is None:
            latest = self._memo.latest
            position = (latest if latest is not None else self._newest_rows()).get(coords)
            if position is None:
                clip = self.plain_clip
                if any(o >= c for o, c in zip(origin, clip, strict=True)):
                    return Located(None, clip)
                return Located(ChunkRef(self.plain_level, PLAIN_SLOT), clip)
            ref = self._base[position][1].rows[coords]
            clip = self._clips.get(position) or self._clip(position)
        if any(o >= c for o, c in zip(origin, clip, strict=True)):
            return Located(None, clip)
        return Located(None if ref.slot == FILL_SLOT else ref, clip)

    def grid(self) -> Iterator[Coords]:
        """Coordinates of every chunk of the current shape, in C order."""
        counts = [-(-n // c) for n, c in zip(self.shape, self.chunks, strict=False)]
        return itertools.product(*(range(n) for n in counts))

    # --- reading -----------------------------------------------------------

    def _blank(self, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
        return np.full(shape, self.fill, dtype=self.dtype)

    def read_region(
        self, coords: Coords, lo: Sequence[int], hi: Sequence[int], where: Located | None = None
    ) -> np.ndarray[Any, Any]:
        """Values of the local box ``lo``..``hi`` (offsets inside chunk ``coords``)."""
        where = where or self.locate(coords)
        shape = tuple(b - a for a, b in zip(lo, hi, strict=False))
        found = self._stored_part(coords, lo, hi, where)
        if found is None:
            return self._blank(shape)
        source, sel, top = found
        values = source[sel]
        if top == tuple(hi):
            return np.asarray(values)
        out = self._blank(shape)
        out[tuple(slice(0, t - a) for a, t in zip(lo, top, strict=False))] = values
        return out

    def _stored_part(
        self, coords: Coords, lo: Sequence[int], hi: Sequence[int], where: Located
    ) -> tuple[h5py.Dataset, tuple[slice, ...], tuple[int, ...]] | None:
        """Where the stored values of the local box ``lo``..``hi`` of chunk ``coords`` are: the
        dataset, the selection in it, and the box's upper corner clipped to what is stored
        (beyond it, and where None is returned, the fill value shows)."""
        origin = self.origin(coords)
        ref = where.ref
        if ref is None:
            return None
        limit = where.clip
        if ref.slot == PLAIN_SLOT:
            limit = _min_shape(limit, self.plain_shape)
        top = tuple(
            max(a, min(b, c - o)) for a, b, c, o in zip(lo, hi, limit, origin, strict=False)
        )
        if any(t <= a for a, t in zip(lo, top, strict=False)):
            return None
        if ref.slot == PLAIN_SLOT:
            if ref.level != self.plain_level:
                raise _missing(self.plain.name, ref.level)
            if not self.plain_readable:
                raise StubError(
                    f"{self.plain.name!r}: this change needs chunk {coords} of the stub's "
                    "placeholder, whose data is not here; write whole chunks, or work on the "
                    "real record",
                    self.plain.name,
                )
            sel = tuple(slice(o + a, o + t) for o, a, t in zip(origin, lo, top, strict=False))
            return self.plain, sel, top
        base = ref.slot * self.chunks[0]
        sel = (
            slice(base + lo[0], base + top[0]),
            *tuple(slice(a, t) for a, t in zip(lo[1:], top[1:], strict=False)),
        )
        return self.stored(ref.level), sel, top

    def chunk_buffer(self, coords: Coords, where: Located | None = None) -> np.ndarray[Any, Any]:
        """The whole chunk ``coords`` (fill value wherever nothing is visible)."""
        return self.read_region(coords, (0,) * len(self.chunks), self.chunks, where)

    def _touched(self, selection: Selection) -> Iterator[tuple[Coords, list[slice], list[Axis]]]:
        """Per touched chunk: coordinates, positions in the box, local indices in the chunk."""
        per_axis: list[list[tuple[int, slice, Axis]]] = []
        for axis, size in zip(selection.axes, self.chunks, strict=True):
            parts: list[tuple[int, slice, Axis]] = []
            if isinstance(axis, range) and axis.step == 1:
                for chunk in range(axis.start // size, -(-axis.stop // size)) if len(axis) else []:
                    a, b = max(axis.start, chunk * size), min(axis.stop, (chunk + 1) * size)
                    local = range(a - chunk * size, b - chunk * size)
                    parts.append((chunk, slice(a - axis.start, b - axis.start), local))
            elif len(axis):
                indices = as_array(axis)
                ids = indices // size
                bounds = np.flatnonzero(np.diff(ids)) + 1
                starts = [0, *bounds.tolist()]
                stops = [*bounds.tolist(), len(indices)]
                for start, stop in zip(starts, stops, strict=True):
                    chunk = int(ids[start])
                    parts.append((chunk, slice(start, stop), indices[start:stop] - chunk * size))
            per_axis.append(parts)
        for combo in itertools.product(*per_axis):
            yield (
                tuple(part[0] for part in combo),
                [part[1] for part in combo],
                [part[2] for part in combo],
            )

    def _read_box(self, selection: Selection) -> np.ndarray[Any, Any]:
        box = np.empty(selection.box_shape, dtype=self.dtype)
        if box.size == 0:
            return box
        if selection.is_box and self._bulk_plain(selection, box):
            return box
        for coords, positions, local in self._touched(selection):
            lo = [int(idx[0]) for idx in local]
            hi = [int(idx[-1]) + 1 for idx in local]
            region = self.read_region(coords, lo, hi)
            if all(len(idx) == b - a for idx, a, b in zip(local, lo, hi, strict=False)):
                box[tuple(positions)] = region
            else:
                box[tuple(positions)] = region[
                    np.ix_(*[as_array(idx) - a for idx, a in zip(local, lo, strict=True)])
                ]
        return box

    def _bulk_plain(self, selection: Selection, box: np.ndarray[Any, Any]) -> bool:
        """Read a box by slabs: runs of chunk rows (along axis 0) that come entirely from
        plain storage take one HDF5 call each; other chunks are read one by one."""
        if not self.plain_readable or box.dtype.hasobject:
            return False
        rows: dict[int, list[tuple[Coords, list[slice], list[Axis], Located, bool]]] = {}
        for coords, positions, local in self._touched(selection):
            where = self.locate(coords)
            ref = where.ref
            origin = self.origin(coords)
            whole = (
                ref is not None
                and ref.slot == PLAIN_SLOT
                and ref.level == self.plain_level
                and where.clip == self.plain_clip
                and all(
                    o + int(idx[-1]) < c
                    for o, idx, c in zip(origin, local, self.plain_clip, strict=True)
                )
            )
            rows.setdefault(coords[0], []).append((coords, positions, local, where, whole))
        start = [int(axis[0]) for axis in selection.axes]
        run: list[slice] = []
        reads: list[tuple[h5py.Dataset, tuple[slice, ...], tuple[slice, ...]]] = []
        regions: list[tuple[list[slice], Coords, list[int], list[int], Located]] = []

        def flush() -> None:
            if not run:
                return
            first, last = run[0].start, run[-1].stop
            rest = [slice(a, a + n) for a, n in zip(start[1:], box.shape[1:], strict=True)]
            source = (slice(start[0] + first, start[0] + last), *rest)
            reads.append((self.plain, source, (slice(first, last),)))
            run.clear()

        for chunk_row in sorted(rows):
            parts = rows[chunk_row]
            if all(part[4] for part in parts):
                run.append(parts[0][1][0])
                continue
            flush()
            for coords, positions, local, where, _ in parts:
                lo = [int(idx[0]) for idx in local]
                hi = [int(idx[-1]) + 1 for idx in local]
                found = self._stored_part(coords, lo, hi, where)
                if found is not None and found[2] == tuple(hi):
                    # Straight into the box: no array of its own, no second copy.
                    reads.append((found[0], found[1], tuple(positions)))
                else:
                    regions.append((positions, coords, lo, hi, where))
        flush()
        with expecting_all([(dataset, source) for dataset, source, _ in reads]):
            for dataset, source, dest in reads:
                dataset.read_direct(box, source, dest)
        for positions, coords, lo, hi, where in regions:
            box[tuple(positions)] = self.read_region(coords, lo, hi, where)
        return True

    def _source(self, coords: Coords) -> Source | None:
        """Where chunk ``coords`` can be read by one HDF5 call (None: fill values, a stub's
        placeholder or a lost patch, which the general path handles). Kept per committed view."""
        where = self.locate(coords)
        ref = where.ref
        found: Source | None = None
        if ref is not None and ref.slot != PLAIN_SLOT:
            shift = (ref.slot - coords[0]) * self.chunks[0]
            found = Source(self.stored(ref.level), shift, where.clip)
        elif ref is not None and ref.level == self.plain_level and self.plain_readable:
            found = Source(self.plain, 0, _min_shape(where.clip, self.plain_shape))
        if self._tail is None:
            self._sources[coords] = found
        return found

    def _read_in_one_chunk(self, selection: Any) -> Any:
        """Fast path: integers and step-1 slices inside one visible chunk, read by one HDF5
        call from the container holding it (None when the selection is not that simple)."""
        shape = self.shape
        if type(selection) is slice and len(shape) == 1:
            return self._read_slice_1d(selection)
        items = selection if type(selection) is tuple else (selection,)
        if len(items) != len(shape):
            return None
        coords: list[int] = []
        bounds: list[tuple[int, int, bool]] = []
        for item, length, size in zip(items, shape, self.chunks, strict=True):
            if type(item) is slice:
                if item.step is not None and item.step != 1:
                    return None
                start, stop, _ = item.indices(length)
                if stop <= start or start // size != (stop - 1) // size:
                    return None
                bounds.append((start, stop, False))
            elif isinstance(item, (int, np.integer)) and -length <= item < length:
                start = int(item) % length
                bounds.append((start, start + 1, True))
            else:
                return None
            coords.append(start // size)
        key = tuple(coords)
        found = self._sources.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            found = self._source(key)
        if found is None:
            return None
        assert isinstance(found, Source)
        sel: list[Any] = []
        shift = found.shift
        for (start, stop, scalar), edge in zip(bounds, found.limit, strict=True):
            if stop > edge:
                return None
            sel.append(start + shift if scalar else slice(start + shift, stop + shift))
            shift = 0
        return found.dataset[tuple(sel)]

    def _read_slice_1d(self, item: slice) -> Any:
        """The fast path for the commonest read, a step-1 slice of a 1-D dataset."""
        if item.step is not None and item.step != 1:
            return None
        start, stop, _ = item.indices(self.shape[0])
        size = self.chunks[0]
        chunk = start // size
        if stop <= start or chunk != (stop - 1) // size:
            return None
        found = self._sources.get((chunk,), _UNKNOWN)
        if found is _UNKNOWN:
            found = self._source((chunk,))
        if found is None:
            return None
        assert isinstance(found, Source)
        if stop > found.limit[0]:
            return None
        return found.dataset[(slice(start + found.shift, stop + found.shift),)]

    def read(self, selection: Any) -> Any:
        """Read ``selection`` with h5py's semantics (result shape, scalars, fields)."""
        fast = self._read_in_one_chunk(selection)
        if fast is not None:
            return fast
        chosen = normalize(selection, self.shape)
        box = self._read_box(chosen)
        result = box[chosen.mask] if chosen.mask is not None else box.reshape(chosen.shape)
        if chosen.fields:
            result = (
                result[chosen.fields[0]] if len(chosen.fields) == 1 else result[list(chosen.fields)]
            )
        return result[()] if result.ndim == 0 else result

    # --- writing -----------------------------------------------------------

    def prepare(self, selection: Any, value: Any) -> PreparedWrite:
        """Check a write before anything changes: the selection and the value's shape."""
        chosen = normalize(selection, self.shape)
        if chosen.fields:
            raise TypeError(
                f"{self.plain.name!r}: writing single fields of a compound dataset of an "
                "older patch is not supported; write whole elements"
            )
        array = np.asarray(value, dtype=self.dtype)
        if chosen.mask is not None:
            flat = np.broadcast_to(array, chosen.shape)
            return PreparedWrite(chosen, np.array(flat))
        try:
            shaped = np.broadcast_to(array, chosen.shape).reshape(chosen.box_shape)
        except ValueError as exc:
            raise TypeError(
                f"can't broadcast {array.shape} -> {chosen.shape} for {self.plain.name!r}"
            ) from exc
        return PreparedWrite(chosen, shaped)

    def chunk_bytes(self) -> int:
        """An upper bound of the disk space one stored chunk takes (variable-length items:
        a guess; each chunk is reserved exactly again when it is written)."""
        itemsize = self.dtype.itemsize + (32 if self.dtype.hasobject else 0)
        return int(np.prod(self.chunks)) * itemsize + CHUNK_OVERHEAD

    def storage_bound(self) -> int:
        """An upper bound of the disk space the current values take as a plain dataset."""
        visible = sum(1 for coords in self.grid() if self.locate(coords).ref is not None)
        return visible * self.chunk_bytes() + CHUNK_OVERHEAD

    def touched_bytes(self, selection: Selection) -> int:
        """Disk space the chunks ``selection`` touches may take (what a write may store)."""
        count = 1
        for axis, size in zip(selection.axes, self.chunks, strict=True):
            if not len(axis):
                return 0
            if isinstance(axis, range) and axis.step == 1:
                count *= (axis.stop - 1) // size - axis.start // size + 1
            else:
                count *= len(np.unique(as_array(axis) // size))
        return count * self.chunk_bytes()

    def write(self, prepared: PreparedWrite, delta: DeltaWriter) -> None:
        """Apply ``prepared`` chunk by chunk into ``delta`` (the open patch's delta)."""
        chosen = prepared.selection
        # The whole write fits before any chunk changes (each store checks again).
        delta.reserve(self.touched_bytes(chosen))
        known = self._known_hashes(delta)
        rank: np.ndarray[Any, Any] | None = None
        if chosen.mask is not None:
            rank = np.cumsum(chosen.mask.ravel()).reshape(chosen.mask.shape) - 1
        for coords, positions, local in self._touched(chosen):
            where = self.locate(coords)
            origin = self.origin(coords)
            valid = [
                min(c, n - o) for c, n, o in zip(self.chunks, self.shape, origin, strict=False)
            ]
            covered = chosen.mask is None and all(
                len(idx) == v for idx, v in zip(local, valid, strict=False)
            )
            old = None if covered else self.chunk_buffer(coords, where)
            buffer = self._blank(self.chunks) if old is None else old.copy()
            if rank is not None and chosen.mask is not None:
                sub_mask = chosen.mask[tuple(positions)]
                sub_rank = rank[tuple(positions)][sub_mask]
                where_in = np.ix_(*[as_array(idx) for idx in local])
                target = buffer[where_in]
                target[sub_mask] = prepared.value[sub_rank]
                buffer[where_in] = target
            else:
                buffer[_within(local)] = prepared.value[tuple(positions)]
            self._keep(coords, where, old, buffer, delta, known)

    def hide_beyond(self, shape: tuple[int, ...], delta: DeltaWriter) -> None:
        """Before shrinking to ``shape``: blank what this patch's own chunks hold beyond it.

        Older chunks need nothing: the delta's floor hides them. The patch's own
        ones must not reappear when the dataset grows again within the patch.
        """
        cut: list[Coords] = []
        for coords in list(delta.facts.rows):
            origin = self.origin(coords)
            if not all(o + c <= n for o, c, n in zip(origin, self.chunks, shape, strict=True)):
                cut.append(coords)
        delta.reserve(len(cut) * self.chunk_bytes())
        for coords in cut:
            origin = self.origin(coords)
            if any(o >= n for o, n in zip(origin, shape, strict=True)):
                delta.point(coords, ChunkRef(delta.level, FILL_SLOT))
                continue
            where = self.locate(coords)
            old = self.chunk_buffer(coords, where)
            buffer = old.copy()
            for axis, (o, n) in enumerate(zip(origin, shape, strict=True)):
                index: list[slice] = [slice(None)] * buffer.ndim
                index[axis] = slice(max(0, n - o), None)
                buffer[tuple(index)] = self.fill
            self._keep(coords, where, old, buffer, delta, self._known_hashes(delta))

    def _known_hashes(self, delta: DeltaWriter) -> dict[bytes, ChunkRef]:
        """Digest -> a chunk of another patch holding those bytes (committed deltas: kept)."""
        if self._tail is not None and self._tail[0] == delta.level:
            memo = self._memo
            if memo.known is None:
                memo.known = _hashes_of(self._base, delta.level)
            return memo.known
        return _hashes_of(self.deltas, delta.level)

    def _keep(
        self,
        coords: Coords,
        where: Located,
        old: np.ndarray[Any, Any] | None,
        buffer: np.ndarray[Any, Any],
        delta: DeltaWriter,
        known: dict[bytes, ChunkRef],
    ) -> None:
        """Store ``buffer`` as chunk ``coords`` unless an equal chunk is already kept."""
        digest = chunk_digest(buffer)
        if old is not None and chunk_digest(old) == digest:
            return
        own = delta.facts.hashes.get(digest)
        if own is not None:
            delta.point(coords, ChunkRef(delta.level, own))
            return
        if digest in known:
            delta.point(coords, known[digest])
            return
        # When the old values were read from plain storage and differ, so does the plain chunk.
        plain_read = old is not None and where.ref is not None and where.ref.slot == PLAIN_SLOT
        inside = all(o < n for o, n in zip(self.origin(coords), self.plain_shape, strict=False))
        if self.plain_readable and inside and not plain_read:
            plain = self.read_region(
                coords,
                (0,) * len(self.chunks),
                self.chunks,
                Located(ChunkRef(self.plain_level, PLAIN_SLOT), self.plain_shape),
            )
            if chunk_digest(plain) == digest:
                delta.point(coords, ChunkRef(self.plain_level, PLAIN_SLOT))
                return
        delta.store(coords, buffer, digest)


def _hashes_of(deltas: Sequence[tuple[int, DeltaFacts]], skip: int) -> dict[bytes, ChunkRef]:
    """Digest -> where those bytes are stored, over ``deltas`` but the one of patch ``skip``."""
    known: dict[bytes, ChunkRef] = {}
    for level, facts in deltas:
        if level == skip:
            continue
        for digest, slot in facts.hashes.items():
            known[digest] = ChunkRef(level, slot)
    return known


def _missing(name: str, level: int) -> IntegrityError:
    return IntegrityError(
        f"{name!r} reuses a chunk of patch {level}, which this chain does not hold "
        "(merged away?); open the record with all its containers",
        name,
    )


def _within(local: Sequence[Axis]) -> tuple[Any, ...]:
    """Index a chunk buffer at ``local``: slices for runs, ``np.ix_`` when any axis has gaps."""
    if all(is_contiguous(idx) and len(idx) for idx in local):
        return tuple(slice(int(idx[0]), int(idx[-1]) + 1) for idx in local)
    return np.ix_(*[as_array(idx) for idx in local])


def _raw_copy_allowed(view: ChunkedDataset, coords: Coords, where: Located) -> bool:
    """The stored bytes of the source chunk can be copied as they are (same filters)."""
    assert where.ref is not None
    limit = where.clip
    if where.ref.slot == PLAIN_SLOT:
        limit = _min_shape(limit, view.plain.shape)
    origin = view.origin(coords)
    return not view.dtype.hasobject and all(
        min(c, o + n) >= min(s, o + n)
        for c, o, n, s in zip(limit, origin, view.chunks, view.shape, strict=False)
    )


def write_plain(
    parent: h5py.Group,
    name: str,
    view: ChunkedDataset,
    reserve: Callable[[int], None] | None = None,
) -> h5py.Dataset:
    """Write ``view``'s current values as a plain dataset ``parent[name]``.

    Chunk shape, filters, fill value, type and maxshape are those of the plain
    storage; chunks whose stored bytes are visible as they are get copied
    without decoding, chunks showing only the fill value are not written.
    ``reserve(n)`` is called before each write of ``n`` bytes (a ``Room``'s ensure).
    """
    if reserve is None:
        reserve = _no_reservation
    reserve(CHUNK_OVERHEAD)
    maxshape = tuple(h5py.h5s.UNLIMITED if n is None else n for n in view.plain.maxshape)
    space = h5py.h5s.create_simple(view.shape, maxshape)
    h5py.h5d.create(
        parent.id,
        name.encode(),
        view.plain.id.get_type(),
        space,
        dcpl=view.plain.id.get_create_plist(),
    )
    out = parent[name]
    for coords in view.grid():
        where = view.locate(coords)
        ref = where.ref
        if ref is None:
            continue
        origin = view.origin(coords)
        if _raw_copy_allowed(view, coords, where):
            if ref.slot == PLAIN_SLOT:
                if ref.level != view.plain_level:
                    raise _missing(view.plain.name, ref.level)
                source, offset = view.plain, origin
            else:
                source = view.stored(ref.level)
                offset = (ref.slot * view.chunks[0], *(0,) * (len(origin) - 1))
            info = source.id.get_chunk_info_by_coord(offset)
            if info.byte_offset is None:
                continue
            mask, raw = source.id.read_direct_chunk(offset)
            reserve(len(raw) + CHUNK_OVERHEAD)
            out.id.write_direct_chunk(origin, raw, mask)
            continue
        buffer = view.chunk_buffer(coords, where)
        valid = tuple(
            slice(0, min(n, s - o))
            for n, s, o in zip(view.chunks, view.shape, origin, strict=False)
        )
        values = buffer[valid]
        reserve(buffer_bytes(values) + CHUNK_OVERHEAD)
        out[tuple(slice(o, o + v.stop) for o, v in zip(origin, valid, strict=False))] = values
    return out


def _no_reservation(nbytes: int) -> None:
    """For files whose disk space nobody reserves (tests, scratch files)."""
