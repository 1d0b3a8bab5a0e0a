"""Entry points of one group, skipping ``importlib.metadata`` when nothing declares the group.

``importlib.metadata.entry_points`` imports the email package and parses the metadata
of every installed distribution: about 25 ms, a tenth of a small re-pack by the
command. Most installations have no ih5 plug-in, and telling so takes one directory
listing per ``sys.path`` entry and one small read per distribution: when no
``entry_points.txt`` mentions the group, there is nothing to load. Whenever the
quick look cannot be sure (a zipped path entry, a distribution finder other than
Python's own), the full scan runs, so a plug-in is never missed.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

METADATA_DIRS = (".dist-info", ".egg-info")
ENTRY_POINTS_FILE = "entry_points.txt"


def group_entry_points(group: str) -> list[EntryPoint]:
    """The installed entry points of ``group``, as ``importlib.metadata`` finds them."""
    if not _may_declare(group):
        return []
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def _may_declare(group: str) -> bool:
    """Whether an installed distribution may declare entry points of ``group``
    (False only when certain that none does)."""
    finders = [finder for finder in sys.meta_path if hasattr(finder, "find_distributions")]
    if any(finder is not importlib.machinery.PathFinder for finder in finders):
        return True  # someone else's finder: only importlib.metadata knows what it finds
    if not finders:
        return False
    needle = group.encode()
    try:
        for text in _entry_point_files(sys.path):
            if needle in text:
                return True
    except _UnsureError:
        return True
    return False


class _UnsureError(Exception):
    """A path entry this quick look does not read as ``importlib.metadata`` would."""


def _entry_point_files(paths: Iterable[object]) -> Iterator[bytes]:
    """The bytes of every ``entry_points.txt`` of the distributions found on ``paths``.

    As ``importlib.metadata`` looks: ``*.dist-info`` and ``*.egg-info`` entries of
    each path directory (any case), and ``EGG-INFO`` inside a ``*.egg`` directory.
    """
    for entry in paths:
        if not isinstance(entry, (str, os.PathLike)):
            raise _UnsureError
        root = os.fspath(entry) or "."
        if not isinstance(root, str):
            raise _UnsureError
        try:
            children = os.listdir(root)
        except FileNotFoundError:
            continue  # importlib.metadata finds nothing there either
        except NotADirectoryError:
            raise _UnsureError from None  # a zip file (importlib.metadata reads into those)
        except OSError:
            raise _UnsureError from None
        is_egg = os.path.basename(root).lower().endswith(".egg")
        for child in children:
            low = child.lower()
            if low.endswith(METADATA_DIRS) or (is_egg and low == "egg-info"):
                text = _read_if_present(os.path.join(root, child, ENTRY_POINTS_FILE))
                if text is not None:
                    yield text


def _read_if_present(path: str) -> bytes | None:
    """The file's bytes; None when it (or its directory) is not there, as for a metadata
    file kept as a plain ``*.egg-info`` file."""
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError:
        raise _UnsureError from None
