"""The patch markers inside a container's HDF5 tree (FORMAT.md section 4).

A deletion is a dataset or attribute holding the 1-byte opaque value 0x7F; a
substituting group carries the attribute ``"\\x1a"`` (NULL-dataspace float64).
Groups without it are virtual: they only carry changes. User data that would
read as a marker is refused.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from ih5.errors import InvalidKeyError, ReservedValueError

DEL_VALUE = np.void(b"\x7f")
SUBST_ATTR = "\x1a"

_DEL_BYTES = DEL_VALUE.tobytes()


def _is_marker_dtype(dtype: np.dtype[Any], shape: tuple[int, ...] | None) -> bool:
    return dtype.kind == "V" and dtype.itemsize == 1 and dtype.fields is None and shape == ()


def is_deletion_marker(value: object) -> bool:
    """Tell whether a dataset or attribute value is the deletion marker.

    Datasets are judged by dtype and shape first, so a large dataset is never read.
    """
    if isinstance(value, h5py.Dataset):
        return _is_marker_dtype(value.dtype, value.shape) and value[()].tobytes() == _DEL_BYTES
    if isinstance(value, (np.void, np.ndarray)):
        return _is_marker_dtype(value.dtype, value.shape) and value.tobytes() == _DEL_BYTES
    return False


def is_substituting(group: h5py.Group) -> bool:
    """Tell whether a group replaces everything older containers hold at its path."""
    return SUBST_ATTR in group.attrs


def mark_substituting(group: h5py.Group) -> None:
    """Make ``group`` substituting, with the value metador-core writes (empty float64)."""
    group.attrs[SUBST_ATTR] = h5py.Empty("f8")


def write_deletion_marker(group: h5py.Group, name: str) -> None:
    """Record in a patch that member ``name`` of ``group`` is deleted (replacing the member)."""
    if name in group:
        del group[name]
    group.create_dataset(name, data=DEL_VALUE)


def write_attr_deletion_marker(attrs: h5py.AttributeManager, name: str) -> None:
    """Record in a patch that attribute ``name`` is deleted."""
    attrs[name] = DEL_VALUE


def check_user_value(value: object, *, path: str | None = None) -> None:
    """Refuse a user value equal to the deletion marker: it would read back as a deletion."""
    if is_deletion_marker(value):
        where = f" at {path}" if path is not None else ""
        raise ReservedValueError(
            f"cannot store the value{where}: a scalar 1-byte opaque 0x7F is the IH5 deletion "
            "marker and would read back as a deletion; store it as np.uint8(0x7F) instead",
            path,
        )


def check_attr_name(name: str, *, path: str | None = None) -> None:
    """Refuse the attribute name ``"\\x1a"``, reserved for marking substituting groups,
    and names with a NUL character, which HDF5 would silently cut there."""
    if isinstance(name, str) and "\x00" in name:
        where = f" on {path}" if path is not None else ""
        raise InvalidKeyError(
            f"attribute name {name!r}{where} is not allowed: HDF5 cuts names at a NUL "
            "character; choose a name without one",
            path,
        )
    if name == SUBST_ATTR:
        where = f" on {path}" if path is not None else ""
        raise InvalidKeyError(
            f"attribute name '\\x1a'{where} is reserved by the IH5 format for substituting "
            "groups; choose another name",
            path,
        )
