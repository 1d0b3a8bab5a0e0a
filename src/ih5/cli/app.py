"""The root ``ih5`` command group and the one place errors become exit codes."""

from __future__ import annotations

from typing import Any

import click

from ih5.cli.meta import meta
from ih5.cli.pack import pack_command, pack_many_command, unpack_command
from ih5.cli.records import register as register_records
from ih5.errors import Ih5Error

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class Ih5Group(click.Group):
    """A command group that turns ih5 errors into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Ih5Error as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(EXIT_FAILURE)


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
