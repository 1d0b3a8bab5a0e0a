"""Snapshots of directories, to show that an operation changed exactly what it should."""

from __future__ import annotations

import os
from pathlib import Path

from ih5.fs import is_temp_name

Snapshot = dict[str, tuple[str, bytes | str | None]]
"""Relative POSIX path -> ("dir", None), ("file", bytes) or ("link", target)."""


def snapshot(root: Path) -> Snapshot:
    """Every path below ``root``: ("dir", None), ("file", bytes) or ("link", target)."""
    seen: Snapshot = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                seen[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                seen[relative] = ("dir", None)
            else:
                seen[relative] = ("file", path.read_bytes())
    return dict(sorted(seen.items()))


def files_of(directory: Path) -> dict[str, bytes]:
    """Every entry directly in ``directory`` by name, with its bytes (all must be files)."""
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def files_without_locks(directory: Path) -> dict[str, bytes]:
    """The files directly in ``directory`` with their bytes, lock files (no data) left out."""
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if path.is_file() and not path.name.endswith(".lock")
    }


def temp_files(directory: Path) -> list[str]:
    """The names of ih5's temporary files directly in ``directory``."""
    return [path.name for path in directory.iterdir() if is_temp_name(path.name)]
