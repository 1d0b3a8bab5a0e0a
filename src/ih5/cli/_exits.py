"""Exit codes of ``ih5``: one per kind of outcome, so that scripts can tell them apart."""

from __future__ import annotations

from ih5.errors import (
    ChainError,
    ConflictError,
    CorruptDocumentError,
    FileLockError,
    Ih5Error,
    IntegrityError,
    ManifestError,
    MetadataNotFoundError,
    NodeNotFoundError,
    NotAnIH5ContainerError,
    RecordNotFoundError,
    RemoteError,
    StorageError,
)

OK = 0
CHECK_FAILED = 1
"""``verify`` found a problem; ``diff --exit-code`` found differences."""
USAGE = 2
NOT_FOUND = 3
DAMAGED = 4
BUSY = 5
REFUSED = 6
OS_ERROR = 7
BUG = 70
"""An unexpected error (EX_SOFTWARE): a bug in ih5; ``--debug`` shows the traceback."""
INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command stopped by Ctrl-C."""
BROKEN_PIPE = 141
"""128 + SIGPIPE, what a Unix tool reports when its reader went away (``| head``)."""

HELP = """\b
Exit codes:
    0  success
    1  check failed: verify found a damaged, missing or stray file;
       diff --exit-code found differences
    2  usage error (a bad option or argument)
    3  not found: no such record, file, path or sidecar
    4  damaged: a container, manifest or sidecar does not match what it claims
    5  busy: another writer holds the lock, or the record changed meanwhile
    6  refused: the request would lose data or cannot be done as asked
    7  operating system or server error (disk full, read-only, permission
       denied, object storage unreachable, ...)
   70  bug in ih5 (run with --debug for the traceback)
  130  interrupted by Ctrl-C
  141  the reader of stdout went away (e.g. | head); nothing is printed"""


def exit_code_for(exc: Exception) -> int:
    """The exit code of an error that ended a command."""
    if isinstance(exc, (RecordNotFoundError, NodeNotFoundError, MetadataNotFoundError)) or (
        isinstance(exc, RemoteError) and isinstance(exc, FileNotFoundError)
    ):
        return NOT_FOUND
    if isinstance(exc, Ih5Error) and isinstance(exc.__cause__, FileNotFoundError):
        return NOT_FOUND  # e.g. a manifest file that is not there
    if isinstance(
        exc,
        (IntegrityError, ChainError, ManifestError, NotAnIH5ContainerError, CorruptDocumentError),
    ):
        return DAMAGED
    if isinstance(exc, (FileLockError, ConflictError)):
        return BUSY
    if isinstance(exc, (StorageError, RemoteError)):
        return OS_ERROR  # a full disk, a read-only location, a denied permission, a server
    if isinstance(exc, Ih5Error):
        return REFUSED
    if isinstance(exc, FileNotFoundError):
        return NOT_FOUND
    if isinstance(exc, OSError):
        return OS_ERROR
    return BUG
