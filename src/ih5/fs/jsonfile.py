"""JSON sidecars: strict encoding, atomic writes and locked read-modify-write."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ih5.errors import CorruptDocumentError, UnreadableDocumentError, UnserializableDataError
from ih5.fs.atomic import (
    atomic_write_bytes,
    fsync_directory,
    sweep_stale_temp_files,
    temp_files_for,
)
from ih5.fs.lock import file_lock, held_lock_fd

logger = logging.getLogger(__name__)


def encode_json(data: Any, path: str | os.PathLike[str]) -> bytes:
    """Encode ``data`` as 2-space indented UTF-8 JSON with a trailing newline.

    NaN and infinities are refused: they are not JSON and strict readers choke.
    """
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UnserializableDataError(
            f"cannot write {os.fspath(path)}: {exc}; pass only dicts, lists, strings, "
            "finite numbers, booleans and None",
            path,
        ) from exc
    return (text + "\n").encode("utf-8")


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically; bad data is refused before any write."""
    atomic_write_bytes(path, encode_json(data, path))


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnreadableDocumentError(
            f"cannot read {os.fspath(path)}: {exc.strerror or exc}; check its permissions",
            path,
        ) from exc


def _decode(raw: bytes, path: str | os.PathLike[str]) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    # ValueError: also integers beyond Python's digit limit; RecursionError: deep nesting.
    except (ValueError, RecursionError) as exc:
        raise CorruptDocumentError(
            f"{os.fspath(path)} is not valid JSON ({exc}); repair it, or allow moving it "
            "aside to a backup (backup_corrupt=True) to start from an empty document",
            path,
        ) from exc


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON document; raise typed errors that say what is wrong with which file.

    A missing file raises :class:`FileNotFoundError`.
    """
    return _decode(_read_bytes(path), path)


def _backup_corrupt(path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    backup = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, backup)
    fsync_directory(path.absolute().parent)
    logger.warning("moved corrupt %s aside to %s", path, backup)
    return backup


def _load_for_update(path: Path, default_data: Any, backup_corrupt: bool) -> tuple[bytes, Any]:
    """Return the file's bytes and document; empty bytes and a copy of the default if absent."""
    try:
        raw = _read_bytes(path)
        return raw, _decode(raw, path)
    except FileNotFoundError:
        pass
    except CorruptDocumentError:
        if not backup_corrupt:
            raise
        _backup_corrupt(path)
    return b"", copy.deepcopy(default_data)


# Sweeping for temp files costs a directory scan, which grows with the directory
# (77 ms at 50,000 entries), so locked writers note "a write is in flight" in
# their lock file and sweep only when a previous holder died before clearing it.


def _sweep_if_interrupted(target: Path) -> bool:
    """Under the lock: remove temp files of writers that died mid-write, if any did.

    Returns True while some remain (a killed writer that is not reaped yet
    still looks alive): the note then stays for the next holder.
    """
    lock_fd = held_lock_fd(target)
    if os.fstat(lock_fd).st_size == 0:
        return False
    sweep_stale_temp_files(target)
    if temp_files_for(target):
        return True
    os.ftruncate(lock_fd, 0)
    return False


def _write_if_changed(path: Path, before: bytes, document: Any, keep_note: bool) -> bool:
    """Replace the document if its bytes change; True when the directory still needs its fsync.

    The directory fsync that makes the rename durable runs after the lock is
    released: the next writer may go on meanwhile, because its own rename
    (of a document containing ours) is only acknowledged after its own fsync.
    """
    encoded = encode_json(document, path)
    if encoded == before:
        return False
    lock_fd = held_lock_fd(path)
    os.pwrite(lock_fd, b"1", 0)
    atomic_write_bytes(path, encoded, sync_directory=False)
    if not keep_note:
        # The document is replaced already: a note that cannot be cleared must not fail
        # the update (the caller would think nothing was written); it costs the next
        # holder one needless sweep.
        with contextlib.suppress(OSError):
            os.ftruncate(lock_fd, 0)
    return True


@contextmanager
def locked_json(
    path: str | os.PathLike[str],
    timeout: float | None = 30.0,
    default_data: Any = None,
    *,
    backup_corrupt: bool = False,
) -> Iterator[Any]:
    """Hold the lock of a JSON sidecar and yield its document for in-place changes.

    When the block ends normally the document is written back atomically if
    it changed; when it raises, nothing is written. A missing file starts from
    a copy of ``default_data`` (an empty dict when not given) and is created
    only if the block changes it. Do not nest updates of the same file: the
    lock is re-entrant, so the outer block would overwrite the inner one.
    """
    target = Path(path)
    start = {} if default_data is None else default_data
    with file_lock(target, timeout):
        leftovers = _sweep_if_interrupted(target)
        before, document = _load_for_update(target, start, backup_corrupt)
        yield document
        before = before or encode_json(start, target)
        wrote = _write_if_changed(target, before, document, leftovers)
    if wrote:
        fsync_directory(target.absolute().parent)


def atomic_update_json(
    path: str | os.PathLike[str],
    update_func: Callable[[Any], Any],
    lock_timeout: float | None = 30.0,
    default_data: Any = None,
    *,
    backup_corrupt: bool = False,
) -> Any:
    """Apply ``update_func`` to a JSON sidecar under its lock and write the result atomically.

    ``update_func`` receives the current document (a copy of ``default_data``
    when the file is missing) and returns the new one, which is returned
    here too. Exceptions from ``update_func`` propagate unchanged and leave
    the file untouched; so does returning ``None``, which is refused.
    """
    target = Path(path)
    with file_lock(target, lock_timeout):
        leftovers = _sweep_if_interrupted(target)
        before, current = _load_for_update(target, default_data, backup_corrupt)
        document = update_func(current)
        if document is None:
            raise UnserializableDataError(
                f"update function for {target} returned None; return the new document",
                target,
            )
        wrote = _write_if_changed(target, before, document, leftovers)
    if wrote:
        fsync_directory(target.absolute().parent)
    return document
