"""Group commit for locked JSON updates whose changes are data: one write for every waiter.

A writer that finds the document's lock taken appends its request (JSON data)
to a log in a queue directory beside the document, ``.NAME.ih5-queue/``, and
then waits. Whoever holds the lock applies every queued request, in arrival
order, in one replace of the document, so N waiting writers cost one fsynced
write instead of N. The queue directory holds:

- ``incoming.log``: waiting requests, one line each (a newline, the request's
  name by arrival (monotonic clock, pid, thread), a space, its compact JSON, a
  newline), appended by the waiters. A waiter holds the log in shared mode
  (flock) while it checks that the file is still ``incoming.log`` and writes;
  a line ``-NAME`` withdraws request NAME;
- ``batch-ID/``: the logs a holder is applying. It takes ``incoming.log`` up
  by renaming it here, then takes it exclusively, which waits for the appends
  under way: every request lands before the holder reads, or is appended to
  the next log (the next waiter makes a new ``incoming.log``);
- ``staged-ID/``: a batch whose next document ``next`` is written and fsynced.

The commit renames ``staged-ID/next`` over the document: that one rename both
publishes the document and marks the batch applied. A ``staged-ID`` without
``next`` is committed and is only removed, never applied again, so an update
made after it (by anyone) is never undone; a ``batch-ID``, or a ``staged-ID``
that still holds ``next``, was not committed (its holder died or failed) and
the next holder applies its requests to the document as it is then.
Requests are not fsynced: one counts only once a committed document holds it,
and a line torn by a power cut or a full disk was never acknowledged, so it is
dropped. No file is made per request: appending costs one write.

The holder lets the lock go right after the commit, then fsyncs the
directory, marks every log of the batch applied (modification time 0) and
opens their gates. The next holder may commit meanwhile: its document holds
this one, and it tells its own waiters only after its own fsync. Each log has
a gate, ``gate-INODE`` in the queue directory (the log's inode, which the
rename keeps): a FIFO (``ih5.fs._gate``) that the first waiter to need it
puts up and that lets every waiter there through at once, without anyone
taking a lock. A waiter looks at its mark after it found the gate and before
it waits there, so a gate opened (and taken down) before it came costs it
nothing. The first waiter to queue after a take-up (the one that makes
``incoming.log``) waits for the lock instead, to apply the next batch: so one
process per batch goes for the lock, woken by the lock's release before the
batch's waiters are, and each waiter waits at one gate, its own batch's.
A waiter whose log is marked applied returns. One whose gate opened but is
not marked (its holder failed), or that finds no gate, waits a moment on the
lock in shared mode, learns under it whether its request still waits, and if
so tries the lock once and applies the queue, or (the lock taken) looks again,
after stepping aside a random moment if that keeps happening with nobody
holding the lock (others let in with it tried it at once). A gate nobody opens
(its holder, or the first waiter, died) is noticed by the waiters there: every
moment they make sure someone holds the lock, and if nobody does they look
under it. Waits are in steps, never in the lock's own queue, where later
writers can take the lock before a waiter the kernel woke gets to run. The
marks are only hints: the state of the queue directory under the lock is what
counts. A waiter that times out withdraws its request if its log is still
incoming; one already taken up is being applied, so it waits once more. A
holder removes another's committed batch only once that holder is gone (it
may still be marking it), and the gates of an idle queue with it.
Every process queueing on a document must apply requests the same way: the
queue is one writer's (the plate metadata writer's), not a general mailbox.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import random
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from ih5.errors import FileLockError, FileLockTimeoutError
from ih5.fs._atomic import (
    STALE_TEMP_AGE,
    fsync_directory,
    is_temp_name,
    pid_alive,
    sweep_stale_temps_in,
    write_new_file,
)
from ih5.fs._filestate import still_at
from ih5.fs._gate import find_gate, make_gate, open_gate, take_gate
from ih5.fs._jsonfile import (
    ReadNonFinite,
    encode_json,
    encode_json_compact,
    load_for_update,
    sweep_if_interrupted,
    write_if_changed,
)
from ih5.fs._lock import (
    SharedLockWait,
    file_lock,
    held_exclusively,
    lock_path_for,
    lock_still_held,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no grouped updates, but ih5 imports
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

QUEUE_SUFFIX = ".ih5-queue"
LOG_SUFFIX = ".log"
INCOMING = "incoming" + LOG_SUFFIX
BATCH_PREFIX = "batch-"
STAGED_PREFIX = "staged-"
NEXT = "next"
GATE_PREFIX = "gate-"
_QUEUE_TEMPS = frozenset(("gate",))  # of versions that put gates up by a rename
_SPOOL_ATTEMPTS = 1000

Apply = Callable[[Any, Any], Any]
"""``apply(document, request) -> document``; ``document`` is None while the file is missing."""


def queue_directory(path: str | os.PathLike[str]) -> Path:
    """The queue directory of ``path``'s grouped updates (hidden, beside it)."""
    return Path(_queue_of(os.fspath(path)))


# Below, paths are strings: a queued update makes dozens of path operations, and
# pathlib's cost several times what the system calls themselves do.


def _queue_of(target: str) -> str:
    head, name = os.path.split(target)
    return os.path.join(head, f".{name}{QUEUE_SUFFIX}")


_numbers = itertools.count()
"""This process's requests, numbered (with the pid, unique on the host)."""


def _request_name() -> str:
    # CLOCK_MONOTONIC is one clock for every process on the host: names sort by arrival.
    stamp, thread = time.monotonic_ns(), threading.get_native_id()
    return f"{stamp:020d}-{os.getpid()}-{thread}-{next(_numbers):08x}"


def _unlink_quietly(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_WITHDRAWN = b"-"
"""A record starting with this withdraws the request named after it (in the same log)."""
_SETTLE_STEP = 0.0001


def _append_while_incoming(fd: int, log: str, record: bytes) -> bool:
    """Append ``record`` to the log open at ``fd`` if it is still the queue's ``log``.

    False once a holder has taken the log up. An appender holds the log in
    shared mode from before it looks until after it writes, and a holder takes
    the log it took up exclusively before reading it: so every record either
    lands before the holder reads, or is not written at all.
    """
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(_SETTLE_STEP)  # a holder reading the log it took up: a moment
    try:
        if not still_at(fd, log):
            return False
        written = os.write(fd, record)
        if written != len(record):  # a full disk: the torn record is dropped by its reader
            raise OSError(errno.ENOSPC, "no room to queue the request whole", log)
        return True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _spool(queue: str | os.PathLike[str], data: bytes) -> str:
    """Publish a request into the queue's log; return its name there."""
    published = _publish(os.fspath(queue), data)
    os.close(published.fd)
    return published.name


class Published(NamedTuple):
    """A queued request: its name, a descriptor of the log holding it (the holder marks
    a log it applied, wherever the file is by then), and whether this waiter made
    the log (the first to queue since a holder took the queue up: it goes for the
    lock)."""

    name: str
    fd: int
    first: bool


def _publish(queue: str, data: bytes) -> Published:
    """Append a request to ``queue``'s log, ``incoming.log``, made if missing.

    One line per request, its name and its compact JSON, after a newline (so
    that a line torn by a full disk cannot swallow the next one). Appending
    makes no file and renames nothing: waiters share one log until a holder
    takes it up by renaming it, and the next waiter makes a new one.
    """
    name = _request_name()
    record = b"\n" + name.encode() + b" " + data + b"\n"
    log = f"{queue}/{INCOMING}"
    for _ in range(_SPOOL_ATTEMPTS):
        first = False
        try:
            fd = os.open(log, _APPEND)
        except FileNotFoundError:
            try:
                fd = os.open(log, _APPEND | os.O_CREAT | os.O_EXCL, _log_mode(queue))
                first = True
            except FileExistsError:
                continue  # another waiter made it just now
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(queue)
                continue
        try:
            if _append_while_incoming(fd, log, record):
                return Published(name, fd, first)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # taken up just before we wrote: append to the next log
    raise OSError(f"could not queue a request in {queue}: its log kept being taken up")


def _log_mode(queue: str) -> int:
    """A new log's permissions: whoever may queue (write in the queue directory) may append."""
    try:
        writable = stat.S_IMODE(os.stat(queue).st_mode) & 0o022
    except OSError:
        writable = 0
    return 0o644 | writable


def _mark_applied(batch: str) -> None:
    """Tell the waiters of a durably committed batch that their requests are applied.

    The mark (a modification time of 0 on each log of the batch) is only a hint
    read without the lock: a waiter that finds none learns its request's state
    under the lock.
    """
    for name in os.listdir(batch):
        # Not ours to change (another user's log), or gone: its waiters look under the lock.
        with contextlib.suppress(OSError):
            os.utime(f"{batch}/{name}", ns=(_APPLIED, _APPLIED))


_APPLIED = 0
"""The mark (modification time, ns) of a log whose requests a durable commit holds."""


def _mark(fd: int) -> int:
    return os.fstat(fd).st_mtime_ns


def _is_log(name: str) -> bool:
    return name.endswith(LOG_SUFFIX) and not name.startswith(".")


def _uncommitted(queue: str, entry: str) -> bool:
    """Whether a batch directory's requests still wait to be applied."""
    if entry.startswith(BATCH_PREFIX):
        return True
    return entry.startswith(STAGED_PREFIX) and os.path.lexists(f"{queue}/{entry}/{NEXT}")


def _waiting_log(queue: str, log_fd: int) -> str | None:
    """Under the lock: where the log open at ``log_fd`` waits, if its requests still do:
    the queue's log itself, or a log in a batch not yet committed."""
    if still_at(log_fd, f"{queue}/{INCOMING}"):
        return f"{queue}/{INCOMING}"
    try:
        entries = os.listdir(queue)
    except FileNotFoundError:
        return None
    for entry in entries:
        if _uncommitted(queue, entry):
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(f"{queue}/{entry}"):
                    if _is_log(name) and still_at(log_fd, f"{queue}/{entry}/{name}"):
                        return f"{queue}/{entry}/{name}"
    return None


def pending(queue: str | os.PathLike[str], log_fd: int) -> bool:
    """Under the lock: whether the requests of the log open at ``log_fd`` still wait."""
    if _mark(log_fd) == _APPLIED:
        return False
    return _waiting_log(os.fspath(queue), log_fd) is not None


def _withdrawal(name: str) -> bytes:
    return b"\n" + _WITHDRAWN + name.encode() + b"\n"


def _withdraw(queue: str, published: Published) -> bool:
    """Withdraw a request if its log is still incoming (a holder may take it up meanwhile)."""
    return _append_while_incoming(published.fd, f"{queue}/{INCOMING}", _withdrawal(published.name))


def _withdraw_anywhere(queue: str, published: Published) -> None:
    """Under the lock: withdraw a request from the log holding it, wherever that is, and
    remove a taken-up log (and its batch) left with no request."""
    record = _withdrawal(published.name)
    if os.write(published.fd, record) != len(record):
        raise OSError(errno.ENOSPC, "no room to withdraw a queued request whole")
    path = _waiting_log(queue, published.fd)
    if path is not None and path != f"{queue}/{INCOMING}" and not logged(_read_settled(path)):
        os.unlink(path)
        batch = os.path.dirname(path)
        if not any(_is_log(name) for name in os.listdir(batch)):
            _remove_batch(batch)
    _remove_if_empty(queue)


def _remove_batch(directory: str) -> None:
    """Remove a committed (or emptied) batch directory; what is left the next holder removes."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            _unlink_quietly(f"{directory}/{name}")
        os.rmdir(directory)


def _remove_if_empty(queue: str) -> None:
    """Remove the queue directory if nothing is left in it (else someone is queueing)."""
    with contextlib.suppress(OSError):
        os.rmdir(queue)


def _take_up(queue: str) -> str | None:
    """Under the lock: gather every uncommitted request's log into one new batch directory
    (removing committed batches whose holders died before removing them)."""
    try:
        entries = sorted(os.listdir(queue))
    except FileNotFoundError:
        return None
    if any(is_temp_name(entry) for entry in entries):
        sweep_stale_temps_in(queue, _QUEUE_TEMPS.__contains__)  # of killed holders
    sources = []
    for entry in entries:
        if _uncommitted(queue, entry):
            sources.append(f"{queue}/{entry}")
        elif entry.startswith(STAGED_PREFIX) and not _holder_alive(queue, entry):
            _remove_batch(f"{queue}/{entry}")  # committed; its holder died before removing it
    if not sources and INCOMING not in entries:
        if not any(entry.startswith(STAGED_PREFIX) for entry in entries):
            for entry in entries:  # nobody waits: gates left by waiters killed meanwhile
                if entry.startswith(GATE_PREFIX):
                    _unlink_quietly(f"{queue}/{entry}")
        _remove_if_empty(queue)
        return None
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    batch = f"{queue}/{BATCH_PREFIX}{token}"
    os.mkdir(batch)
    with contextlib.suppress(FileNotFoundError):  # no log: only dead holders' batches
        os.rename(f"{queue}/{INCOMING}", f"{batch}/{token}{LOG_SUFFIX}")
    for index, source in enumerate(sources):
        for name in os.listdir(source):
            if _is_log(name):  # a dead holder's logs; its ``next`` is left to go with it
                os.rename(f"{source}/{name}", f"{batch}/{index:04d}-{name}")
        _remove_batch(source)
    return batch


def _holder_alive(queue: str, entry: str) -> bool:
    """Whether the holder that made batch directory ``entry`` may still be finishing it
    (making it durable, marking it): its pid is alive, and it is not an hour old."""
    pid = entry.split("-")[1]
    if not pid.isdigit() or not pid_alive(int(pid)):
        return False
    try:
        changed = os.lstat(f"{queue}/{entry}").st_mtime
    except FileNotFoundError:
        return False
    return time.time() - changed < STALE_TEMP_AGE


def _non_finite(name: str) -> float:
    # Only a value read from a sidecar can be one (new data is refused before queueing):
    # it goes back as it was read.
    return ReadNonFinite(name.replace("Infinity", "inf"))


_REQUEST_DECODER = json.JSONDecoder(parse_constant=_non_finite)  # one, not one per request


def _read_settled(path: str) -> bytes:
    """Read a log taken up, once every append already under way has landed in it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # appenders hold it shared, for a moment each
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def logged(raw: bytes) -> dict[str, bytes]:
    """The requests a log holds, by name (in the order written), less those withdrawn."""
    found: dict[str, bytes] = {}
    for line in raw.split(b"\n"):
        if line.startswith(_WITHDRAWN):
            found.pop(line[1:].decode("utf-8", "replace"), None)
            continue
        name, space, data = line.partition(b" ")
        if space:
            found[name.decode("utf-8", "replace")] = data
        elif line:
            logger.warning("dropping a torn queued request (never acknowledged): %r", line[:80])
    return found


def _requests(batch: str) -> list[Any]:
    """The batch's requests, in arrival order; a torn one (a power cut) is dropped."""
    found: dict[str, bytes] = {}
    for name in os.listdir(batch):
        if _is_log(name):
            found.update(logged(_read_settled(f"{batch}/{name}")))
    requests = []
    for name in sorted(found):
        try:
            requests.append(_REQUEST_DECODER.decode(found[name].decode("utf-8")))
        except ValueError:
            logger.warning(
                "dropping torn queued request %s in %s (never acknowledged)", name, batch
            )
    return requests


def _existing_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def _staged(batch: str) -> str:
    head, name = os.path.split(batch)
    return f"{head}/{STAGED_PREFIX}{name[len(BATCH_PREFIX) :]}"


def _commit(target: Path, batch: str, encoded: bytes | None) -> str:
    """Stage the next document in the batch, then rename it over ``target``; return the batch.

    ``encoded`` None: the batch changes nothing; it is only marked applied.
    """
    if encoded is not None:
        write_new_file(f"{batch}/{NEXT}", encoded, _existing_mode(target))
    staged = _staged(batch)
    os.rename(batch, staged)
    if encoded is not None:
        os.rename(f"{staged}/{NEXT}", target)
    return staged


class Flushed(NamedTuple):
    """What is left to do once the lock is released: the directory fsync, marking the
    committed batches, opening their gates, removing them."""

    sync: bool
    committed: tuple[str, ...] = ()


def _apply_batch(
    target: Path, batch: str, apply: Apply, own: tuple[Any] | None, before: bytes, document: Any
) -> str:
    """Apply a taken-up batch (and ``own``) to ``document`` and commit it in one replace;
    return the committed batch (made durable and marked applied after the lock)."""
    for request in _requests(batch):
        document = apply(document, request)
    if own is not None:
        document = apply(document, own[0])
    encoded = encode_json(document, target)
    changed = encoded != before
    if not lock_still_held(target):
        # Someone deleted or replaced the lock file: another writer may hold "the" lock
        # now and be applying these very requests. Commit nothing; they stay queued.
        raise FileLockError(
            f"the lock file {lock_path_for(target)} was removed or replaced while held; "
            f"{target} was left as it was, retry the update",
            lock_path_for(target),
        )
    return _commit(target, batch, encoded if changed else None)


def _gate_of(queue: str, log_fd: int) -> str:
    """The gate of the log open at ``log_fd``: named by its inode, which a rename keeps."""
    return f"{queue}/{GATE_PREFIX}{os.fstat(log_fd).st_ino}"


def _put_up_gate(path: str) -> bool:
    """Make the gate at ``path`` unless it is up already; True if this call made it."""
    try:
        make_gate(path)
    except FileExistsError:
        return False
    return True


def _open_gates(queue: str, batch: str) -> None:
    """Open the gates of the batch's logs (its waiters go: marked, or to look under the
    lock) and take them down."""
    for name in os.listdir(batch):
        if not _is_log(name):
            continue
        with contextlib.suppress(FileNotFoundError):
            path = f"{queue}/{GATE_PREFIX}{os.lstat(f'{batch}/{name}').st_ino}"
            gate = take_gate(path)
            if gate is not None:
                _unlink_quietly(path)
                open_gate(gate)


def flush_queue(target: Path, apply: Apply, own: tuple[Any] | None) -> Flushed:
    """Under the lock: apply every queued request, then ``own``'s one, in one write.

    The batch's directory fsync, its marks and opening its logs' gates are left
    to :func:`finish_flush`, after the lock. A plain update (nothing queued)
    leaves its directory fsync to the caller after the lock too, as
    ``atomic_update_json`` does: the next writer's document holds it and is
    fsynced before it returns. On an error the gates are opened at once: their
    waiters look under the lock.
    """
    leftovers = sweep_if_interrupted(target)
    queue = _queue_of(os.fspath(target))
    batch = _take_up(queue)
    if batch is None:
        if own is None:
            return Flushed(False)
        before, document = load_for_update(target, None, False)
        return Flushed(write_if_changed(target, before, apply(document, own[0]), leftovers))
    try:
        before, document = load_for_update(target, None, False)
        return Flushed(True, (_apply_batch(target, batch, apply, own, before, document),))
    except BaseException:
        with contextlib.suppress(OSError):  # not committed: its waiters look under the lock
            _open_gates(queue, batch)
        raise


def finish_flush(target: Path, flushed: Flushed) -> None:
    """After the lock: make the commit durable, mark its requests applied, open their
    gates and remove the batches.

    The next holder may commit meanwhile: its document holds this one's, and it
    tells its own waiters only after its own directory fsync. The directory is
    fsynced even for a batch that changed nothing: the document it found may be
    a plain update's whose fsync is still to come.
    """
    try:
        if flushed.sync:
            fsync_directory(target.absolute().parent)
        for committed in flushed.committed:
            _mark_applied(committed)
    finally:
        for committed in flushed.committed:  # unmarked, its waiters look under the lock
            _open_gates(os.path.dirname(committed), committed)
    for committed in flushed.committed:
        _remove_batch(committed)
    if flushed.committed:
        _remove_if_empty(os.path.dirname(flushed.committed[0]))


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _apply_if_pending(
    target: Path, queue: str, published: Published, apply: Apply, timeout: float | None = 0.0
) -> bool:
    """Take the lock and, if the request ``published`` still waits, apply the queue.

    With the default ``timeout`` the lock is tried once: False if it is taken
    (whoever holds it, or the next holder, applies the queue). Otherwise a
    timeout raises :class:`FileLockTimeoutError`.
    """
    flushed = Flushed(False)  # applied and fsynced by another holder already
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(target, timeout))
        except FileLockTimeoutError:
            if timeout != 0.0:
                raise
            return False
        if pending(queue, published.fd):
            try:
                flushed = flush_queue(target, apply, None)
            except BaseException:
                _withdraw_anywhere(queue, published)
                raise
    finish_flush(target, flushed)
    return True


_LOOK_AGAIN = 0.002
"""How long (seconds) a waiter looking under the lock waits for it in shared mode before
it looks at its mark again. After ``_LOOKS`` looks in a row (the lock is held by
another kind of writer, or a long one), the wait doubles each time up to
``_LOOK_AT_MOST``."""
_LOOKS = 10
_LOOK_AT_MOST = 0.01
_STEP_ASIDE = 0.0002
_GATE_LOOK = 0.05
"""How long (seconds) a waiter waits at a gate before it makes sure someone holds the lock
(the gate of a log whose holder, or first waiter, died is never opened)."""


def _wait_and_apply(
    target: Path, published: Published, apply: Apply, timeout: float | None
) -> None:
    """Wait until the request ``published`` is applied, by a holder of the lock or by us.

    The first waiter to queue since the last holder took the queue up waits for
    the lock and applies the queue. The others wait at their log's gate, which
    lets every waiter of a batch through at once when the batch is durable; one
    whose request is marked applied returns. One that is not waits a moment for
    the lock in shared mode (granted to all at once when the holder lets go),
    looks under it whether its request still waits, and if so tries the lock
    once: the first to get it applies every queued request. Every wait is in
    steps that look at the mark in between, so that no waiter sits in a lock's
    queue while writers that come later take the lock before it.
    """
    queue = _queue_of(os.fspath(target))
    deadline = None if timeout is None else time.monotonic() + timeout
    extended = False
    while True:
        try:
            if not extended and published.first:
                _apply_if_pending(target, queue, published, apply, _remaining(deadline))
                return
            if _look_until_applied(target, queue, published, apply, deadline):
                return
        except FileLockTimeoutError as exc:
            if extended or _withdraw(queue, published):
                if not extended:
                    raise
                raise FileLockTimeoutError(
                    f"{exc}; the update was already taken up by the writer holding the lock "
                    "and may still be applied",
                    exc.path,
                ) from exc
            # Taken up by the holder, who is applying it right now: wait for it once more.
            extended = True
            deadline = None if timeout is None else time.monotonic() + timeout
        except BaseException:
            _withdraw(queue, published)
            raise


def _look_until_applied(
    target: Path, queue: str, published: Published, apply: Apply, deadline: float | None
) -> bool:
    """One wait of :func:`_wait_and_apply` (True once applied; a timeout raises)."""
    gate_path = _gate_of(queue, published.fd)
    passed: int | None = None
    made: bool | None = None
    looks = collisions = 0
    shared: SharedLockWait | None = None
    try:
        while True:
            if _mark(published.fd) == _APPLIED:
                if made:  # put up after the holder opened the gate there: nobody waits at it
                    _unlink_quietly(gate_path)
                return True
            gate = find_gate(gate_path, passed)
            if gate is None and made is None:
                with contextlib.suppress(OSError):  # no queue left, say: look under the lock
                    made = _put_up_gate(gate_path)
                gate = find_gate(gate_path, passed)
            if gate is not None:
                with gate:
                    if shared is not None:  # a shared lock held here would keep a holder out
                        shared.close()
                        shared = None
                    if _mark(published.fd) == _APPLIED:
                        continue  # applied, and its gate opened, before this one was found
                    remaining = _remaining(deadline)
                    look = _GATE_LOOK if remaining is None else min(_GATE_LOOK, remaining)
                    opened = gate.wait(look)
                if opened:
                    passed, looks, collisions = gate.inode, 0, 0
                    continue
                if remaining is not None and remaining <= look:
                    raise FileLockTimeoutError(
                        f"timed out waiting at {gate_path} for the writer holding "
                        f"{lock_path_for(target)}",
                        lock_path_for(target),
                    )
                if held_exclusively(target):
                    continue  # its opener (or the next holder) is at work: wait on
                passed = gate.inode  # nobody will open it: look under the lock
            if shared is None:
                shared = SharedLockWait(target)
            look = min(_LOOK_AGAIN * 2 ** min(max(0, looks - _LOOKS), 8), _LOOK_AT_MOST)
            remaining = _remaining(deadline)
            if not shared.acquired(look if remaining is None else min(look, remaining)):
                if remaining is not None and remaining <= look:
                    raise FileLockTimeoutError(
                        f"timed out waiting for lock {shared.lock_path}; another writer holds it",
                        shared.lock_path,
                    )
                looks += 1
                continue
            contended = shared.waited
            try:
                waiting = pending(queue, published.fd)
            finally:
                shared.close()
                shared = None
            if not waiting:
                return True
            if _apply_if_pending(target, queue, published, apply):
                return True
            collisions = collisions + 1 if not contended else 0
            if collisions > 1:
                # Again others let in at once with us hold it shared for a moment: step
                # aside a random moment instead of trying again together.
                time.sleep(random.uniform(0.0, _STEP_ASIDE * min(collisions, 8)))
    finally:
        if shared is not None:
            shared.close()


def grouped_update_json(
    path: str | os.PathLike[str],
    request: Any,
    apply: Apply,
    timeout: float | None = 30.0,
    *,
    queue: bool = True,
) -> None:
    """Apply ``request`` to a JSON document with ``apply``, sharing one write with other waiters.

    ``request`` is JSON data; ``apply(document, request)`` returns the new
    document (``document`` is None while the file does not exist) and may
    raise to refuse it. If the lock is free the caller applies whatever is
    queued and its own request at once; if it is taken (and ``queue``) the
    request is queued and applied by the holder, or by the caller once it gets
    the lock. ``queue=False`` waits for the lock without queueing (for a
    request that needs the document to exist). An error raised by ``apply``
    while this caller holds the lock reaches this caller, and its request is
    withdrawn.
    """
    target = Path(path)
    data = encode_json_compact(request, target)  # refuse what JSON cannot hold before anything
    if queue and os.path.lexists(f"{_queue_of(os.fspath(target))}/{INCOMING}"):
        # Others queue already: a holder is applying a batch, or about to.
        _wait_as_waiter(target, data, apply, timeout)
        return
    busy = False
    flushed = Flushed(False)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(target, 0.0 if queue else timeout))
        except FileLockTimeoutError:
            if not queue:
                raise
            busy = True
        else:
            flushed = flush_queue(target, apply, (request,))
    finish_flush(target, flushed)
    if busy:
        _wait_as_waiter(target, data, apply, timeout)


def _wait_as_waiter(target: Path, data: bytes, apply: Apply, timeout: float | None) -> None:
    """Queue a request and wait until it is applied (:func:`_wait_and_apply`)."""
    published = _publish(_queue_of(os.fspath(target)), data)
    try:
        _wait_and_apply(target, published, apply, timeout)
    finally:
        os.close(published.fd)
