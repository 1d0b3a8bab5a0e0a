"""Helpers of the pack tests: build source trees, snapshot them, look inside containers."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ih5.format import discover_containers, is_deletion_marker
from ih5.pack import unpack_record
from tests.helpers.trees import Snapshot, snapshot


@dataclass(frozen=True)
class Link:
    """A symlink to create, with its target as written."""

    target: str


Spec = Mapping[str, "bytes | Link | None"]
"""Relative path -> file bytes, a Link, or None for a directory (parents are implied)."""


def npy_bytes(array: np.ndarray[Any, Any], *, fortran: bool = False) -> bytes:
    """The bytes of ``array`` saved as an ``.npy`` file."""
    stream = io.BytesIO()
    np.save(stream, np.asfortranarray(array) if fortran else array, allow_pickle=True)
    return stream.getvalue()


def make_tree(root: Path, spec: Spec) -> Path:
    """Create the paths of ``spec`` below ``root`` (which may exist already)."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in sorted(spec.items()):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif isinstance(content, Link):
            os.symlink(content.target, path)
        else:
            path.write_bytes(content)
    return root


def remove(path: Path) -> None:
    """Remove a file, link or directory tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def unpacked(record: Path, where: Path) -> Snapshot:
    """Unpack ``record`` into the new directory ``where`` and snapshot the result."""
    unpack_record(record, where)
    return snapshot(where)


def container_names(directory: Path, name: str = "rec") -> set[str]:
    """File names of the committed containers of record ``name`` in ``directory``."""
    return {path.name for path in discover_containers(directory, name)}


def patch_paths(container: Path) -> dict[str, str]:
    """What a container file holds, read with plain h5py: path -> group/dataset/deleted."""
    found: dict[str, str] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group):
            found[name] = "group"
        elif obj.shape == () and is_deletion_marker(obj[()]):
            found[name] = "deleted"
        else:
            found[name] = "dataset"

    with h5py.File(container, "r") as file:
        file.visititems(visit)
    return found
