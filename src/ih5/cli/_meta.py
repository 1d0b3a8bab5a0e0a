"""``ih5 meta``: show, set and migrate a plate's metadata sidecar (openhcs_metadata.json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from ih5.cli._output import echo_json, echo_table, json_option, say

_Name = TypeVar("_Name", bound=str)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_STORED_MAIN = {True: "true", False: "false", None: ""}
"""The ``main`` column shows what the sidecar stores (empty: not set)."""

plate_argument = click.argument("plate", type=click.Path(file_okay=False, path_type=Path))
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the sidecar's lock.",
)


def _parse_pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, bool]:
    """Turn ``backend=bool`` arguments into a map; a bad pair is a usage error."""
    # ih5.metadata is imported where used: ``ih5 meta --help`` loads no pydantic.
    from ih5.metadata import BACKENDS

    backends: dict[str, bool] = {}
    for value in values:
        backend, sep, flag = value.partition("=")
        if not sep or backend not in BACKENDS or flag.lower() not in _TRUE | _FALSE:
            raise click.BadParameter(
                f"{value!r} is not BACKEND=BOOL with BACKEND one of {', '.join(BACKENDS)} "
                "and BOOL true or false",
                ctx,
                param,
            )
        backends[backend] = flag.lower() in _TRUE
    return backends


def _names(mapping: Mapping[str, Any] | None) -> str:
    return ",".join(mapping) if mapping else ""


def _enabled(backends: Mapping[_Name, bool] | None) -> str:
    return ",".join(name for name, on in (backends or {}).items() if on)


@click.group()
def meta() -> None:
    """Show, set and migrate a plate's metadata sidecar (openhcs_metadata.json).

    PLATE is always the plate root directory; the sidecar is PLATE/openhcs_metadata.json.

    \b
    Examples:
      ih5 meta show plate_dir
      ih5 meta set plate_dir images --from record.json
      ih5 meta backends plate_dir disk=true zarr=false
      ih5 meta migrate plate_dir --dry-run
    """


@meta.command()
@plate_argument
@json_option
def show(plate: Path, as_json: bool) -> None:
    """Show the sub-directory records of PLATE.

    One row per sub-directory: its stored main flag (true, false, or empty
    when not set), number of image files, wells, channels and backends;
    --json prints the whole document instead.

    \b
    Examples:
      ih5 meta show plate_dir
      ih5 meta show plate_dir --json | jq '.subdirectories | keys'
    """
    from ih5.metadata import get_metadata_path, load_plate_metadata, main_subdirectory

    doc = load_plate_metadata(get_metadata_path(plate))
    if as_json:
        echo_json(doc.to_json())
        return
    main = main_subdirectory(doc)
    rows = [
        (
            name,
            _STORED_MAIN[record.main],
            len(record.image_files),
            _names(record.wells),
            _names(record.channels),
            _enabled(record.available_backends),
        )
        for name, record in doc.subdirectories.items()
    ]
    columns = ("subdirectory", "main", "images", "wells", "channels", "backends")
    echo_table(f"{get_metadata_path(plate)}", columns, rows)
    say(f"plate backends: {_enabled(doc.available_backends) or '(none)'}")
    if main is not None:
        flagged = doc.subdirectories[main].is_main
        why = "flagged main" if flagged else "the first one; none is flagged main"
        say(f"main sub-directory: {main} ({why})")


@meta.command("set")
@plate_argument
@click.argument("subdir")
@click.option(
    "--from",
    "source",
    type=click.File("r", encoding="utf-8"),
    required=True,
    help="JSON file holding the record, or - for stdin.",
)
@timeout_option
def set_record(plate: Path, subdir: str, source: IO[str], timeout: float) -> None:
    """Replace the record of one sub-directory.

    Writes the JSON object read from --from as the record of SUBDIR in
    PLATE's sidecar, creating the sidecar if missing; other records and
    unknown fields stay as they are.

    \b
    Examples:
      ih5 meta set plate_dir images --from record.json
      cat record.json | ih5 meta set plate_dir images --from -
    """
    try:
        record = json.load(source)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})", param_hint="'--from'") from exc
    from ih5.metadata import AtomicMetadataWriter, get_metadata_path

    path = get_metadata_path(plate)
    AtomicMetadataWriter(timeout).update_subdirectory_metadata(path, subdir, record)
    say(f"wrote record {subdir!r} to {path}")


@meta.command()
@plate_argument
@click.argument("pairs", nargs=-1, required=True, callback=_parse_pairs)
@timeout_option
def backends(plate: Path, pairs: dict[str, bool], timeout: float) -> None:
    """Set the plate-level available backends.

    PAIRS are BACKEND=BOOL with BACKEND one of disk, memory, zarr. The
    sidecar must already exist.

    \b
    Examples:
      ih5 meta backends plate_dir disk=true
      ih5 meta backends plate_dir disk=true zarr=false
    """
    from ih5.metadata import AtomicMetadataWriter, get_metadata_path

    path = get_metadata_path(plate)
    AtomicMetadataWriter(timeout).update_available_backends(path, pairs)
    say(f"set available backends of {path}: {_enabled(pairs) or '(none)'}")


@meta.command()
@plate_argument
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@json_option
@timeout_option
def migrate(plate: Path, dry_run: bool, as_json: bool, timeout: float) -> None:
    """Migrate a legacy flat sidecar to the sub-directory format.

    The original is kept beside it as openhcs_metadata.json.legacy-<UTC time>;
    a sidecar already in the current format is left alone.

    \b
    Examples:
      ih5 meta migrate plate_dir --dry-run
      ih5 meta migrate plate_dir
      ih5 meta migrate plate_dir --json
    """
    from ih5.metadata import migrate_legacy_metadata

    result = migrate_legacy_metadata(plate, dry_run=dry_run, timeout=timeout)
    if as_json:
        echo_json(
            {
                "path": str(result.path),
                "migrated": result.migrated,
                "dry_run": result.dry_run,
                "sub_dir": result.sub_dir,
                "backup": None if result.backup_path is None else str(result.backup_path),
                "document": result.document,
            }
        )
    elif not result.migrated:
        say(f"{result.path} is already in the current format; nothing to do")
    elif result.dry_run:
        say(f"dry run: would migrate {result.path} into sub-directory {result.sub_dir!r}")
    else:
        say(f"migrated {result.path} into sub-directory {result.sub_dir!r}")
        say(f"original kept at {result.backup_path}")
