"""Reading remote chunked datasets by runs of chunks, not chunk by chunk.

HDF5 reads a chunked dataset one chunk at a time; over a network each chunk would
cost a request. Before such a read, the chunks the selection touches are looked
up in the dataset's chunk index and their byte ranges handed to the container's
reader (:class:`ih5.store.RangeReader`), which then fetches each run of adjacent
chunks by one request. When the selected rows are stored as plain bytes
(unfiltered chunks of whole rows, as h5py and ``ih5 pack`` write them), their
runs are streamed straight into the result by one request (index nodes between
them are skipped), as HDF5 reads a contiguous dataset. Local files have no
reader, and their reads pay one dictionary lookup.
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

from ih5.record._selection import Selection, as_array, normalize
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
    expected: dict[RangeReader, list[tuple[int, int]]] = {}
    for dataset, selection in reads:
        reader = READERS.get(dataset.id.fileno)
        if reader is not None:
            expected.setdefault(reader, []).extend(chunk_spans(dataset, selection))
    told = [reader for reader, spans in expected.items() if spans]
    for reader in told:
        reader.expect(expected[reader])
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


PLAIN_KINDS = frozenset("biufcS")
"""Element kinds whose bytes in the file are the array's bytes (no references, no
variable length; compound types may be laid out differently, so they go to HDF5)."""


def read_end_to_end(dataset: h5py.Dataset, selection: Any) -> Any:
    """The values of ``selection`` read straight into the result, when ``dataset`` is a
    remote chunked dataset whose selected rows are stored as plain bytes; else None."""
    reader = READERS.get(dataset.id.fileno) if READERS else None
    if reader is None:
        return None
    found = _byte_runs(dataset, selection)
    if found is None:
        return None
    chosen, runs = found
    out = np.empty(chosen.box_shape, dtype=dataset.dtype)
    view = memoryview(out.data).cast("B")
    if not reader.read_runs([(offset, view[at : at + size]) for offset, at, size in runs]):
        return None  # the file ends early: HDF5 says how it is damaged
    result = out.reshape(chosen.shape)
    return result[()] if result.ndim == 0 else result


def _byte_runs(
    dataset: h5py.Dataset, selection: Any
) -> tuple[Selection, list[tuple[int, int, int]]] | None:
    """The normalized selection and where its rows' bytes are: (file offset, offset in the
    result, length) per run of chunks stored end to end, in file order; None when they are
    not plain bytes (filters, types HDF5 converts, chunks that split rows, unwritten chunks)."""
    chunks, shape, dtype = dataset.chunks, dataset.shape, dataset.dtype
    if chunks is None or not shape or dtype.kind not in PLAIN_KINDS or dtype.fields:
        return None
    dsid = dataset.id
    if dsid.get_type().get_size() != dtype.itemsize:
        return None
    if tuple(chunks[1:]) != tuple(shape[1:]) or dsid.get_create_plist().get_nfilters():
        return None
    try:
        chosen = normalize(selection, tuple(shape))
    except (IndexError, ValueError, TypeError):
        return None
    rows, rest = chosen.axes[0], chosen.axes[1:]
    if chosen.mask is not None or chosen.fields or not isinstance(rows, range):
        return None
    if rows.step != 1 or not len(rows):
        return None
    if any(axis != range(n) for axis, n in zip(rest, shape[1:], strict=True)):
        return None
    row_bytes = dtype.itemsize * math.prod(shape[1:])
    chunk_bytes = chunks[0] * row_bytes
    zeros = (0,) * (len(shape) - 1)
    runs: list[tuple[int, int, int]] = []
    for index in range(rows.start // chunks[0], (rows.stop - 1) // chunks[0] + 1):
        info = dsid.get_chunk_info_by_coord((index * chunks[0], *zeros))
        if info.byte_offset is None or info.size != chunk_bytes:
            return None
        low = max(rows.start, index * chunks[0])
        high = min(rows.stop, (index + 1) * chunks[0])
        offset = info.byte_offset + (low - index * chunks[0]) * row_bytes
        at, size = (low - rows.start) * row_bytes, (high - low) * row_bytes
        last = runs[-1] if runs else None
        if last is not None and last[0] + last[2] == offset and last[1] + last[2] == at:
            runs[-1] = (last[0], last[1], last[2] + size)
        else:
            runs.append((offset, at, size))
    return chosen, sorted(runs)


def _touched(axis: range | np.ndarray[Any, Any], size: int) -> list[int]:
    """The chunk indices along one axis that the selected indices fall in."""
    if isinstance(axis, range) and (axis.step <= size or len(axis) <= 1):
        if not len(axis):
            return []
        return list(range(axis[0] // size, axis[-1] // size + 1))
    return [int(index) for index in np.unique(as_array(axis) // size)]
