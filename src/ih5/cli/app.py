"""The root ``ih5`` command group and the one place errors become exit codes."""

from __future__ import annotations

from typing import Any

import click

from ih5.cli.many import catalog_command
from ih5.cli.meta import meta
from ih5.cli.pack import pack_command, pack_many_command, unpack_command
from ih5.cli.records import register as register_records
from ih5.errors import Ih5Error

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command stopped by Ctrl-C."""

INTERRUPTED = (
    "interrupted by Ctrl-C; nothing half-written was published "
    "(records and sidecars change whole or not at all)"
)


class Ih5Group(click.Group):
    """A command group that turns errors into one line on stderr and exit code 1.

    ih5's own errors say what to do; OS errors name the file; anything else is
    a bug, reported in one line that points at ``--debug`` for the traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # Not click's "Aborted!" and exit 1: say what an interrupted command leaves.
            command = " ".join(
                ["ih5", *([ctx.invoked_subcommand] if ctx.invoked_subcommand else [])]
            )
            click.echo(f"{command}: {INTERRUPTED}", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"Error: {_one_line(exc)}", err=True)
            ctx.exit(EXIT_FAILURE)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, Ih5Error):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"


@click.group(cls=Ih5Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ih5")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """Immutable, patchable HDF5 records and crash-safe sidecar metadata.

    \b
    Examples:
      ih5 meta show plate_dir
      ih5 meta show plate_dir --json
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ih5")


cli.add_command(meta)
cli.add_command(pack_command)
cli.add_command(unpack_command)
cli.add_command(pack_many_command)
register_records(cli)
cli.add_command(catalog_command)
