"""Crash-safe replacement of files: a reader sees the old bytes or the new, never a mix.

Recipe: write a temp file in the target's directory, fsync it, ``os.replace``
it over the target, fsync the directory. Temp files carry the writer's pid so
that a later writer can tell leftovers of killed writers from live work.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

TEMP_SUFFIX = ".ih5tmp"
_TEMP_NAME = re.compile(  # \Z, not $: "$" also matches before a trailing newline
    r"^\.(?P<target>.+)\.(?P<pid>\d+)-[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + r"\Z"
)

STALE_TEMP_AGE = 3600.0
"""Temp files older than this (seconds) are stale even if their pid is alive (pid reuse)."""


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """Return a fresh, unique temp path beside ``path`` that names this process."""
    target = Path(path)
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}.{os.getpid()}-{token}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """Tell whether a file name is one of ih5's temp files."""
    return _TEMP_NAME.match(name) is not None


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename or unlink inside ``directory`` durable."""
    if os.name == "nt":  # pragma: no cover - Windows cannot open or fsync a directory
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _existing_mode(path: str | os.PathLike[str]) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def replace_file(temp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Durably move a complete, closed ``temp`` file over ``target`` in the same directory."""
    fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, target)
    fsync_directory(Path(target).absolute().parent)


def write_new_file(
    path: str | os.PathLike[str], data: bytes | bytearray | memoryview, mode: int | None = None
) -> None:
    """Create ``path`` (it must not exist), write ``data``, fsync; remove it on any failure.

    ``mode`` sets the permission bits (default 0644 under the umask).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _unlink_quietly(path)
        raise


def atomic_write_bytes(
    path: str | os.PathLike[str],
    data: bytes | bytearray | memoryview,
    *,
    sync_directory: bool = True,
) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    The new file keeps the permission bits of the file it replaces; a new
    file gets 0644 under the umask. On any failure the temp file is removed
    and ``path`` is unchanged. ``sync_directory=False`` leaves the final
    directory fsync (which makes the rename durable) to the caller.
    """
    target = Path(path)
    temp = temp_path_for(target)
    write_new_file(temp, data, _existing_mode(target))
    try:
        os.replace(temp, target)
    except BaseException:
        _unlink_quietly(temp)
        raise
    if sync_directory:
        fsync_directory(target.absolute().parent)


def pid_alive(pid: int) -> bool:
    """Tell whether a process ``pid`` exists on this host (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_files_for(path: str | os.PathLike[str]) -> list[Path]:
    """ih5 temp files of ``path`` that exist right now (of live or dead writers)."""
    target = Path(path)
    directory = target.absolute().parent
    with os.scandir(directory) as entries:
        return [
            Path(entry.path)
            for entry in entries
            if (match := _TEMP_NAME.match(entry.name)) and match["target"] == target.name
        ]


def sweep_stale_temp_files(
    path: str | os.PathLike[str], max_age: float = STALE_TEMP_AGE
) -> list[Path]:
    """Remove temp files for ``path`` left by writers that died; return what was removed.

    A temp file is stale when its writer process no longer exists or it is
    older than ``max_age`` seconds. Call it while holding the target's lock.
    """
    target = Path(path)
    return sweep_stale_temps_in(target.absolute().parent, target.name.__eq__, max_age)


def sweep_stale_temps_in(
    directory: str | os.PathLike[str],
    for_target: Callable[[str], bool],
    max_age: float = STALE_TEMP_AGE,
) -> list[Path]:
    """Remove stale temp files in ``directory`` whose target name ``for_target`` accepts."""
    removed: list[Path] = []
    now = time.time()
    with os.scandir(directory) as entries:
        for entry in entries:
            match = _TEMP_NAME.match(entry.name)
            if match is None or not for_target(match["target"]):
                continue
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if age > max_age or not pid_alive(int(match["pid"])):
                _unlink_quietly(entry.path)
                removed.append(Path(entry.path))
    if removed:
        fsync_directory(directory)
    return removed


_STAGE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class StagedFile:
    """A new file streamed to a temp name in its directory, then published whole.

    Readers never see it half-written: :meth:`seal` makes the bytes durable with
    their final mode and time, :meth:`publish` gives the file its name in one step.
    Leaving the ``with`` block without publishing removes the temp file. The
    directory is a path or, to stay beneath a root opened without following links,
    a descriptor (``dir_fd``); names are then relative to it. ``label`` names the
    temp file (``.LABEL.PID-TOKEN.ih5tmp``): short, so that it fits NAME_MAX
    whatever the final name.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        dir_fd: int | None = None,
        label: str = "ih5-stage",
    ) -> None:
        if (directory is None) == (dir_fd is None):
            raise TypeError("StagedFile needs either a directory or a dir_fd")
        self._directory = directory
        self._dir_fd = dir_fd
        self.temp_name = f".{label}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
        fd = os.open(self._at(self.temp_name), _STAGE_FLAGS, 0o600, dir_fd=dir_fd)
        try:
            self.stream: BinaryIO = open(fd, "wb")  # noqa: SIM115 - closed by seal/discard
        except BaseException:
            os.close(fd)
            os.unlink(self._at(self.temp_name), dir_fd=dir_fd)
            raise
        self._staged = True

    def _at(self, name: str) -> str:
        return name if self._directory is None else os.path.join(self._directory, name)

    def seal(self, mode: int, mtime_ns: int | None = None) -> None:
        """Flush, set the final mode (after the last write: writing clears setuid bits) and
        modification time, fsync, and close the file."""
        self.stream.flush()
        fd = self.stream.fileno()
        os.fchmod(fd, mode)
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        os.fsync(fd)
        self.stream.close()

    def publish(self, name: str, *, replace: bool = True) -> None:
        """Give the sealed file ``name``: rename over it, or (``replace=False``) hard-link it
        and refuse an existing ``name`` with FileExistsError."""
        temp, target, fd = self._at(self.temp_name), self._at(name), self._dir_fd
        if replace:
            os.rename(temp, target, src_dir_fd=fd, dst_dir_fd=fd)
        else:
            os.link(temp, target, src_dir_fd=fd, dst_dir_fd=fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=self._dir_fd)
        self._staged = False

    def discard(self) -> None:
        """Close and remove the temp file, quietly (this runs while another error propagates)."""
        with contextlib.suppress(OSError):
            self.stream.close()
        if self._staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._at(self.temp_name), dir_fd=self._dir_fd)
            self._staged = False

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()
