"""The local directory store: publishing by hard link, which refuses an existing name."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import warnings
from pathlib import Path
from typing import BinaryIO

from ih5.errors import StoreWarning
from ih5.fs import fsync_directory

_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
"""What ``link()`` raises on a filesystem without hard links (FAT, some network mounts)."""

_warned: set[str] = set()
_warned_mutex = threading.Lock()


class LocalStore:
    """A record's directory on a local or mounted filesystem."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    @property
    def location(self) -> str:
        """The directory, as given."""
        return str(self.directory)

    @property
    def staging_dir(self) -> Path:
        """Staged files live beside the published ones, so publishing never copies."""
        return self.directory

    def describe(self, name: str) -> str:
        """The path of ``name``."""
        return str(self.directory / name)

    def names(self) -> list[str]:
        """Every file name in the directory (a missing directory holds none)."""
        try:
            with os.scandir(self.directory) as entries:
                return [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
        except FileNotFoundError:
            return []

    def exists(self, name: str) -> bool:
        """Tell whether ``name`` exists (as anything: a directory also blocks publishing)."""
        return os.path.lexists(self.directory / name)

    def local_path(self, name: str) -> Path:
        """The file itself."""
        return self.directory / name

    def read_bytes(self, name: str) -> bytes:
        """The file's bytes."""
        return (self.directory / name).read_bytes()

    def open_binary(self, name: str) -> BinaryIO:
        """The file, opened for reading."""
        return open(self.directory / name, "rb")

    def size(self, name: str) -> int:
        """The file's size."""
        return (self.directory / name).stat().st_size

    def publish(self, staged: Path, name: str) -> bool:
        """Hard-link ``staged`` to ``name`` (the kernel refuses an existing name), drop ``staged``.

        On a filesystem without hard links this falls back to a checked rename,
        which is safe only under the record's lock, and warns once per directory.
        """
        final = self.directory / name
        try:
            os.link(staged, final)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            self._warn_no_links()
            if os.path.lexists(final):
                return False
            os.rename(staged, final)
            return True
        # Published: a staged name left behind is only a second link to the same bytes,
        # which its writer's successors drop.
        with contextlib.suppress(OSError):
            os.unlink(staged)
        return True

    def _warn_no_links(self) -> None:
        key = str(self.directory.absolute())
        with _warned_mutex:
            if key in _warned:
                return
            _warned.add(key)
        warnings.warn(
            f"{self.directory} is on a filesystem without hard links: ih5 publishes there "
            "with a checked rename, which is safe only while every writer takes the "
            "record's lock",
            StoreWarning,
            stacklevel=4,
        )

    def remove(self, name: str) -> None:
        """Unlink ``name`` if present."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.directory / name)

    def sync(self) -> None:
        """fsync the directory."""
        fsync_directory(self.directory)
