"""A small tmpfs mounted for a test (full disks, read-only mounts), skipped where impossible."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, size: int | str, needs_root_for: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` bytes (or "4m") at ``mount`` for the block; skip the test
    when this process may not mount (``needs_root_for`` says what the test needed it for)."""
    if os.geteuid() != 0:
        pytest.skip(f"{needs_root_for} needs root; run the suite as root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root in a VM")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
