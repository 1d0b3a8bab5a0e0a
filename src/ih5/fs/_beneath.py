"""Open and create paths below a directory descriptor, never following a symlink on the way.

Packing reads and unpacking writes in directories other people write into at
the same time. Resolving a path string each time lets anyone swap a component
for a symlink between a check and a use; walking from a directory descriptor
with ``O_NOFOLLOW`` at every step cannot be redirected: a swapped-in link
makes the open fail with ``ELOOP`` (or ``ENOTDIR``) instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | _NOFOLLOW
"""Open one directory component: no link followed."""
FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
"""Open a file to read: no link followed; O_NONBLOCK so a FIFO swapped in cannot hang us."""


def open_root(path: str | os.PathLike[str]) -> int:
    """Open the directory a caller named (its own path may contain links the caller chose)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_directory_beneath(root_fd: int, parts: Sequence[str]) -> int:
    """Open the directory ``root/parts[0]/.../parts[-1]`` without following links; caller closes."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            child = os.open(part, DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file_beneath(root_fd: int, relative: str) -> int:
    """Open the file at POSIX path ``relative`` below ``root_fd`` read-only, no link followed."""
    *parents, name = relative.split("/")
    parent = open_directory_beneath(root_fd, parents)
    try:
        return os.open(name, FILE_FLAGS, dir_fd=parent)
    finally:
        os.close(parent)


class DirectoryWalker:
    """Hands out descriptors of directories below a root, keeping the current branch open.

    Paths visited in tree order reuse the descriptors of their common prefix,
    so a walk costs one open per directory and holds at most depth descriptors.
    """

    def __init__(self, root_fd: int) -> None:
        self._root = root_fd
        self._branch: list[tuple[str, int]] = []

    def fd(self, parts: Sequence[str]) -> int:
        """The descriptor of directory ``parts`` (empty: the root); valid until the next call."""
        keep = 0
        while (
            keep < len(self._branch) and keep < len(parts) and self._branch[keep][0] == parts[keep]
        ):
            keep += 1
        while len(self._branch) > keep:
            os.close(self._branch.pop()[1])
        for part in parts[keep:]:
            parent = self._branch[-1][1] if self._branch else self._root
            self._branch.append((part, os.open(part, DIRECTORY_FLAGS, dir_fd=parent)))
        return self._branch[-1][1] if self._branch else self._root

    def close(self) -> None:
        """Close every descriptor the walker opened (not the root)."""
        while self._branch:
            os.close(self._branch.pop()[1])

    def __enter__(self) -> DirectoryWalker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
