"""JSON sidecars: strict encoding, atomic writes and locked read-modify-write."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ih5.errors import (
    CorruptDocumentError,
    LossyDocumentError,
    UnreadableDocumentError,
    UnserializableDataError,
)
from ih5.fs._atomic import (
    atomic_write_bytes,
    fsync_directory,
    sweep_stale_temp_files,
    temp_files_for,
)
from ih5.fs._indented import indented_json
from ih5.fs._lock import file_lock, held_lock_fd
from ih5.fs._oserrors import storage_error

logger = logging.getLogger(__name__)


class ReadNonFinite(float):
    """A ``NaN`` or infinity read from an existing sidecar, which may be written back as is.

    The original OpenHCS writer writes these (Python's ``json`` default). They are
    not JSON, so new data must not contain them; but a document that holds them
    must stay updatable, so a value read from the file keeps its spelling.
    """


_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _json_path(steps: tuple[str | int, ...]) -> str:
    return "$" + "".join(
        f"[{step}]" if isinstance(step, int) else f"[{json.dumps(step)}]" for step in steps
    )


def _new_non_finite(node: Any, steps: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """The path of the first non-finite number in ``node`` that was not read from a file."""
    if isinstance(node, float):
        finite = math.isfinite(node) or isinstance(node, ReadNonFinite)
        return None if finite else steps
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return None
    for key, value in items:
        found = _new_non_finite(value, (*steps, key))
        if found is not None:
            return found
    return None


def _unserializable(path: str | os.PathLike[str], reason: object) -> UnserializableDataError:
    return UnserializableDataError(
        f"cannot write {os.fspath(path)}: {reason}; pass only dicts, lists, strings, "
        "finite numbers, booleans and None",
        path,
    )


def encode_json(data: Any, path: str | os.PathLike[str]) -> bytes:
    """Encode ``data`` as 2-space indented UTF-8 JSON with a trailing newline.

    NaN and infinities are refused: they are not JSON and strict readers choke.
    Only those read from an existing sidecar (:class:`ReadNonFinite`) are
    written back as they were.
    """
    try:
        try:
            text = indented_json(data)  # the common case, several times faster
            if text is None:
                text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
        except ValueError as exc:
            if "Out of range float" not in str(exc):
                raise
            where = _new_non_finite(data)
            if where is not None:
                raise _unserializable(path, f"{_json_path(where)} is not a finite number") from exc
            text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=True)
        return (text + "\n").encode("utf-8")
    except UnserializableDataError:
        raise
    # UnicodeEncodeError (a lone surrogate in a string) is a ValueError too.
    except (TypeError, ValueError, RecursionError) as exc:
        raise _unserializable(path, exc) from exc


def encode_json_compact(data: Any, path: str | os.PathLike[str]) -> bytes:
    """Encode ``data`` as compact UTF-8 JSON, as strictly as :func:`encode_json`.

    For files only ih5 reads (queued requests) and for checking data before a
    write: the C encoder is many times faster than the indented (pure Python)
    one. Bad data raises the same typed error as :func:`encode_json`.
    """
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        encode_json(data, path)  # raises the typed error that names what is wrong
        text = json.dumps(data, ensure_ascii=False, allow_nan=True, separators=(",", ":"))
        return text.encode("utf-8")


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


class _Duplicated(dict):  # type: ignore[type-arg]
    """An object that had a key twice; ``duplicate`` names the first such key."""

    duplicate: str = ""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    marked = _Duplicated(result)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.duplicate = key
            break
        seen.add(key)
    return marked


def _lossy_step(
    node: Any, steps: tuple[str | int, ...]
) -> tuple[tuple[str | int, ...], str] | None:
    """Where ``node`` holds something a rewrite would change, and what."""
    if isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            return steps, "a string with a lone surrogate escape (not encodable as UTF-8)"
        return None
    if isinstance(node, _Duplicated):
        return (*steps, node.duplicate), "a duplicate key (a rewrite would keep only one value)"
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return None
    for key, value in items:
        if isinstance(key, str) and (found := _lossy_step(key, (*steps, key))) is not None:
            return found
        if (found := _lossy_step(value, (*steps, key))) is not None:
            return found
    return None


# Lone surrogates can only come from \uD800-\uDFFF escapes: UTF-8 bytes cannot encode them.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _decode(raw: bytes, path: str | os.PathLike[str]) -> Any:
    duplicates = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        result = _object(pairs)
        duplicates = duplicates or isinstance(result, _Duplicated)
        return result

    try:
        document = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=pairs_hook,
            parse_constant=lambda name: ReadNonFinite(_NON_FINITE[name]),
        )
    # ValueError: also integers beyond Python's digit limit; RecursionError: deep nesting.
    except (ValueError, RecursionError) as exc:
        raise CorruptDocumentError(
            f"{os.fspath(path)} is not valid JSON ({exc}); repair it, or allow moving it "
            "aside to a backup (backup_corrupt=True) to start from an empty document",
            path,
        ) from exc
    if duplicates or _SURROGATE_ESCAPE.search(raw):
        found = _lossy_step(document, ())
        if found is not None:
            steps, what = found
            where = _json_path(steps)
            raise LossyDocumentError(
                f"{os.fspath(path)} holds {what} at {where}; ih5 cannot write it back "
                "unchanged, so it left the file as it was; repair that value and retry",
                path,
                where,
            )
    return document


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


def load_for_update(path: Path, default_data: Any, backup_corrupt: bool) -> tuple[bytes, Any]:
    """Return the file's bytes and document; empty bytes and a copy of the default if absent."""
    try:
        raw = _read_bytes(path)
        return raw, _decode(raw, path)
    except FileNotFoundError:
        pass
    except LossyDocumentError:
        raise  # valid JSON: moving it aside would lose good data for one bad value
    except CorruptDocumentError:
        if not backup_corrupt:
            raise
        _backup_corrupt(path)
    return b"", copy.deepcopy(default_data)


# Sweeping for temp files costs a directory scan, which grows with the directory
# (77 ms at 50,000 entries), so a locked writer notes "a write is in flight" while it
# writes, and holders sweep only when a previous one died before clearing the note.
# The note is the held lock file's modification time, set to IN_FLIGHT_NS: an inode
# change, where creating and removing a file costs an inode each update (the lock file
# is never written to, only its times). Where the lock file is not ours to change
# (another user made it), the note is a marker file beside the document instead,
# which is never opened for writing and never followed: creating it with O_EXCL
# fails on any existing name, links included, and unlinking a link removes the link.

IN_FLIGHT_SUFFIX = ".ih5-in-flight"
IN_FLIGHT_NS = 1
"""The lock file's modification time (ns) while a write of its document is in flight."""


def in_flight_marker(path: str | os.PathLike[str]) -> Path:
    """The marker a locked writer of ``path`` keeps beside it while a write is in flight
    when the lock file is not its own to note it on."""
    return Path(_marker_of(path))


def _marker_of(path: str | os.PathLike[str]) -> str:
    # A string: every locked update looks for it, and pathlib costs more than the lstat.
    head, name = os.path.split(os.fspath(path))
    return os.path.join(head, f".{name}{IN_FLIGHT_SUFFIX}")


def _set_marker(marker: Path) -> None:
    flags = os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    # An existing marker (left before) says the same.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(marker, flags, 0o644))


def _clear_marker(marker: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker)


def _note_in_flight(target: Path) -> Path | None:
    """Note that a write of ``target`` is in flight; the marker file used, if one was."""
    try:
        os.utime(held_lock_fd(target), ns=(IN_FLIGHT_NS, IN_FLIGHT_NS))
        return None
    except PermissionError:
        marker = in_flight_marker(target)
        _set_marker(marker)
        return marker


def _clear_in_flight(target: Path, marker: Path | None) -> None:
    if marker is None:
        os.utime(held_lock_fd(target))  # now, as an untouched lock file's time would be
    else:
        _clear_marker(marker)


def sweep_if_interrupted(target: Path) -> bool:
    """Under the lock: remove temp files of writers that died mid-write, if any did.

    Returns True while some remain (a killed writer that is not reaped yet
    still looks alive): the note then stays for the next holder.
    """
    noted = os.fstat(held_lock_fd(target)).st_mtime_ns == IN_FLIGHT_NS
    marker = _marker_of(target)
    if not noted and not os.path.lexists(marker):
        return False
    sweep_stale_temp_files(target)
    if temp_files_for(target):
        return True
    if noted:
        _clear_in_flight(target, None)
    _clear_marker(marker)
    return False


def write_if_changed(path: Path, before: bytes, document: Any, keep_note: bool) -> bool:
    """Replace the document if its bytes change; True when the directory still needs its fsync.

    The directory fsync that makes the rename durable runs after the lock is
    released: the next writer may go on meanwhile, because its own rename
    (of a document containing ours) is only acknowledged after its own fsync.
    """
    encoded = encode_json(document, path)
    if encoded == before:
        return False
    marker: Path | None = None
    try:
        marker = _note_in_flight(path)
        atomic_write_bytes(path, encoded, sync_directory=False)
    except OSError as exc:
        # The note stays: the temp file may be left (removing it can fail too), and
        # the next holder's sweep, which then finds it, clears the note.
        typed = storage_error(exc, path.absolute().parent, f"updating {path.name}")
        if typed is None:
            raise
        raise typed from exc
    if not keep_note:
        # The document is replaced already: a note that cannot be cleared must not
        # fail the update (the caller would think nothing was written); it costs the
        # next holder one needless sweep.
        with contextlib.suppress(OSError):
            _clear_in_flight(path, marker)
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
        leftovers = sweep_if_interrupted(target)
        before, document = load_for_update(target, start, backup_corrupt)
        yield document
        before = before or encode_json(start, target)
        wrote = write_if_changed(target, before, document, leftovers)
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
        leftovers = sweep_if_interrupted(target)
        before, current = load_for_update(target, default_data, backup_corrupt)
        document = update_func(current)
        if document is None:
            raise UnserializableDataError(
                f"update function for {target} returned None; return the new document",
                target,
            )
        wrote = write_if_changed(target, before, document, leftovers)
    if wrote:
        fsync_directory(target.absolute().parent)
    return document
