"""The ground floor: locks, crash-safe writes, locked JSON updates and hashsums.

Names are imported on first use (PEP 562): a command loads only the parts it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ih5._lazy import lazy_names

if TYPE_CHECKING:
    from ih5.fs._atomic import (
        TEMP_SUFFIX,
        StagedFile,
        atomic_write_bytes,
        fsync_directory,
        is_temp_name,
        pid_alive,
        replace_file,
        sweep_stale_temp_files,
        sweep_stale_temps_in,
        temp_path_for,
        write_new_file,
    )
    from ih5.fs._beneath import (
        DirectoryWalker,
        open_directory_beneath,
        open_file_beneath,
        open_root,
    )
    from ih5.fs._filestate import StatMemo, is_settled, stat_key
    from ih5.fs._grouped import QUEUE_SUFFIX, grouped_update_json, queue_directory
    from ih5.fs._hashing import (
        DEFAULT_ALGORITHM,
        HASH_ALGORITHMS,
        HashingReader,
        HashingWriter,
        Progress,
        hashsum_bytes,
        hashsum_file,
        hashsum_stream,
        parse_hashsum,
    )
    from ih5.fs._indented import indented_json
    from ih5.fs._jsonfile import (
        IN_FLIGHT_SUFFIX,
        atomic_update_json,
        atomic_write_json,
        encode_json,
        encode_json_compact,
        locked_json,
        read_json,
    )
    from ih5.fs._lock import LOCK_SUFFIX, file_lock, lock_holder, lock_path_for
    from ih5.fs._oserrors import os_errno, reserve_space, storage_error, typed_storage_errors
    from ih5.fs._usercache import read_entry, write_entry
    from ih5.fs._verified import VerifiedHashsums

__all__ = [
    "DEFAULT_ALGORITHM",
    "HASH_ALGORITHMS",
    "IN_FLIGHT_SUFFIX",
    "LOCK_SUFFIX",
    "QUEUE_SUFFIX",
    "TEMP_SUFFIX",
    "DirectoryWalker",
    "HashingReader",
    "HashingWriter",
    "Progress",
    "StagedFile",
    "StatMemo",
    "VerifiedHashsums",
    "atomic_update_json",
    "atomic_write_bytes",
    "atomic_write_json",
    "encode_json",
    "encode_json_compact",
    "file_lock",
    "fsync_directory",
    "grouped_update_json",
    "hashsum_bytes",
    "hashsum_file",
    "hashsum_stream",
    "indented_json",
    "is_settled",
    "is_temp_name",
    "lock_holder",
    "lock_path_for",
    "locked_json",
    "open_directory_beneath",
    "open_file_beneath",
    "open_root",
    "os_errno",
    "parse_hashsum",
    "pid_alive",
    "queue_directory",
    "read_entry",
    "read_json",
    "replace_file",
    "reserve_space",
    "stat_key",
    "storage_error",
    "sweep_stale_temp_files",
    "sweep_stale_temps_in",
    "temp_path_for",
    "typed_storage_errors",
    "write_entry",
    "write_new_file",
]

_SOURCES = {
    "TEMP_SUFFIX": "ih5.fs._atomic",
    "StagedFile": "ih5.fs._atomic",
    "atomic_write_bytes": "ih5.fs._atomic",
    "fsync_directory": "ih5.fs._atomic",
    "is_temp_name": "ih5.fs._atomic",
    "pid_alive": "ih5.fs._atomic",
    "replace_file": "ih5.fs._atomic",
    "sweep_stale_temp_files": "ih5.fs._atomic",
    "sweep_stale_temps_in": "ih5.fs._atomic",
    "temp_path_for": "ih5.fs._atomic",
    "write_new_file": "ih5.fs._atomic",
    "DirectoryWalker": "ih5.fs._beneath",
    "open_directory_beneath": "ih5.fs._beneath",
    "open_file_beneath": "ih5.fs._beneath",
    "open_root": "ih5.fs._beneath",
    "StatMemo": "ih5.fs._filestate",
    "is_settled": "ih5.fs._filestate",
    "stat_key": "ih5.fs._filestate",
    "QUEUE_SUFFIX": "ih5.fs._grouped",
    "grouped_update_json": "ih5.fs._grouped",
    "queue_directory": "ih5.fs._grouped",
    "DEFAULT_ALGORITHM": "ih5.fs._hashing",
    "HASH_ALGORITHMS": "ih5.fs._hashing",
    "HashingReader": "ih5.fs._hashing",
    "HashingWriter": "ih5.fs._hashing",
    "Progress": "ih5.fs._hashing",
    "hashsum_bytes": "ih5.fs._hashing",
    "hashsum_file": "ih5.fs._hashing",
    "hashsum_stream": "ih5.fs._hashing",
    "parse_hashsum": "ih5.fs._hashing",
    "IN_FLIGHT_SUFFIX": "ih5.fs._jsonfile",
    "indented_json": "ih5.fs._indented",
    "atomic_update_json": "ih5.fs._jsonfile",
    "atomic_write_json": "ih5.fs._jsonfile",
    "encode_json": "ih5.fs._jsonfile",
    "encode_json_compact": "ih5.fs._jsonfile",
    "locked_json": "ih5.fs._jsonfile",
    "read_json": "ih5.fs._jsonfile",
    "LOCK_SUFFIX": "ih5.fs._lock",
    "file_lock": "ih5.fs._lock",
    "lock_holder": "ih5.fs._lock",
    "lock_path_for": "ih5.fs._lock",
    "os_errno": "ih5.fs._oserrors",
    "reserve_space": "ih5.fs._oserrors",
    "storage_error": "ih5.fs._oserrors",
    "typed_storage_errors": "ih5.fs._oserrors",
    "read_entry": "ih5.fs._usercache",
    "write_entry": "ih5.fs._usercache",
    "VerifiedHashsums": "ih5.fs._verified",
}

__getattr__, __dir__ = lazy_names(__name__, _SOURCES, __all__, globals())
