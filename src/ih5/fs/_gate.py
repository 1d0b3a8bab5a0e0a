"""Gates: named pipes (FIFOs) that let every process waiting at them through at once.

A gate is a FIFO at a known path. Waiters open it for reading and ``poll`` it,
each in its own thread with its own timeout and no helper thread; the gate is
opened by writing one byte into it, which every reader sees at once. Unlike a
lock, anyone holding its path can open a gate, so the writer that sets up the
next gate need not be the one that opens it. Nobody reads the byte: it stays
while anyone has the gate open, and the pipe's buffer goes with the last of
them, leaving nothing on disk but the name (which its opener removes).

A gate says nothing about whether anyone will open it: a waiter whose wait
times out looks elsewhere (the lock) to learn whether its opener is alive.
"""

from __future__ import annotations

import os
import select
import stat

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPENER_FLAGS = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | _NOFOLLOW
_WAITER_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | _NOFOLLOW
_SEEN = select.POLLIN | select.POLLHUP | select.POLLERR


def make_gate(path: str) -> None:
    """Create a gate at ``path`` (it must not exist: FileExistsError otherwise).

    Nobody opens it for writing until it is opened: a reader that found it
    meanwhile would take a writer that came and went for the gate opening.
    """
    os.mkfifo(path, 0o644)


def take_gate(path: str) -> int | None:
    """A descriptor to open the gate at ``path`` with, or None when no gate is there."""
    try:
        fd = os.open(path, _OPENER_FLAGS)
    except OSError:
        return None
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def open_gate(fd: int) -> None:
    """Let every waiter at the gate through, and close ``fd``."""
    try:
        os.write(fd, b"\0")
    except BlockingIOError:  # pragma: no cover - the pipe is full: it is open already
        pass
    finally:
        os.close(fd)


class GateWait:
    """A gate found open for reading: wait at it (:meth:`wait`), then :meth:`close` it."""

    __slots__ = ("_fd", "inode")

    def __init__(self, fd: int, inode: int) -> None:
        self._fd = fd
        self.inode = inode

    def wait(self, timeout: float | None) -> bool:
        """Whether the gate opens within ``timeout`` seconds (None: however long it takes)."""
        poller = select.poll()
        poller.register(self._fd, _SEEN)
        milliseconds = -1 if timeout is None else max(0, round(timeout * 1000))
        return bool(poller.poll(milliseconds))

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> GateWait:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_gate(path: str, passed: int | None = None) -> GateWait | None:
    """The gate at ``path``, to wait at; None when there is none there, or only ``passed``
    (the inode of a gate waited at before: still up while its opener finishes)."""
    try:
        fd = os.open(path, _WAITER_FLAGS)
    except OSError:  # none up, or something else in its place: the caller looks elsewhere
        return None
    try:
        info = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISFIFO(info.st_mode) or info.st_ino == passed:
        os.close(fd)
        return None
    return GateWait(fd, info.st_ino)
