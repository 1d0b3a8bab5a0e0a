"""The environment timed commands run in: Python's bytecode cache on, as in an installation.

A shell may set ``PYTHONDONTWRITEBYTECODE`` (this one does); every command would then
compile ih5 from source again, a cost an installed ih5 (pip writes the cache) never
pays. The cache goes to a private directory (``PYTHONPYCACHEPREFIX``), not into the
source tree, and a first run of each command fills it before anything is timed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path


def cached_bytecode_env(cache: Path) -> dict[str, str]:
    """``os.environ`` with the bytecode cache on, written below ``cache``."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def warm_up(commands: Iterable[list[str]], env: Mapping[str, str]) -> None:
    """Run each command once, untimed, so that the cache holds what it imports."""
    for command in commands:
        subprocess.run(command, env=env, capture_output=True)
