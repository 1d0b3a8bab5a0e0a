"""Progress bars on stderr for long work (hashing, packing, unpacking, verifying)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported where used: ``ih5 --help`` need not load it
    from rich.progress import Progress, TaskID


def _surely_no_terminal() -> bool:
    """Whether rich would find stderr no terminal, told without importing rich (a command
    piped or run by a script shows no bar and needs no rich); False when unsure."""
    if os.environ.get("TTY_COMPATIBLE") == "0":
        return True
    if os.environ.get("TTY_COMPATIBLE") == "1" or "FORCE_COLOR" in os.environ:
        return False
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):
        return True  # no stderr, or a closed one: rich shows nothing either


class SilentProgress:
    """The progress of a command whose stderr is no terminal: nothing to show."""

    def phase(self, name: str, total_bytes: int) -> None:
        """Nothing is shown."""

    def advance(self, nbytes: int) -> None:
        """Nothing is shown."""


class BarProgress:
    """A byte-counting bar with named phases; silent when stderr is not a terminal."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def phase(self, name: str, total_bytes: int) -> None:
        """Start a new bar for ``name``."""
        if self._task is not None:
            self._progress.update(self._task, visible=False)
        self._task = self._progress.add_task(name, total=total_bytes)

    def advance(self, nbytes: int) -> None:
        """Move the current bar by ``nbytes``."""
        if self._task is not None:
            self._progress.advance(self._task, nbytes)


@contextmanager
def byte_progress() -> Iterator[BarProgress | SilentProgress]:
    """A live progress display on stderr for the ``with`` block (silent off a terminal)."""
    if _surely_no_terminal():
        yield SilentProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description:>10}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        yield BarProgress(progress)


@contextmanager
def activity(message: str) -> Iterator[None]:
    """A spinner on stderr for work without a byte count (e.g. merging)."""
    if _surely_no_terminal():
        yield
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield
