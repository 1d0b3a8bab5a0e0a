"""Helpers of the remote suites: source trees and comparing them with unpacked copies."""

from __future__ import annotations

import filecmp
from pathlib import Path


def make_source(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (relative path -> bytes) below ``root``."""
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def same_tree(left: Path, right: Path) -> bool:
    """True when both trees hold the same paths and byte-identical files."""
    compare = filecmp.dircmp(left, right)
    if compare.left_only or compare.right_only or compare.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, compare.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(left / sub, right / sub) for sub in compare.common_dirs)
