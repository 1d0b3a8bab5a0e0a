"""The one exception hierarchy of ih5.

Every error carries the path it is about (``path``, may be ``None``) and a
message that says what to do next. Each concrete error also subclasses the
builtin a caller would naturally catch, and every error pickles, because
errors cross process boundaries in multi-process packing.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Any, ClassVar


class Ih5Error(Exception):
    """Base class of every error ih5 raises on purpose."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path) if path is not None else None

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.path))


# --- fs floor -------------------------------------------------------------


class StorageError(Ih5Error, OSError):
    """The filesystem refused what ih5 had to do there; ``errno`` says why."""

    default_errno: ClassVar[int] = _errno.EIO

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, code: int | None = None
    ) -> None:
        super().__init__(message, path)
        self.errno = self.default_errno if code is None else code
        self.strerror = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.path, self.errno))


class DiskFullError(StorageError):
    """No space left on the device (or the quota is used up): free some and retry."""

    default_errno = _errno.ENOSPC


class ReadOnlyLocationError(StorageError):
    """The location is on a read-only filesystem."""

    default_errno = _errno.EROFS


class LocationPermissionError(StorageError, PermissionError):
    """The operating system refused access to the location."""

    default_errno = _errno.EACCES


class FileLockError(Ih5Error, OSError):
    """A lock could not be taken or released."""


class FileLockTimeoutError(FileLockError, TimeoutError):
    """The lock stayed busy until the timeout ran out."""


class FileLockSymlinkError(FileLockError):
    """A lock file is a symlink; it is refused rather than followed (or created through)."""


class UnserializableDataError(Ih5Error, TypeError):
    """Data given to a JSON writer cannot be written as strict JSON."""


class CorruptDocumentError(Ih5Error, ValueError):
    """An existing JSON sidecar is not valid JSON; it was left as it was."""


class LossyDocumentError(CorruptDocumentError):
    """A JSON sidecar is valid JSON that cannot be written back unchanged; it was left as it was.

    Duplicate keys (a rewrite would keep only one) and lone surrogate escapes
    (``"\\ud800"``, not encodable as UTF-8). ``json_path`` names where, e.g.
    ``$["subdirectories"]["images"]``.
    """

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, json_path: str = "$"
    ) -> None:
        super().__init__(message, path)
        self.json_path = json_path

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.path, self.json_path))


class UnreadableDocumentError(Ih5Error, OSError):
    """An existing JSON sidecar cannot be read (permissions, I/O error)."""


class HashsumFormatError(Ih5Error, ValueError):
    """A hashsum string is not of the form ``ALG:HEX`` with a known algorithm."""


# --- metadata floor -------------------------------------------------------


class MetadataWriteError(Ih5Error, OSError):
    """A plate metadata update failed; nothing was written."""


class MetadataValidationError(Ih5Error, ValueError):
    """A plate metadata document does not have the expected shape."""

    def __init__(
        self,
        message: str,
        path: str | os.PathLike[str] | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, path)
        self.problems = problems

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.path, self.problems))


class MigrationError(Ih5Error, ValueError):
    """A legacy plate metadata document could not be migrated."""


class MetadataNotFoundError(Ih5Error, FileNotFoundError):
    """A plate has no metadata sidecar where one was looked for."""


# --- format floor ---------------------------------------------------------


class NotAnIH5ContainerError(Ih5Error, ValueError):
    """A file is not an IH5 container (no or damaged user block)."""


class UserBlockTooLargeError(Ih5Error, ValueError):
    """A user block's text does not fit its block; nothing was written."""


class IntegrityError(Ih5Error, ValueError):
    """A container's bytes do not match the hashsum its user block claims."""


class DamagedPayloadError(IntegrityError, OSError):
    """Reading values hit damaged HDF5 bytes (possible when opened with verify=False).

    Also an OSError, which is what h5py raises for the same failure.
    """


class ChainError(Ih5Error, ValueError):
    """The containers do not form one valid chain (links, indices, uuids)."""


class MixedRecordsError(ChainError):
    """The containers given belong to more than one record."""


class ReservedValueError(Ih5Error, ValueError):
    """User data equals an IH5 patch marker (the deletion value) and cannot be stored."""


class UnencodableValueError(Ih5Error, ValueError):
    """A string holds characters that no HDF5 string can store (lone surrogates)."""


# --- store floor ----------------------------------------------------------


class StoreWarning(UserWarning):
    """A store works with weaker guarantees than usual (e.g. no create-if-absent)."""


# --- record floor ---------------------------------------------------------


class RecordClosedError(Ih5Error, ValueError):
    """The record (or the record of a view) was closed; reopen it to go on."""


class StrayFileWarning(UserWarning):
    """A file looks like one of the record's but does not fit its chain."""


class RecordNotFoundError(Ih5Error, FileNotFoundError):
    """No container of the record exists where it was looked for."""


class RecordExistsError(Ih5Error, FileExistsError):
    """A record was to be created where containers already exist."""


class RecordLockedError(FileLockTimeoutError):
    """Another writer holds the record's lock."""


class ConflictError(Ih5Error, RuntimeError):
    """The record changed on disk since this writer opened it; reopen and retry."""


class RecordModeError(Ih5Error, ValueError):
    """The operation needs another mode or patch state (e.g. writing without a patch)."""


class InvalidKeyError(Ih5Error, ValueError):
    """A group member name or path is not allowed."""


class NodeNotFoundError(Ih5Error, KeyError):
    """No group, dataset or attribute exists at the given path."""


class NodeExistsError(Ih5Error, ValueError):
    """A group or dataset was to be created where one already exists."""


# --- manifest floor -------------------------------------------------------


class ManifestError(Ih5Error, ValueError):
    """A manifest is missing, invalid, or does not match its container."""


class StubError(Ih5Error, ValueError):
    """An operation needs data that a stub does not have, or a stub is misplaced."""


# --- pack floor -----------------------------------------------------------


class PackError(Ih5Error, ValueError):
    """A directory cannot be packed or a record cannot be unpacked as asked."""


# --- metador-core's exception classes (record floor) ----------------------


class NoContainersGivenError(RecordNotFoundError, ValueError):
    """An empty list of container files was given (metador-core raises ValueError)."""


class NotAGroupError(NodeNotFoundError, ValueError):
    """A path goes through a dataset as if it were a group (metador-core raises ValueError)."""


class UnsupportedValueError(Ih5Error, ValueError, TypeError):
    """A value a record cannot store: an HDF5 link, or a view of a node (a hard link)."""


class UnknownKeywordError(Ih5Error, ValueError, TypeError):
    """A call got a keyword it does not know (TypeError in Python, ValueError in metador-core)."""


class RecordDirectoryError(Ih5Error, ValueError):
    """A directory to look for records in is missing or not a directory."""


# --- remote stores (store floor) ------------------------------------------


class RemoteError(Ih5Error, OSError):
    """Object storage or an HTTP server refused or failed a request; ``path`` is the URL."""


class RemoteUnavailableError(RemoteError, ConnectionError):
    """The server kept failing (errors, throttling, dropped connections) after retries."""


class RemoteAuthError(RemoteError, PermissionError):
    """The server refused the credentials (missing, wrong or without the needed rights)."""


class RemoteNotFoundError(RemoteError, FileNotFoundError):
    """The bucket, prefix or server path does not exist."""


class RemoteReadOnlyError(RemoteError, PermissionError):
    """The location can only be read (plain HTTP(S)); writing needs object storage."""


class EngineError(Ih5Error, RuntimeError):
    """A task engine (a Dask scheduler, a local cluster) cannot be started or reached."""
