"""What a RECORD argument means: ``DIR/NAME``, a container file, or a directory holding one record.

A directory stands for the record inside it only when that is unambiguous
(exactly one record in it, and none of its name beside it); otherwise the
command refuses and shows the spellings that work. An invalid record name
gets a suggestion of a valid one.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import click

from ih5.errors import InvalidKeyError
from ih5.format import (
    CONTAINER_SUFFIX,
    MANIFEST_SUFFIX,
    RECORD_NAME,
    discover_containers,
    parse_container_name,
)


def suggest_name(name: str) -> str:
    """A valid record name close to ``name``: other characters become '-' (``my_run`` ->
    ``my-run``)."""
    suggestion = re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")
    return suggestion or "record"


def records_in(directory: Path) -> list[str]:
    """Names of the records with a container or manifest directly in ``directory``."""
    names: set[str] = set()
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    for entry in entries:
        parsed = parse_container_name(entry.name.removesuffix(MANIFEST_SUFFIX))
        if parsed is not None:
            names.add(parsed[0])
    return sorted(names)


def _invalid_name(path: Path, name: str) -> click.BadParameter:
    return click.BadParameter(
        f"record name {name!r} is not allowed: use only letters, digits and '-' "
        f"(no dots, spaces or '_'); e.g. {path.parent / suggest_name(name)}"
    )


def resolve_record(value: str | Path, *, creating: bool = False) -> Path:
    """``DIR/NAME`` of the record ``value`` names; click.BadParameter with the fix otherwise.

    ``creating``: the record may not exist yet (``ih5 pack`` creates it).
    """
    path = Path(value)
    text = str(value)
    if path.is_dir() and not path.name.endswith(CONTAINER_SUFFIX):
        return _record_in_directory(path, text, creating)
    name = path.name.removesuffix(MANIFEST_SUFFIX)
    parsed = parse_container_name(name)
    if parsed is not None:
        return path.parent / parsed[0]
    if RECORD_NAME.fullmatch(path.name) is None:
        raise _invalid_name(path, path.name.removesuffix(CONTAINER_SUFFIX))
    return path


def _record_in_directory(directory: Path, text: str, creating: bool) -> Path:
    inside = records_in(directory)
    beside = (
        RECORD_NAME.fullmatch(directory.name) is not None
        and not text.endswith("/")
        and bool(discover_containers(directory.parent, directory.name))
    )
    if len(inside) == 1 and not beside:
        return directory / inside[0]
    if beside and not inside:
        return directory
    spellings = [str(directory / name) for name in inside]
    if beside:
        spellings.append(f"{directory.parent / directory.name}.ih5")
    if spellings:
        raise click.BadParameter(
            f"{text} is a directory with more than one record; name one: {', '.join(spellings)}"
        )
    if creating:
        raise click.BadParameter(
            f"{text} is a directory; give the record to create inside it as DIR/NAME, "
            f"e.g. {directory / 'my-record'}"
        )
    raise click.BadParameter(
        f"{text} is a directory without records; give a record as DIR/NAME (or a container "
        "file DIR/NAME.ih5)"
    )


REMOTE_SCHEMES = ("s3://", "http://", "https://")
"""URL schemes of remote records (read through ``ih5.store``)."""


class RecordPath(click.ParamType[Path | str]):
    """A click type for RECORD arguments: a URL of a remote record, or a local one resolved
    by :func:`resolve_record`."""

    name = "record"

    def __init__(self, creating: bool = False) -> None:
        self.creating = creating

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Path | str:
        text = str(value)
        if text.startswith(REMOTE_SCHEMES):
            return text  # a remote record: the store floor reads the URL
        if text.startswith("file://"):
            text = urllib.parse.unquote(urllib.parse.urlparse(text).path)
        try:
            return resolve_record(text, creating=self.creating)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)
        except InvalidKeyError as exc:
            self.fail(str(exc), param, ctx)


record_argument = click.argument("record", type=RecordPath())
"""RECORD of a command that reads an existing record."""

new_record_argument = click.argument("record", type=RecordPath(creating=True))
"""RECORD of a command that may create it (``ih5 pack``)."""
