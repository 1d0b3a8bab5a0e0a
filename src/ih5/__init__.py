"""ih5: immutable, patchable HDF5 records and crash-safe sidecar metadata."""

from ih5.errors import (
    CorruptDocumentError,
    FileLockError,
    FileLockTimeoutError,
    HashsumFormatError,
    Ih5Error,
    MetadataValidationError,
    MetadataWriteError,
    MigrationError,
    UnreadableDocumentError,
    UnserializableDataError,
)
from ih5.fs import (
    atomic_update_json,
    atomic_write_bytes,
    atomic_write_json,
    file_lock,
    hashsum_bytes,
    hashsum_file,
    locked_json,
    read_json,
)

__version__ = "0.1.0"

__all__ = [
    "CorruptDocumentError",
    "FileLockError",
    "FileLockTimeoutError",
    "HashsumFormatError",
    "Ih5Error",
    "MetadataValidationError",
    "MetadataWriteError",
    "MigrationError",
    "UnreadableDocumentError",
    "UnserializableDataError",
    "__version__",
    "atomic_update_json",
    "atomic_write_bytes",
    "atomic_write_json",
    "file_lock",
    "hashsum_bytes",
    "hashsum_file",
    "locked_json",
    "read_json",
]
