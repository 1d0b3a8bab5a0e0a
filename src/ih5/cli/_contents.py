"""``ih5 tree``, ``ih5 cat`` and ``ih5 diff``: what a record holds, and what changed."""

from __future__ import annotations

import io
import posixpath
import sys
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ih5.cli import _exits as exits
from ih5.cli._arguments import record_argument
from ih5.cli._output import counted, echo_json, echo_table, json_option, say
from ih5.cli._progress import byte_progress
from ih5.errors import StubError

if TYPE_CHECKING:  # imported where used: ``ih5 --help`` loads no h5py, numpy or rich
    from rich.tree import Tree

    from ih5.record import IH5Dataset, IH5Group, RecordDiff


T = TypeVar("T")
Selection = tuple[int | slice | EllipsisType, ...]

at_option = click.option(
    "--at", type=click.IntRange(min=0), help="Use the state as of patch index K (default: newest)."
)


def _unless_stub(read: Callable[[], T]) -> T | None:
    """``read()``, or None where a stub holds only a placeholder instead of the data."""
    try:
        return read()
    except StubError:
        return None


def _attrs(obj: IH5Group | IH5Dataset) -> dict[str, Any]:
    return {name: _unless_stub(partial(obj.attrs.__getitem__, name)) for name in obj.attrs}


def _describe(obj: IH5Group | IH5Dataset, with_attrs: bool) -> dict[str, Any]:
    """One node as {path, type, shape, dtype[, attrs]}; shape and dtype are null for groups."""
    from ih5.cli._values import dtype_name
    from ih5.record import IH5Dataset

    entry: dict[str, Any] = {"path": obj.name, "type": "group", "shape": None, "dtype": None}
    if isinstance(obj, IH5Dataset):
        shape = _unless_stub(lambda: obj.shape)
        dtype = _unless_stub(lambda: obj.dtype)
        entry["type"] = "dataset"
        entry["shape"] = None if shape is None else list(shape)
        entry["dtype"] = None if dtype is None else dtype_name(dtype)
    if with_attrs:
        entry["attrs"] = _attrs(obj)
    return entry


def _label(entry: dict[str, Any]) -> str:
    name = posixpath.basename(entry["path"]) or "/"
    if entry["type"] == "group":
        return name if name == "/" else name + "/"
    if entry["dtype"] is None:
        return f"{name}  (stub placeholder)"
    if entry["shape"] is None:
        return f"{name}  (empty) {entry['dtype']}"
    return f"{name}  {tuple(entry['shape'])} {entry['dtype']}"


def _attr_lines(entry: dict[str, Any]) -> list[str]:
    from ih5.cli._values import as_text

    return [
        f"@{name} = {'(stub placeholder)' if value is None else as_text(value)}"
        for name, value in entry.get("attrs", {}).items()
    ]


def _print_tree(entries: list[dict[str, Any]]) -> None:
    """A rich tree in a terminal, plain text indented by depth when piped."""
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    if not sys.stdout.isatty():
        for entry in entries:
            depth = entry["path"].count("/") if entry["path"] != "/" else 0
            for line in [_label(entry), *(f"  {line}" for line in _attr_lines(entry))]:
                click.echo("  " * depth + line)
        return
    branches: dict[str, Tree] = {}
    for entry in entries:
        label = Text(_label(entry), style="bold" if entry["type"] == "group" else "")
        parent = branches.get(posixpath.dirname(entry["path"]))
        branch = branches[entry["path"]] = Tree(label) if parent is None else parent.add(label)
        for line in _attr_lines(entry):
            branch.add(Text(line, style="dim"))
    Console().print(branches["/"])


@click.command()
@record_argument
@at_option
@click.option("--attrs", "with_attrs", is_flag=True, help="Show attributes and their values.")
@json_option
def tree(record: Path | str, at: int | None, with_attrs: bool, as_json: bool) -> None:
    """Show the groups and datasets of RECORD.

    Datasets show shape and dtype; no values are read. --json prints a list
    of {path, type, shape, dtype} objects (with attrs under --attrs); values
    a stub does not hold show as null.

    \b
    Examples:
      ih5 tree data/rec
      ih5 tree data/rec --at 0 --attrs
      ih5 tree data/rec --json | jq -r '.[] | select(.type == "dataset") | .path'
    """
    from ih5.cli._values import to_json
    from ih5.record import IH5Record

    with IH5Record(record, at=at) as rec:
        objects: list[IH5Group | IH5Dataset] = [rec]
        rec.visititems(lambda _name, obj: objects.append(obj))
        entries = [_describe(obj, with_attrs) for obj in objects]
    if as_json:
        echo_json(to_json(entries))
    else:
        _print_tree(entries)


def _parse_slice(ctx: click.Context, param: click.Parameter, value: str | None) -> Selection | None:
    """Turn "0:10,::2" into a numpy selection; a malformed one is a usage error."""
    if value is None:
        return None
    items: list[int | slice | EllipsisType] = []
    for part in (part.strip() for part in value.split(",")):
        try:
            if part == "...":
                items.append(...)
            elif ":" in part:
                bounds = [int(bound) if bound.strip() else None for bound in part.split(":")]
                if len(bounds) > 3 or (len(bounds) == 3 and (bounds[2] or 1) < 1):
                    raise ValueError(part)
                items.append(slice(*bounds))
            else:
                items.append(int(part))
        except ValueError:
            raise click.BadParameter(
                f"{part!r} is not an index, a START:STOP[:STEP] slice (STEP >= 1) or ...",
                ctx,
                param,
            ) from None
    return tuple(items)


def _read(dataset: IH5Dataset, selection: Selection | None) -> Any:
    try:
        return dataset[() if selection is None else selection]
    except (ValueError, IndexError) as exc:
        raise click.BadParameter(f"{exc} (shape {dataset.shape})", param_hint="'--slice'") from exc


@click.command()
@record_argument
@click.argument("path")
@at_option
@click.option(
    "--values",
    is_flag=True,
    help="Print a packed file's dataset values (numpy) instead of its original bytes.",
)
@click.option("--slice", "selection", callback=_parse_slice, help='Part to read, e.g. "0:10,::2".')
@click.option("--attrs", "with_attrs", is_flag=True, help="Show the attributes too.")
@json_option
def cat(
    record: Path | str,
    path: str,
    at: int | None,
    values: bool,
    selection: Selection | None,
    with_attrs: bool,
    as_json: bool,
) -> None:
    """Print PATH of RECORD: a packed file's original bytes, or a dataset's values.

    A file packed by 'ih5 pack' is written to stdout byte for byte (as
    'tar -xO' does), checked against its hashsum. Other datasets print their
    values, strings decoded; a group has no values, so its attributes are
    shown. --json gives {path, type, shape, dtype, value[, attrs]} with bytes
    as UTF-8 text or {"base64": ...}.

    \b
    Examples:
      ih5 cat archive/plate-1 /notes.txt
      ih5 cat archive/plate-1 /notes.txt --at 0 > notes-v0.txt
      ih5 cat data/rec /images/dapi --slice "0:10,::2"
      ih5 cat data/rec /images --attrs
      ih5 cat data/rec /images/dapi --json | jq .shape
    """
    from ih5.cli._values import as_text, decoded, to_json
    from ih5.pack import copy_packed_file, is_packed_file
    from ih5.record import IH5Dataset, IH5Record

    with IH5Record(record, at=at) as rec:
        obj = rec[path]
        packed = isinstance(obj, IH5Dataset) and is_packed_file(obj) and not values
        if isinstance(obj, IH5Dataset) and packed and selection is None and not with_attrs:
            if not as_json:
                copy_packed_file(obj, sys.stdout.buffer)
                return
            content = io.BytesIO()
            copy_packed_file(obj, content)
            echo_json(to_json({**_describe(obj, False), "value": content.getvalue()}))
            return
        if selection is not None and not isinstance(obj, IH5Dataset):
            raise click.BadParameter(f"{path} is a group, it has no values", param_hint="'--slice'")
        entry = _describe(obj, with_attrs or not isinstance(obj, IH5Dataset))
        if isinstance(obj, IH5Dataset):
            entry["value"] = decoded(_read(obj, selection))
    if as_json:
        echo_json(to_json(entry))
        return
    if "value" in entry:
        click.echo(as_text(entry["value"]))
    for line in _attr_lines(entry):
        click.echo(line)


@click.command()
@record_argument
@click.argument("path")
@click.argument("destination", type=click.Path(path_type=Path))
@at_option
@json_option
def get(record: Path, path: str, destination: Path, at: int | None, as_json: bool) -> None:
    """Extract one packed file or directory PATH of RECORD to DESTINATION.

    A file becomes the new file DESTINATION (or DESTINATION/NAME when that is
    a directory); a directory's content goes into DESTINATION (new or empty).
    Every file is checked against the hashsum it was packed with.

    \b
    Examples:
      ih5 get archive/plate-1 /notes.txt notes.txt
      ih5 get archive/plate-1 /images restored-images --at 0
    """
    from ih5.pack import extract_member

    with byte_progress() as progress:
        result = extract_member(record, path, destination, at=at, progress=progress)
    if as_json:
        echo_json(
            {
                "destination": str(result.destination),
                "files": result.files,
                "directories": result.directories,
                "symlinks": result.symlinks,
                "bytes": result.bytes_written,
            }
        )
    else:
        say(
            f"extracted {path} ({counted(result.files, 'file')}, {result.bytes_written} bytes) "
            f"to {result.destination}"
        )


def _diff_rows(changes: RecordDiff) -> list[tuple[str, str, str]]:
    rows = [("added", path, "") for path in changes.added]
    rows += [("removed", path, "") for path in changes.removed]
    rows += [
        (
            "changed",
            change.path,
            "replaced" if change.before == change.after else f"{change.before} -> {change.after}",
        )
        for change in changes.changed
    ]
    for path, attrs in changes.attrs.items():
        for kind, names in (
            ("added", attrs.added),
            ("removed", attrs.removed),
            ("changed", attrs.changed),
        ):
            rows += [(f"attr {kind}", path, f"@{name}") for name in names]
    for path, region in changes.regions.items():
        if region.shape_before != region.shape_after:
            rows.append(("shape", path, f"{region.shape_before} -> {region.shape_after}"))
        ranges = [_index_text(box) for box in region.merged()]
        if ranges:
            shown = ", ".join(ranges[:SHOWN_RANGES])
            more = len(ranges) - SHOWN_RANGES
            rows.append(("values", path, shown + (f" (and {more} more)" if more > 0 else "")))
    return rows


SHOWN_RANGES = 8
"""Changed ranges of one dataset the table shows (``--json`` lists all)."""


def _index_text(box: tuple[tuple[int, int], ...]) -> str:
    """A box of elements as h5py index ranges: ``[0:8, 4:12]``."""
    return "[" + ", ".join(f"{start}:{stop}" for start, stop in box) + "]"


def _states(record: Path | str, from_index: int | None, to_index: int | None) -> tuple[int, int]:
    """Default: the newest state against the one before it."""
    from ih5.record import IH5Record

    if to_index is None:
        with IH5Record(record, verify=False) as rec:
            to_index = rec.user_block.patch_index
    if from_index is None:
        if to_index == 0:
            raise click.UsageError(f"{record} has no state before {to_index}; give --from")
        from_index = to_index - 1
    return from_index, to_index


@click.command()
@record_argument
@click.option(
    "--from",
    "from_index",
    type=click.IntRange(min=0),
    help="Patch index of the state to compare from (default: the one before --to).",
)
@click.option(
    "--to",
    "to_index",
    type=click.IntRange(min=0),
    help="Patch index of the state to compare to (default: the newest).",
)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit with 1 when the states differ, 0 when they do not (as 'git diff --exit-code').",
)
@json_option
def diff(
    record: Path | str, from_index: int | None, to_index: int | None, exit_code: bool, as_json: bool
) -> None:
    """List what differs between two states of RECORD (default: previous -> newest).

    A path is "changed" when its node was replaced (rewritten, substituted) or
    changed kind; dataset values are not read. Attributes are compared where
    they were written again. A dataset changed by chunk-level patches lists
    its changed regions ("values", at chunk granularity, as h5py index
    ranges) and a new shape ("shape"). Paths are absolute and sorted.

    \b
    Examples:
      ih5 diff data/rec
      ih5 diff data/rec --from 0 --to 1
      ih5 diff data/rec --exit-code || echo "patch 1 changed something"
      ih5 diff data/rec --from 0 --json | jq .added
    """
    from ih5.record import diff_states

    from_index, to_index = _states(record, from_index, to_index)
    changes = diff_states(record, from_index, to_index)
    if as_json:
        echo_json(
            {
                "from": changes.from_index,
                "to": changes.to_index,
                "added": list(changes.added),
                "removed": list(changes.removed),
                "changed": [asdict(change) for change in changes.changed],
                "attrs": {path: asdict(attrs) for path, attrs in changes.attrs.items()},
                "regions": {
                    path: {
                        "shape_before": list(region.shape_before),
                        "shape_after": list(region.shape_after),
                        "chunks": [[list(span) for span in box] for box in region.regions],
                        "ranges": [_index_text(box) for box in region.merged()],
                    }
                    for path, region in changes.regions.items()
                },
            }
        )
    elif changes:
        echo_table(
            f"{record}: {from_index} -> {to_index}",
            ("change", "path", "detail"),
            sorted(_diff_rows(changes), key=lambda row: (row[1], row[0], row[2])),
        )
    else:
        say(f"no differences between states {from_index} and {to_index} of {record}")
    if exit_code and changes:
        raise click.exceptions.Exit(exits.CHECK_FAILED)
