"""Exclusive locks on a sidecar lock file, safe across processes and threads.

The lock for ``target`` lives in ``target + ".lock"``, which is never deleted:
deleting a lock file after releasing it lets two processes hold "the" lock on
different inodes, the bug that lost updates in the published implementation.

Lock files are never written: they are opened read-only (``flock`` needs no
write access, so a lock file another user created still works) and never
through a symlink (``O_NOFOLLOW``), because a writer running as root must not
create, truncate or lock a file that someone pointed the lock name at.

Waiting hands over at once: a contended acquire blocks in ``flock`` on a
helper thread (the kernel wakes it the moment the holder unlocks) while the
caller waits for that thread with a deadline on the monotonic clock. Helper
threads are kept for a moment once idle and reused: starting a thread costs
several times the handover itself.
"""

from __future__ import annotations

import errno
import functools
import os
import queue
import socket
import stat
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ih5.errors import FileLockError, FileLockSymlinkError, FileLockTimeoutError
from ih5.fs._filestate import still_at
from ih5.fs._oserrors import storage_error

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; importing ih5 must still work
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"

_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


def lock_path_for(path: str | os.PathLike[str]) -> Path:
    """Return the lock file that guards ``path`` (its name + ``.lock``)."""
    return Path(_lock_file_of(path))


def _lock_file_of(path: str | os.PathLike[str]) -> str:
    # A string: the update paths build it several times per update, pathlib costs.
    return os.fspath(path) + LOCK_SUFFIX


def _flock_error(exc: OSError, lock_path: str) -> OSError:
    """Turn an ``flock`` failure into an OSError of the same kind naming the lock file."""
    code = exc.errno if exc.errno is not None else errno.EIO
    reason = os.strerror(code)
    if code in _UNSUPPORTED:
        reason += "; this filesystem does not support file locking, keep the file on a local disk"
    return OSError(code, reason, lock_path)


def _require_flock(lock_path: str) -> None:
    if fcntl is None:  # pragma: no cover - only reached on Windows
        raise FileLockError(
            f"cannot lock {lock_path}: ih5's file locks need a POSIX system (Linux, macOS)",
            lock_path,
        )


# O_NONBLOCK: opening a FIFO put in the lock file's place must not hang (files ignore it).
_OPEN_FLAGS = (
    os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
)


def _symlink_error(lock_path: str) -> FileLockSymlinkError:
    return FileLockSymlinkError(
        f"lock file {lock_path} is a symlink; refusing to follow it (it could point at "
        "any file); remove the link, ih5 creates a plain lock file in its place",
        lock_path,
    )


def _open_lock_file(lock_path: str) -> int:
    """Open the lock file read-only, creating it if missing; never through a symlink.

    Opening an existing file without ``O_CREAT`` first lets a lock file owned by
    another user be used even where the kernel protects files in sticky
    directories against ``O_CREAT`` opens. Other OS errors (permission denied,
    not a directory, too many open files) propagate as they are: they are never
    a sign that the lock is busy.
    """
    while True:
        try:
            try:
                fd = os.open(lock_path, _OPEN_FLAGS)
            except FileNotFoundError:
                try:
                    fd = os.open(lock_path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    continue  # someone else created it (or a link) meanwhile: open that
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _symlink_error(lock_path) from exc
            where = os.path.dirname(os.path.abspath(lock_path))
            typed = storage_error(exc, where, f"opening the lock file {lock_path}")
            if typed is not None:
                raise typed from exc
            raise
        try:
            mode = os.fstat(fd).st_mode
        except BaseException:
            os.close(fd)
            raise
        if stat.S_ISREG(mode):
            return fd
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), lock_path)
        raise FileLockError(f"lock file {lock_path} is not a regular file; remove it", lock_path)


def _try_flock(fd: int, lock_path: str, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        raise _flock_error(exc, lock_path) from exc
    return True


def _close_lock_fd(fd: int, *, locked: bool) -> None:
    """Close a lock descriptor, unlocking it first if it holds the lock.

    Closing alone does not release a lock whose open file is shared with a
    child forked meanwhile: the child's copy would keep it locked.
    """
    try:
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


WAIT_THREAD_PREFIX = "ih5-lock-wait:"
"""Name prefix of a helper thread while it blocks in ``flock`` for a caller."""
IDLE_THREAD_NAME = "ih5-lock-idle"
_IDLE_SECONDS = 1.0
"""How long an idle helper thread waits for the next wait before it ends."""


class _FlockWait:
    """One blocking ``flock`` run by a helper thread, which its caller may abandon.

    The wait owns ``fd`` until :meth:`wait` reports success; a wait that is
    abandoned unlocks and closes ``fd`` itself once ``flock`` returns,
    releasing the lock it may just have been handed.
    """

    __slots__ = ("_abandoned", "_done", "_error", "_finished", "_mutex", "fd", "lock_path", "mode")

    def __init__(self, fd: int, lock_path: str, mode: int) -> None:
        self.fd = fd
        self.lock_path = lock_path
        self.mode = mode
        self._mutex = threading.Lock()
        self._finished = threading.Lock()
        self._finished.acquire()  # released once flock has returned
        self._done = False
        self._abandoned = False
        self._error: OSError | None = None

    def run(self) -> None:
        """On the helper thread: block in ``flock``, then hand over or clean up."""
        error: OSError | None = None
        try:
            fcntl.flock(self.fd, self.mode)
        except OSError as exc:
            error = _flock_error(exc, self.lock_path)
        with self._mutex:
            if self._abandoned:
                _close_lock_fd(self.fd, locked=error is None)
                return
            self._error = error
            self._done = True
            self._finished.release()

    def wait(self, timeout: float | None) -> bool:
        """Wait for the lock; True hands ``fd`` (locked) back to the caller."""
        interrupted = True
        try:
            self._finished.acquire(timeout=-1 if timeout is None else timeout)
            interrupted = False
        finally:
            with self._mutex:
                taken = self._done
                self._abandoned = not taken
            if taken and (interrupted or self._error is not None):
                _close_lock_fd(self.fd, locked=self._error is None)
        if self._error is not None:
            raise self._error
        return taken

    def finished_within(self, timeout: float | None) -> bool:
        """Whether ``flock`` returns within ``timeout``; a False keeps the wait going."""
        if self._finished.acquire(timeout=-1 if timeout is None else timeout):
            self._finished.release()  # for :meth:`wait`, which takes the result
            return True
        return False


class _WaitPool:
    """Helper threads that run :class:`_FlockWait` s, started on demand, reused while warm."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._idle: list[queue.SimpleQueue[_FlockWait]] = []

    def start(self, wait: _FlockWait) -> _FlockWait:
        """Have an idle helper (or a new one) run ``wait``; returns it."""
        with self._mutex:
            inbox = self._idle.pop() if self._idle else None
        if inbox is not None:
            inbox.put(wait)
            return wait
        fresh: queue.SimpleQueue[_FlockWait] = queue.SimpleQueue()
        name = WAIT_THREAD_PREFIX + wait.lock_path
        threading.Thread(target=self._serve, args=(fresh, wait), name=name, daemon=True).start()
        return wait

    def _serve(self, inbox: queue.SimpleQueue[_FlockWait], wait: _FlockWait) -> None:
        me = threading.current_thread()
        while True:
            me.name = WAIT_THREAD_PREFIX + wait.lock_path
            wait.run()
            me.name = IDLE_THREAD_NAME
            with self._mutex:
                self._idle.append(inbox)
            try:
                wait = inbox.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._mutex:
                    if any(entry is inbox for entry in self._idle):
                        self._idle = [entry for entry in self._idle if entry is not inbox]
                        return
                wait = inbox.get()  # a caller took this helper just as it timed out


_waits = _WaitPool()


def _remaining(deadline: float) -> float | None:
    return None if deadline == float("inf") else max(0.0, deadline - time.monotonic())


def _timeout_error(lock_path: str, timeout: float | None) -> FileLockTimeoutError:
    return FileLockTimeoutError(
        f"timed out after {timeout} s waiting for lock {lock_path}; another writer holds it",
        lock_path,
    )


def _lock_fd(lock_path: str, deadline: float, timeout: float | None) -> int:
    """Open and lock the lock file exclusively; return the descriptor."""
    return _lock_fd_waited(lock_path, deadline, timeout)[0]


def _lock_fd_waited(
    lock_path: str, deadline: float, timeout: float | None, *, shared: bool = False
) -> tuple[int, bool]:
    """Open and lock the lock file (exclusively unless ``shared``); return the descriptor
    and whether it had to wait for another holder."""
    _require_flock(lock_path)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    waited = False
    while True:
        fd = _open_lock_file(lock_path)
        waiter = None
        try:
            taken = _try_flock(fd, lock_path, mode)
            remaining = _remaining(deadline)
            if not taken and remaining == 0.0:
                # Out of time already (``timeout=0`` tries once): a waiter
                # thread would only hold a descriptor until the holder unlocks.
                raise _timeout_error(lock_path, timeout)
            if not taken:
                waiter = _waits.start(_FlockWait(fd, lock_path, mode))
                waited = True
        except BaseException:
            os.close(fd)
            raise
        if waiter is not None and not waiter.wait(remaining):
            raise _timeout_error(lock_path, timeout)
        try:
            current = still_at(fd, lock_path)
        except BaseException:
            _close_lock_fd(fd, locked=True)
            raise
        if current:
            return fd, waited
        # Someone removed or replaced the lock file while we waited (an
        # older tool that deletes its lock files): our lock guards nothing.
        _close_lock_fd(fd, locked=True)


class _PathLock:
    """One lock path within this process: re-entrant per thread, exclusive across threads."""

    def __init__(self, lock_path: str) -> None:
        self.lock_path = lock_path
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self.fd = -1

    def acquire(self, timeout: float | None) -> None:
        deadline = float("inf") if timeout is None else time.monotonic() + timeout
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            while self._owner is not None:
                remaining = _remaining(deadline)
                if remaining == 0.0:
                    raise _timeout_error(self.lock_path, timeout)
                self._cond.wait(remaining)
            self._owner = me
        try:
            fd = _lock_fd(self.lock_path, deadline, timeout)
        except BaseException:
            with self._cond:
                self._owner = None
                self._cond.notify()
            raise
        self.fd = fd
        self._depth = 1

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise FileLockError(
                    f"lock {self.lock_path} is not held by this thread", self.lock_path
                )
            self._depth -= 1
            if self._depth:
                return
            fd, self.fd = self.fd, -1
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
                self._owner = None
                self._cond.notify()

    def held_fd(self) -> int:
        """The locked descriptor, for the thread that holds the lock."""
        if self._owner != threading.get_ident() or self.fd < 0:
            raise FileLockError(f"lock {self.lock_path} is not held by this thread", self.lock_path)
        return self.fd


_registry: weakref.WeakValueDictionary[str, _PathLock] = weakref.WeakValueDictionary()
"""One entry per lock file (by its real path) while anyone holds or waits for it.

Holders and waiters keep their entry alive; an entry nobody uses goes away with its
last reference (as py-filelock's weak registry does), so that a process locking many
distinct paths over its life does not keep one entry per path forever.
"""
_registry_mutex = threading.Lock()


@functools.lru_cache(maxsize=256)
def _real_directory(directory: str) -> str:
    """The real path of a lock file's directory (cached: realpath lstats every component)."""
    return os.path.realpath(directory)


def _path_lock(lock_path: str) -> _PathLock:
    # Only the directory is resolved: a lock file that is a symlink must stay one
    # here, so that opening it is refused instead of locking what it points at.
    directory, name = os.path.split(os.path.abspath(lock_path))
    key = os.path.join(_real_directory(directory), name)
    with _registry_mutex:
        entry = _registry.get(key)
        if entry is None:
            entry = _registry[key] = _PathLock(key)
        return entry


def _forget_locks_after_fork() -> None:
    # A forked child holds none of its parent's locks: drop the copies of the
    # descriptors without unlocking (that would unlock the parent's lock too).
    global _registry_mutex, _waits
    for entry in list(_registry.values()):
        if entry.fd >= 0:
            os.close(entry.fd)
    _registry.clear()
    _registry_mutex = threading.Lock()
    _waits = _WaitPool()  # its helper threads stayed in the parent


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks_after_fork)


def held_lock_fd(path: str | os.PathLike[str]) -> int:
    """The open (read-only) descriptor of the lock on ``path`` that this thread holds."""
    return _path_lock(_lock_file_of(path)).held_fd()


def lock_still_held(path: str | os.PathLike[str]) -> bool:
    """Whether the lock this thread holds on ``path`` still guards it (its lock file was
    neither deleted nor replaced since it was taken): checked right before a commit."""
    entry = _path_lock(_lock_file_of(path))
    return still_at(entry.held_fd(), entry.lock_path)


@contextmanager
def file_lock(path: str | os.PathLike[str], timeout: float | None = 30.0) -> Iterator[Path]:
    """Hold the exclusive lock guarding ``path`` for the ``with`` block.

    ``timeout`` is in seconds (``None`` waits forever, ``0`` tries once); a
    timeout raises :class:`FileLockTimeoutError` naming the lock file. The
    lock is re-entrant within one thread. Yields the lock file's path.
    """
    entry = _path_lock(_lock_file_of(path))
    entry.acquire(timeout)
    try:
        yield Path(entry.lock_path)
    finally:
        entry.release()


@contextmanager
def shared_file_lock(path: str | os.PathLike[str], timeout: float | None = 30.0) -> Iterator[Path]:
    """Hold the lock guarding ``path`` in shared mode: granted while nobody holds it exclusively.

    For waiting until the current holder is done without queueing for the lock
    itself; every shared waiter is let in at once. Not re-entrant, and it waits
    for an exclusive holder in this process too. Timeouts as :func:`file_lock`.
    """
    fd, _ = take_shared_lock(path, timeout)
    try:
        yield lock_path_for(path)
    finally:
        release_shared_lock(fd)


def take_shared_lock(path: str | os.PathLike[str], timeout: float | None) -> tuple[int, bool]:
    """Take the lock guarding ``path`` in shared mode, as :func:`shared_file_lock` does.

    Returns the locked descriptor (release it with :func:`release_shared_lock`) and
    whether it had to wait: False when nobody held the lock exclusively.
    """
    lock_path = _lock_file_of(path)
    deadline = float("inf") if timeout is None else time.monotonic() + timeout
    return _lock_fd_waited(lock_path, deadline, timeout, shared=True)


def release_shared_lock(fd: int) -> None:
    """Release (and close) a lock taken by :func:`take_shared_lock`."""
    _close_lock_fd(fd, locked=True)


class SharedLockWait:
    """A wait for the lock guarding ``path`` in shared mode that its caller looks at in steps.

    Between two looks (:meth:`acquired`) the caller may look at other things; the
    wait goes on meanwhile (one helper thread, not one per look). ``waited`` tells
    whether an exclusive holder was in when it began. :meth:`close` releases the
    lock or gives the wait up. A lock file replaced meanwhile is waited for anew.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.lock_path = _lock_file_of(path)
        _require_flock(self.lock_path)
        self.waited = False
        self._fd = -1
        self._wait: _FlockWait | None = None
        self._start()

    def _start(self) -> None:
        fd = _open_lock_file(self.lock_path)
        try:
            if not _try_flock(fd, self.lock_path, fcntl.LOCK_SH):
                self._wait = _waits.start(_FlockWait(fd, self.lock_path, fcntl.LOCK_SH))
                self.waited = True
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def acquired(self, timeout: float | None) -> bool:
        """Whether the lock is held (shared) within ``timeout``."""
        while True:
            wait = self._wait
            if wait is not None:
                if not wait.finished_within(timeout):
                    return False
                self._wait = None
                if not wait.wait(0.0):  # pragma: no cover - it has finished
                    return False
            if still_at(self._fd, self.lock_path):
                return True
            # The lock file was removed or replaced while we waited: wait for the new one.
            _close_lock_fd(self._fd, locked=True)
            self._fd = -1
            self._start()

    def close(self) -> None:
        """Release the lock, or give the wait up (the helper unlocks if it is handed it)."""
        wait, fd = self._wait, self._fd
        self._wait, self._fd = None, -1
        if wait is not None:
            if wait.wait(0.0):  # handed the lock just now
                _close_lock_fd(fd, locked=True)
        elif fd >= 0:
            _close_lock_fd(fd, locked=True)


def held_exclusively(path: str | os.PathLike[str]) -> bool:
    """Whether someone holds the lock guarding ``path`` exclusively, right now."""
    lock_path = _lock_file_of(path)
    _require_flock(lock_path)
    fd = _open_lock_file(lock_path)
    taken = False
    try:
        taken = _try_flock(fd, lock_path, fcntl.LOCK_SH)
    finally:
        _close_lock_fd(fd, locked=taken)
    return not taken


def lock_holder(path: str | os.PathLike[str]) -> str:
    """Who holds the lock guarding ``path``, as the kernel lists flock holders (Linux)."""
    try:
        info = os.stat(lock_path_for(path))
        with open("/proc/locks") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return "another process"
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:
        fields = line.split()
        if "->" not in fields and len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == device:
            return f"pid {fields[4]} on {socket.gethostname()}"
    return "another process"
