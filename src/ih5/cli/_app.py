"""The root ``ih5`` command group and the one place errors become exit codes."""

from __future__ import annotations

import _thread
import importlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ih5.cli import _exits as exits
from ih5.errors import Ih5Error, IntegrityError
from ih5.format import parse_container_name

if TYPE_CHECKING:
    from sys import UnraisableHookArgs

INTERRUPTED = (
    "interrupted by Ctrl-C; nothing half-written was published "
    "(records and sidecars change whole or not at all)"
)


COMMANDS: dict[str, tuple[str, str]] = {
    "meta": ("ih5.cli._meta", "meta"),
    "pack": ("ih5.cli._pack", "pack_command"),
    "unpack": ("ih5.cli._pack", "unpack_command"),
    "pack-many": ("ih5.cli._pack", "pack_many_command"),
    "info": ("ih5.cli._records", "info"),
    "log": ("ih5.cli._records", "log"),
    "tree": ("ih5.cli._contents", "tree"),
    "cat": ("ih5.cli._contents", "cat"),
    "get": ("ih5.cli._contents", "get"),
    "diff": ("ih5.cli._contents", "diff"),
    "verify": ("ih5.cli._records", "verify"),
    "merge": ("ih5.cli._records", "merge"),
    "manifest": ("ih5.cli._records", "manifest"),
    "stub": ("ih5.cli._records", "stub"),
    "push": ("ih5.cli._remote", "push_command"),
    "pull": ("ih5.cli._remote", "pull_command"),
    "catalog": ("ih5.cli._many", "catalog_command"),
}
"""Every subcommand of ``ih5``: its name -> (module, attribute). A command's module is
imported when the command is looked up, so that ``ih5 pack`` loads none of the others."""


class Ih5Group(click.Group):
    """A command group that turns errors into one line on stderr and one exit code per kind.

    ih5's own errors say what to do; OS errors name the file; anything else is
    a bug, reported in one line that points at ``--debug`` for the traceback.
    A reader of stdout that went away (``| head``) ends the command quietly.
    Subcommands (:data:`COMMANDS`) are loaded on first lookup.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command) and command.name == cmd_name, cmd_name
            self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # Not click's "Aborted!" and exit 1: say what an interrupted command leaves.
            command = " ".join(
                ["ih5", *([ctx.invoked_subcommand] if ctx.invoked_subcommand else [])]
            )
            click.echo(f"{command}: {INTERRUPTED}", err=True)
            ctx.exit(exits.INTERRUPTED)
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(exits.BROKEN_PIPE)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"Error: {_one_line(exc)}", err=True)
            ctx.exit(exits.exit_code_for(exc))


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing more."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test runner's buffer)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, IntegrityError) and exc.path is not None:
        return f"{exc}{set_aside_hint(Path(exc.path))}"
    if isinstance(exc, Ih5Error):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"


def set_aside_hint(container: Path) -> str:
    """How to get at the states before a damaged patch ``container`` (none for a base)."""
    parsed = parse_container_name(container.name)
    if parsed is None or parsed[1] == 0:
        return ""
    return (
        f"; the states before it stay readable with --at {parsed[1] - 1}, and setting it "
        f"aside ('mv {container} {container}.damaged') makes state {parsed[1] - 1} the newest"
    )


_HANDLER_NAME = "ih5-cli-stderr"


def _show_library_warnings() -> None:
    """Library warnings (e.g. waiting for another writer) as plain lines on stderr.

    ``logging`` is imported here, by commands that run: ``ih5 --help`` never needs it.
    """
    import logging

    class StderrLines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            click.echo(f"ih5: {record.getMessage()}", err=True)

    logger = logging.getLogger("ih5")
    if not any(handler.get_name() == _HANDLER_NAME for handler in logger.handlers):
        handler = StderrLines(logging.WARNING)
        handler.set_name(_HANDLER_NAME)
        logger.addHandler(handler)


@click.group(
    cls=Ih5Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=exits.HELP,
)
@click.version_option(package_name="ih5")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """Immutable, patchable HDF5 records and crash-safe sidecar metadata.

    Results go to stdout (tables, or JSON with --json); messages and progress
    bars go to stderr.

    \b
    Examples:
      ih5 pack plate_1 archive/plate-1
      ih5 log archive/plate-1
      ih5 verify archive/plate-1
      ih5 cat archive/plate-1 /notes.txt
      ih5 meta show plate_dir
    """
    _show_library_warnings()


BLAS_THREADS = "OPENBLAS_NUM_THREADS"
"""Read by numpy's OpenBLAS once, when numpy is first imported."""


def main() -> None:
    """Console-script entry point."""
    sys.unraisablehook = _redelivering_interrupts(sys.unraisablehook)
    # No command does linear algebra, yet numpy's OpenBLAS starts a thread per core at
    # import, which spins beside the command (on 2 busy cores a fifth of the time of a
    # small re-pack); one thread, unless the user chose otherwise.
    os.environ.setdefault(BLAS_THREADS, "1")
    cli(prog_name="ih5")


REDELIVER_AFTER_S = 0.01
"""How long after a swallowed Ctrl-C it is raised again."""


def _redelivering_interrupts(
    previous: Callable[[UnraisableHookArgs], object],
) -> Callable[[UnraisableHookArgs], object]:
    """An unraisable-exception hook that delivers a swallowed Ctrl-C again.

    Python drops an exception raised inside a weakref callback or finalizer; h5py runs
    one each time an HDF5 object dies, so during a pack about one Ctrl-C in four
    landed there and was lost (the command then finished as if never interrupted).
    """

    def hook(unraisable: UnraisableHookArgs) -> object:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # Later, once the main thread has left the callback (another lost one comes back).
            threading.Timer(REDELIVER_AFTER_S, _thread.interrupt_main).start()
            return None
        return previous(unraisable)

    return hook
