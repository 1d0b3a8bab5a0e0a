"""The store interface every backend implements."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Protocol


class Store(Protocol):
    """One place holding the files of records: list, read, stage, publish, remove.

    Names are plain file names (no separators). Staged files are local files
    under :attr:`staging_dir` that only their writer touches until they are
    published.
    """

    @property
    def location(self) -> str:
        """Where the store is, for messages (a directory or a URL)."""
        ...

    @property
    def staging_dir(self) -> Path:
        """The local directory where writers stage files before publishing them."""
        ...

    def describe(self, name: str) -> str:
        """The path or URL of ``name``, for messages."""
        ...

    def names(self) -> list[str]:
        """Every published and staged file name at the location (directories excluded)."""
        ...

    def exists(self, name: str) -> bool:
        """Tell whether a file ``name`` exists."""
        ...

    def local_path(self, name: str) -> Path:
        """A local file path that reads the bytes of ``name``."""
        ...

    def read_bytes(self, name: str) -> bytes:
        """The whole content of ``name`` (FileNotFoundError when absent)."""
        ...

    def open_binary(self, name: str) -> BinaryIO:
        """A seekable binary reader of ``name`` (FileNotFoundError when absent)."""
        ...

    def size(self, name: str) -> int:
        """The size of ``name`` in bytes (FileNotFoundError when absent)."""
        ...

    def publish(self, staged: Path, name: str) -> bool:
        """Make the complete, closed ``staged`` file visible as ``name`` if ``name`` is absent.

        Return True when published; False when ``name`` already exists (then
        ``staged`` is left as it was). Never replaces an existing file.
        """
        ...

    def remove(self, name: str) -> None:
        """Remove ``name`` if it exists (for staged files and explicit truncation only)."""
        ...

    def sync(self) -> None:
        """Make earlier publishes and removals durable."""
        ...
