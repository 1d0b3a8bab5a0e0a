"""The ground floor: locks, crash-safe writes, locked JSON updates and hashsums."""

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
from ih5.fs._beneath import DirectoryWalker, open_directory_beneath, open_file_beneath, open_root
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
