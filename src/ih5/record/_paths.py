"""Paths inside a record: splitting them into member names and joining them again."""

from __future__ import annotations

from ih5.errors import InvalidKeyError


def split_path(path: str) -> list[str]:
    """Split an absolute or relative path into member names, refusing names HDF5 misreads."""
    if not isinstance(path, str):
        raise InvalidKeyError(f"paths are strings, not {type(path).__name__} ({path!r})")
    parts = [part for part in path.split("/") if part]
    for part in parts:
        if part in (".", "..") or "\x00" in part:
            raise InvalidKeyError(
                f"path {path!r} contains the member name {part!r}; use plain names "
                "without '.', '..' or NUL characters"
            )
    return parts


def join_path(parent: str, name: str) -> str:
    """Join an absolute group path and a member name."""
    return "/" + name if parent == "/" else f"{parent}/{name}"
