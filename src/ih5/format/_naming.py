"""File names of a record's containers and manifests, and finding them by name alone.

A record at ``DIR/NAME`` has its base at ``DIR/NAME.ih5`` and patch K at
``DIR/NAME.pK.ih5``; a container's manifest is its file name + ``mf.json``.
Names only help to find files: the chain order comes from the user blocks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ih5.errors import InvalidKeyError

RECORD_NAME = re.compile(r"[A-Za-z0-9-]+")
CONTAINER_SUFFIX = ".ih5"
MANIFEST_SUFFIX = "mf.json"

# K is a patch index >= 1 in decimal without leading zeros; index 0 is the base's plain name.
_CONTAINER_NAME = re.compile(r"(?P<name>[A-Za-z0-9-]+)(?:\.p(?P<index>[1-9][0-9]*))?\.ih5")


def validate_record_name(name: str) -> None:
    """Refuse a record name that is not ``[A-Za-z0-9-]+`` (no separators, dots, spaces)."""
    if not isinstance(name, str) or RECORD_NAME.fullmatch(name) is None:
        raise InvalidKeyError(
            f"record name {name!r} is not allowed: use only letters, digits and '-' "
            "(no path separators, dots or spaces); give the directory separately",
            name if isinstance(name, str) else None,
        )


def container_name(record_name: str, patch_index: int) -> str:
    """Return the file name of a record's container: ``NAME.ih5`` or ``NAME.pK.ih5``."""
    validate_record_name(record_name)
    if patch_index < 0:
        raise ValueError(f"patch index must be >= 0, not {patch_index}")
    if patch_index == 0:
        return f"{record_name}{CONTAINER_SUFFIX}"
    return f"{record_name}.p{patch_index}{CONTAINER_SUFFIX}"


def manifest_name(container_filename: str) -> str:
    """Return the file name of a container's manifest sidecar (``NAME.p3.ih5mf.json``)."""
    return container_filename + MANIFEST_SUFFIX


def parse_container_name(filename: str) -> tuple[str, int] | None:
    """Split a container file name into ``(record_name, patch_index)``; None if it is not one."""
    match = _CONTAINER_NAME.fullmatch(filename)
    if match is None:
        return None
    return match["name"], int(match["index"] or 0)


def split_record_path(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Split a record given as ``DIR/NAME`` (or ``DIR/NAME.ih5``) into ``(DIR, NAME)``."""
    record = Path(path)
    name = record.name
    if name.endswith(CONTAINER_SUFFIX):
        name = name[: -len(CONTAINER_SUFFIX)]
    validate_record_name(name)
    return record.parent, name


def discover_containers(directory: str | os.PathLike[str], name: str) -> list[Path]:
    """List the container files of record ``name`` in ``directory``, by patch index.

    Only names are looked at (never contents): backups, temp files, manifests,
    other records' files and directories are ignored. A missing directory
    holds no containers.
    """
    return list_containers(directory, name)[0]


def list_containers(directory: str | os.PathLike[str], name: str) -> tuple[list[Path], list[str]]:
    """The container files of record ``name`` (as :func:`discover_containers` finds them)
    and the names of every file in ``directory`` (not following links, as
    ``LocalStore.names`` lists them), from one scan of the directory."""
    validate_record_name(name)
    found: list[tuple[int, str]] = []
    files: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    files.append(entry.name)
                parsed = parse_container_name(entry.name)
                if parsed is not None and parsed[0] == name and entry.is_file():
                    found.append((parsed[1], entry.name))
    except FileNotFoundError:
        return [], []
    root = Path(directory)
    return [root / entry for _, entry in sorted(found)], files
