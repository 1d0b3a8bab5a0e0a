"""h5py's selection rules, as index arrays per axis, for datasets assembled from chunks.

h5py accepts integers, slices with a positive step, one increasing list or
array of indices, a boolean mask over the whole dataset (or one axis), an
Ellipsis, and field names of a compound type. A selection becomes one sorted
index array per axis, so the chunks it touches and where each chunk's part
lands in the result are plain arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

IntArray = np.ndarray[Any, np.dtype[np.intp]]
Axis = range | IntArray
"""Selected indices along one axis: a ``range`` for integers and slices (cheap however
long), an increasing array for index lists and masks."""


def as_array(axis: Axis) -> IntArray:
    """The indices of ``axis`` as an array."""
    if isinstance(axis, range):
        return np.arange(axis.start, axis.stop, axis.step, dtype=np.intp)
    return axis


def is_contiguous(axis: Axis) -> bool:
    """True when ``axis`` is one run of consecutive indices (or empty)."""
    if isinstance(axis, range):
        return axis.step == 1 or len(axis) <= 1
    return len(axis) == 0 or int(axis[-1]) - int(axis[0]) + 1 == len(axis)


@dataclass(frozen=True)
class Selection:
    """A normalized selection: one increasing index array per axis."""

    axes: tuple[Axis, ...]
    """Indices selected along each axis, increasing."""
    scalar: tuple[bool, ...]
    """Axes selected by an integer (dropped from the result's shape)."""
    mask: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    """For a boolean mask over the whole dataset: the mask over the box ``axes`` span."""
    fields: tuple[str, ...] = ()

    @property
    def box_shape(self) -> tuple[int, ...]:
        """Shape of the box of all selected indices (before dropping or masking)."""
        return tuple(len(axis) for axis in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the result, as h5py returns it."""
        if self.mask is not None:
            return (int(np.count_nonzero(self.mask)),)
        return tuple(
            len(axis) for axis, dropped in zip(self.axes, self.scalar, strict=False) if not dropped
        )

    @property
    def is_box(self) -> bool:
        """True when every axis is one contiguous range (a hyperslab with step 1)."""
        return self.mask is None and all(is_contiguous(axis) for axis in self.axes)


def _integer(value: Any, length: int, axis: int) -> range:
    index = int(value)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {int(value)} out of range for axis {axis} with size {length}")
    return range(index, index + 1)


def _slice(value: slice, length: int) -> range:
    if value.step is not None and value.step < 1:
        raise ValueError(f"step must be >= 1 (got {value.step})")
    return range(*value.indices(length))


def _indices(value: Any, length: int, axis: int) -> IntArray:
    array = np.asarray(value)
    if array.dtype == np.bool_:
        if array.shape != (length,):
            raise TypeError(f"boolean index of shape {array.shape} does not fit axis {axis}")
        return np.flatnonzero(array).astype(np.intp)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise TypeError("an index list must be one-dimensional and hold integers")
    indices = array.astype(np.intp)
    indices = np.where(indices < 0, indices + length, indices)
    if indices.size and (indices.min() < 0 or indices.max() >= length):
        raise IndexError(f"index list out of range for axis {axis} with size {length}")
    if indices.size > 1 and np.any(np.diff(indices) <= 0):
        raise TypeError("indexing elements must be in increasing order")
    return indices


def normalize(selection: Any, shape: tuple[int, ...]) -> Selection:
    """Turn an h5py selection for a dataset of ``shape`` into a :class:`Selection`."""
    items = list(selection) if isinstance(selection, tuple) else [selection]
    fields = tuple(item for item in items if isinstance(item, str))
    items = [item for item in items if not isinstance(item, str)]
    whole_mask = len(items) == 1 and isinstance(items[0], np.ndarray)
    if whole_mask and items[0].dtype == np.bool_ and items[0].shape == shape and len(shape) != 1:
        mask = items[0]
        box = tuple(
            np.flatnonzero(mask.any(axis=tuple(d for d in range(len(shape)) if d != axis))).astype(
                np.intp
            )
            for axis in range(len(shape))
        )
        return Selection(box, (False,) * len(shape), mask[np.ix_(*box)], fields)
    if any(item is Ellipsis for item in items):
        if sum(item is Ellipsis for item in items) > 1:
            raise ValueError("only one Ellipsis is allowed in a selection")
        at = next(n for n, item in enumerate(items) if item is Ellipsis)
        fill = [slice(None)] * (len(shape) - len(items) + 1)
        items = items[:at] + fill + items[at + 1 :]
    if len(items) > len(shape):
        raise ValueError(f"{len(items)} indices for a dataset with {len(shape)} dimensions")
    items += [slice(None)] * (len(shape) - len(items))
    axes: list[Axis] = []
    scalar: list[bool] = []
    fancy = 0
    for axis, (item, length) in enumerate(zip(items, shape, strict=False)):
        if isinstance(item, slice):
            axes.append(_slice(item, length))
            scalar.append(False)
        elif isinstance(item, (int, np.integer)):
            axes.append(_integer(item, length, axis))
            scalar.append(True)
        else:
            fancy += 1
            if fancy > 1:
                raise TypeError("only one indexing vector or array is allowed for fancy indexing")
            axes.append(_indices(item, length, axis))
            scalar.append(False)
    return Selection(tuple(axes), tuple(scalar), None, fields)
