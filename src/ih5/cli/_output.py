"""Rendering shared by all commands: ``--json`` to stdout, tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """Add ``--json``: print machine-readable JSON on stdout instead of a table."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON on stdout, for scripts."
    )(func)


def echo_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout, never through rich markup."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def echo_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Show rows as a rich table in a terminal, as tab-separated text when piped."""
    if not sys.stdout.isatty():
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join("" if cell is None else str(cell) for cell in row))
        return
    from rich.console import Console  # here: ``ih5 --help`` need not load rich
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console().print(table)


def say(message: str) -> None:
    """Talk to the user on stderr, keeping stdout for data."""
    click.echo(message, err=True)


def counted(count: int, noun: str) -> str:
    """``1 container``, ``2 containers``: one vocabulary for counts in messages."""
    return f"{count} {noun if count == 1 else noun + 's'}"
