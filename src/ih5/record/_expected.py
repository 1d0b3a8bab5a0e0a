"""Tell a remote container's reader which bytes a chunked dataset read will cover.

HDF5 reads a chunked dataset one chunk at a time; over a network each chunk would
cost a request. Before such a read, the chunks the selection touches are looked
up in the dataset's chunk index and their byte ranges handed to the container's
reader (:class:`ih5.store.RangeReader`), which then fetches each run of adjacent
chunks by one request. Local files have no reader, and their reads pay one
dictionary lookup.
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import h5py
import numpy as np

from ih5.record._selection import as_array, normalize
from ih5.store import RangeReader

READERS: weakref.WeakValueDictionary[tuple[int, int], RangeReader] = weakref.WeakValueDictionary()
"""HDF5's number of each open remote container -> the reader it reads through."""

SCAN_FRACTION = 4
"""Look chunks up one by one when fewer than 1/this of a dataset's chunks are touched;
otherwise walk the whole chunk index once, which is cheaper per chunk."""


def remember_reader(file: h5py.File, reader: RangeReader) -> None:
    """Note that ``file`` reads through ``reader`` (kept as long as the reader lives)."""
    READERS[file.id.fileno] = reader


def expecting(dataset: h5py.Dataset, selection: Any) -> AbstractContextManager[None]:
    """Around a read of ``selection``: a remote chunked dataset's reader knows its chunks."""
    return expecting_all([(dataset, selection)])


@contextmanager
def expecting_all(reads: Sequence[tuple[h5py.Dataset, Any]]) -> Iterator[None]:
    """Around reads of (dataset, selection) pairs, from one container or several: each
    remote container's reader knows every chunk it will be asked for."""
    if not READERS:
        yield
        return
    expected: dict[int, tuple[RangeReader, list[tuple[int, int]]]] = {}
    for dataset, selection in reads:
        reader = READERS.get(dataset.id.fileno)
        if reader is not None:
            entry = expected.setdefault(id(reader), (reader, []))
            entry[1].extend(chunk_spans(dataset, selection))
    told = [reader for reader, spans in expected.values() if spans]
    for reader in told:
        reader.expect(expected[id(reader)][1])
    try:
        yield
    finally:
        for reader in told:
            reader.expect(())


def chunk_spans(dataset: h5py.Dataset, selection: Any) -> list[tuple[int, int]]:
    """The byte ranges ``[start, end)`` of the stored chunks ``selection`` touches (empty
    for contiguous datasets and for selections h5py itself will refuse)."""
    chunks = dataset.chunks
    shape = dataset.shape
    if chunks is None or not shape:
        return []
    try:
        chosen = normalize(selection, tuple(shape))
    except (IndexError, ValueError, TypeError):
        return []
    per_axis = [_touched(axis, size) for axis, size in zip(chosen.axes, chunks, strict=True)]
    count = math.prod(len(indices) for indices in per_axis)
    if count == 0:
        return []
    dsid = dataset.id
    total = dsid.get_num_chunks()
    spans: list[tuple[int, int]] = []
    if count * SCAN_FRACTION < total:
        for coords in itertools.product(*per_axis):
            offset = tuple(index * size for index, size in zip(coords, chunks, strict=True))
            info = dsid.get_chunk_info_by_coord(offset)
            if info.byte_offset is not None:
                spans.append((info.byte_offset, info.byte_offset + info.size))
        return spans
    wanted = [set(indices) for indices in per_axis]

    def visit(info: h5py.h5d.StoreInfo) -> None:
        coords = (start // size for start, size in zip(info.chunk_offset, chunks, strict=True))
        if all(index in keep for index, keep in zip(coords, wanted, strict=True)):
            spans.append((info.byte_offset, info.byte_offset + info.size))

    dsid.chunk_iter(visit)
    return spans


def _touched(axis: range | np.ndarray[Any, Any], size: int) -> list[int]:
    """The chunk indices along one axis that the selected indices fall in."""
    if isinstance(axis, range) and (axis.step <= size or len(axis) <= 1):
        if not len(axis):
            return []
        return list(range(axis[0] // size, axis[-1] // size + 1))
    return [int(index) for index in np.unique(as_array(axis) // size)]
