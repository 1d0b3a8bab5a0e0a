"""``--jobs``, ``--scheduler`` and ``--dask``: which engine runs a command's tasks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ih5.cli._output import say

if TYPE_CHECKING:  # imported where used: ``ih5 --help`` loads no h5py, numpy or rich
    from concurrent.futures import Executor  # (nor concurrent.futures and logging)


F = TypeVar("F", bound=Callable[..., Any])


def engine_options(func: F) -> F:
    """Add ``--jobs``, ``--scheduler ADDRESS`` and ``--dask`` to a command that runs tasks."""
    for option in reversed(
        [
            click.option(
                "--jobs",
                "-j",
                type=click.IntRange(min=1),
                help="Local worker processes (default 1; with --dask, one per core).",
            ),
            click.option(
                "--scheduler",
                metavar="ADDRESS",
                help="Run the tasks on the Dask cluster at ADDRESS (tcp://HOST:8786); "
                "needs pip install 'ih5[dask]'.",
            ),
            click.option(
                "--dask",
                "local_dask",
                is_flag=True,
                help="Run the tasks on a new local Dask cluster of --jobs workers.",
            ),
        ]
    ):
        func = option(func)
    return func


def engine_requested(jobs: int | None, scheduler: str | None, local_dask: bool) -> bool:
    """Tell whether any of the engine options was given."""
    return jobs is not None or scheduler is not None or local_dask


@contextmanager
def open_engine(
    jobs: int | None, scheduler: str | None, local_dask: bool
) -> Iterator[Executor | None]:
    """The executor the options name; None means the library's default local pool."""
    from ih5.pack import dask_executor

    if scheduler is not None and local_dask:
        raise click.UsageError("give --scheduler ADDRESS or --dask, not both")
    if scheduler is not None and jobs is not None:
        raise click.UsageError(
            "--jobs sets local workers; with --scheduler the cluster's workers run the tasks"
        )
    if scheduler is None and not local_dask:
        yield None
        return
    if scheduler is not None:
        say(f"running the tasks on the Dask scheduler at {scheduler}")
    else:
        say(f"starting a local Dask cluster of {jobs or os.cpu_count() or 1} worker processes")
    with dask_executor(scheduler, workers=jobs) as executor:
        yield executor
