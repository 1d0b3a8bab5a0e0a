"""Turning the operating system's refusals into typed errors that name the location.

A full disk, a read-only mount or a permission problem can surface from any
write: from Python, or from HDF5 (whose errors carry the errno only in their
text). Each becomes one typed error that is still an ``OSError`` with the
right ``errno``, names the location, and says what to do.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from ih5.errors import (
    DiskFullError,
    Ih5Error,
    LocationPermissionError,
    ReadOnlyLocationError,
    StorageError,
)

_HDF5_ERRNO = re.compile(r"errno = (\d+)")

_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS,)
_DENIED = (errno.EACCES, errno.EPERM)


def os_errno(exc: BaseException) -> int | None:
    """The errno behind an OSError, or behind an HDF5 error that quotes one."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        return code
    if isinstance(exc, (OSError, RuntimeError)):
        match = _HDF5_ERRNO.search(str(exc))
        if match is not None:
            return int(match[1])
    return None


def storage_error(
    exc: BaseException, where: str | os.PathLike[str], doing: str
) -> StorageError | None:
    """The typed error for a full disk, a read-only mount or a refusal; None for others."""
    if isinstance(exc, Ih5Error):
        return None
    code = os_errno(exc)
    location = os.fspath(where)
    if code in _FULL:
        return DiskFullError(
            f"no space left in {location} while {doing}: nothing was published; "
            "free some space and run the same call again",
            location,
            code,
        )
    if code in _READ_ONLY:
        return ReadOnlyLocationError(
            f"{location} is on a read-only filesystem and {doing} has to write there; "
            "copy the record to a writable place, or remount it read-write",
            location,
            code,
        )
    if code in _DENIED:
        return LocationPermissionError(
            f"permission denied in {location} while {doing}; check the owner and mode of "
            "the directory and its files (ls -la), or run as a user who may write there",
            location,
            code,
        )
    return None


@contextmanager
def typed_storage_errors(where: str | os.PathLike[str], doing: str) -> Iterator[None]:
    """Re-raise a full disk, a read-only mount or a refusal inside the block as a typed error."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        typed = storage_error(exc, where, doing)
        if typed is None:
            raise
        raise typed from exc


def reserve_space(fd: int, end: int) -> None:
    """Make sure the file ``fd`` has disk blocks up to offset ``end`` (raises ENOSPC if not).

    Only the part past the current end of the file is allocated, so nothing the
    file holds is touched; a filesystem without ``fallocate`` is left as it is.
    """
    size = os.fstat(fd).st_size
    if end <= size:
        return
    try:
        os.posix_fallocate(fd, size, end - size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return
        raise
