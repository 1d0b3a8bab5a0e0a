"""Disk space reserved ahead of HDF5 for a container being written.

HDF5 (2.0) defers many writes and crashes the interpreter when a deferred
write meets a full disk (in a flush, a close or an object's release). So ih5
never lets HDF5 meet one: before every write into a container it makes sure
the file already owns the disk blocks that write can need (``fallocate`` past
the end of the file). A full disk then raises ``DiskFullError`` before HDF5
is touched, and the container stays usable: free space and repeat the call.
HDF5 trims the file to its real size when it closes it.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from ih5.fs import reserve_space, storage_error

MARGIN = 64 * 1024
"""Room kept free past the file's end for metadata HDF5 writes with a change."""
FIRST_STEP = 256 * 1024
"""The room reserved ahead of the first write: small, because the room a patch did not
use is given back at close, and freeing reserved blocks costs time (3 ms for 4 MiB on
ext4, 0.15 ms for 128 KiB, measured here)."""
STEP = 4 * 1024 * 1024
"""Later reservations double up to steps this large, so that most writes need no syscall."""


class Room:
    """The reserved disk space of one HDF5 file open for writing."""

    def __init__(self, file: h5py.File, doing: str) -> None:
        self.file = file
        self.doing = doing
        self._reserved = 0

    def _end(self) -> int:
        """Where HDF5's file currently ends (its allocated address space included)."""
        size: int = self.file.id.get_filesize()
        return size

    def ensure(self, nbytes: int) -> None:
        """Make sure ``nbytes`` more (plus metadata room) fit before HDF5 writes them."""
        need = self._end() + max(nbytes, 0) + MARGIN
        if need <= self._reserved:
            return
        fd = self.file.id.get_vfd_handle()
        assert isinstance(fd, int)
        try:
            step = min(STEP, max(FIRST_STEP, self._reserved))
            ahead = need + max(step, need // 8)
            try:
                reserve_space(fd, ahead)
                self._reserved = ahead
            except OSError:
                # Near a full disk the step may not fit where the write itself does.
                reserve_space(fd, need)
                self._reserved = need
        except OSError as exc:
            typed = storage_error(exc, os.path.dirname(self.file.filename), self.doing)
            if typed is None:
                raise
            raise typed from exc

    def close(self) -> None:
        """Flush into reserved room, close, and give back the room HDF5 did not use.

        After a flush HDF5's own idea of the file's end is exact (it does not see
        the blocks reserved past it), so the file is cut there once closed.
        """
        if not self.file.id.valid:
            return  # closed already (a failed commit closed it before sealing)
        self.ensure(self._end() // 64)
        self.file.flush()
        end = self._end()
        path = self.file.filename
        self.file.close()
        if os.path.getsize(path) > end:
            os.truncate(path, end)

    def close_discarded(self) -> None:
        """Close a file about to be deleted, even on a full disk.

        Without room for the final flush, the file's blocks are freed first
        (its content no longer matters), so that HDF5 can write what it must.
        """
        if not self.file.id.valid:
            return
        try:
            self.ensure(self._end() // 64)
        except OSError:
            os.truncate(self.file.filename, 0)
        self.file.close()


def value_bytes(value: Any) -> int:
    """An upper bound of the bytes HDF5 stores for ``value`` (0 when unknown)."""
    if isinstance(value, (bytes, str)):
        return len(value) * 4
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return int(nbytes)
    try:
        return int(np.asarray(value).nbytes)
    except (ValueError, TypeError):
        return 0


def write_bytes(dataset: h5py.Dataset, value: Any) -> int:
    """An upper bound of the new disk space a write of ``value`` into ``dataset`` needs."""
    itemsize = int(dataset.dtype.itemsize)
    total = int(dataset.size) * itemsize
    if dataset.chunks is None:
        # Contiguous storage is allocated whole on the first write.
        return total if dataset.id.get_storage_size() == 0 else 0
    chunk = itemsize
    for extent in dataset.chunks:
        chunk *= int(extent)
    touched = max(1, value_bytes(value) // max(itemsize, 1))
    return min(total + chunk, touched * chunk)


def create_bytes(kwargs: dict[str, Any]) -> int:
    """An upper bound of the disk space ``create_dataset(**kwargs)`` takes at once."""
    if kwargs.get("data") is not None:
        return value_bytes(kwargs["data"])
    shape = kwargs.get("shape")
    if kwargs.get("chunks") is not None or kwargs.get("maxshape") is not None or shape is None:
        return 0
    count = 1
    for extent in (shape,) if isinstance(shape, int) else shape:
        count *= int(extent)
    return count * int(np.dtype(kwargs.get("dtype", "f4")).itemsize)
