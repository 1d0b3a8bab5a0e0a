"""``ih5 pack``, ``ih5 unpack`` and ``ih5 pack-many``: the directory archiving commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ih5.cli.engine import engine_options, open_engine
from ih5.cli.many import report_outcomes, report_skipped, show_plan
from ih5.cli.output import echo_json, echo_table, json_option, say
from ih5.cli.progress import byte_progress
from ih5.pack import (
    PackOptions,
    PackOutcome,
    PackResult,
    pack_directory,
    pack_plan,
    plan_many,
    unpack_record,
)

COMPRESSION = click.Choice(["gzip", "lzf"])
F = TypeVar("F", bound=Callable[..., Any])


def storage_options(func: F) -> F:
    """Add the options shared by the packing commands: compression and the mtime fast path."""
    for option in reversed(
        [
            click.option("--compression", type=COMPRESSION, help="Compress file datasets."),
            click.option(
                "--level", type=click.IntRange(0, 9), help="Compression level (gzip only)."
            ),
            click.option(
                "--trust-mtime",
                is_flag=True,
                help="Treat files with unchanged size and mtime as unchanged.",
            ),
        ]
    ):
        func = option(func)
    return func


def _options(compression: str | None, level: int | None) -> PackOptions:
    if level is not None and compression != "gzip":
        # Without gzip the level would be dropped silently (none) or refused by h5py (lzf),
        # and only after the record directory was made; refuse it before any work.
        raise click.BadParameter("applies to --compression gzip only", param_hint="'--level'")
    return PackOptions(compression=compression, compression_opts=level)


def _result_data(result: PackResult) -> dict[str, Any]:
    return {
        "record": str(result.record),
        "action": result.action,
        "record_uuid": result.record_uuid,
        "patch_index": result.patch_index,
        "written": [str(path) for path in result.written],
        "added": list(result.added),
        "changed": list(result.changed),
        "removed": list(result.removed),
        "bytes_packed": result.bytes_packed,
        "files": result.file_count,
        "total_bytes": result.total_bytes,
        "manifest_hashsum": result.manifest_hashsum,
    }


def _summary(result: PackResult) -> str:
    if result.action == "unchanged":
        return f"{result.record}: nothing changed, no patch written"
    counts = (
        f"{len(result.added)} added, {len(result.changed)} changed, {len(result.removed)} removed"
    )
    where = ", ".join(path.name for path in result.written)
    if result.action == "patched-on-stub":
        return (
            f"{result.record}: patch {result.patch_index} written on a stub ({counts}); "
            f"copy {where} next to the real record"
        )
    return f"{result.record}: {result.action} patch {result.patch_index} ({counts}) -> {where}"


@click.command("pack")
@click.argument("source", type=click.Path(file_okay=False, path_type=Path))
@click.argument("record", type=click.Path(path_type=Path))
@storage_options
@json_option
def pack_command(
    source: Path,
    record: Path,
    compression: str | None,
    level: int | None,
    trust_mtime: bool,
    as_json: bool,
) -> None:
    """Pack directory SOURCE into RECORD (DIR/NAME): create it, or add one patch.

    Later runs write exactly the added, changed and removed files. When only
    the newest manifest of RECORD is present, the patch is written on a stub
    beside it, ready to be copied next to the real record.

    \b
    Examples:
      ih5 pack plate_1 archive/plate-1
      ih5 pack plate_1 archive/plate-1 --compression gzip --trust-mtime
      ih5 pack plate_1 manifests-only/plate-1 --json
    """
    with byte_progress() as progress:
        result = pack_directory(
            source,
            record,
            options=_options(compression, level),
            trust_mtime=trust_mtime,
            progress=progress,
        )
    if as_json:
        echo_json(_result_data(result))
    else:
        say(_summary(result))


@click.command("unpack")
@click.argument("record", type=click.Path(path_type=Path))
@click.argument("destination", type=click.Path(path_type=Path))
@json_option
def unpack_command(record: Path, destination: Path, as_json: bool) -> None:
    """Restore the directory packed into RECORD at DESTINATION (new or empty).

    Every file is checked against the hashsum it was packed with.

    \b
    Examples:
      ih5 unpack archive/plate-1 restored/plate_1
      ih5 unpack archive/plate-1 restored/plate_1 --json
    """
    with byte_progress() as progress:
        result = unpack_record(record, destination, progress=progress)
    data = {
        "destination": str(result.destination),
        "files": result.files,
        "directories": result.directories,
        "symlinks": result.symlinks,
        "bytes": result.bytes_written,
    }
    if as_json:
        echo_json(data)
    else:
        say(
            f"restored {result.files} files, {result.directories} directories and "
            f"{result.symlinks} symlinks ({result.bytes_written} bytes) to {result.destination}"
        )


@click.command("pack-many")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@engine_options
@click.option(
    "--plan", "plan_only", is_flag=True, help="Show what would be packed, with sizes; pack nothing."
)
@storage_options
@json_option
def pack_many_command(
    root: Path,
    out_dir: Path,
    jobs: int | None,
    scheduler: str | None,
    local_dask: bool,
    plan_only: bool,
    compression: str | None,
    level: int | None,
    trust_mtime: bool,
    as_json: bool,
) -> None:
    """Pack each subdirectory of ROOT as its own record in OUT_DIR, one task per record.

    The tasks run in JOBS local processes, or on a Dask cluster (--scheduler
    tcp://HOST:8786, or --dask for a local one). Every record is registered
    in OUT_DIR/catalog.json. Exits 1 if any subdirectory failed (the others
    are still packed, and each failure is listed); running the same command
    again packs what is left.

    \b
    Examples:
      ih5 pack-many plates/ archive/ --plan
      ih5 pack-many plates/ archive/ --jobs 4
      ih5 pack-many plates/ archive/ --dask --jobs 2 --json
    """
    options = _options(compression, level)
    plan = plan_many(root, out_dir)
    if plan_only:
        show_plan(plan, as_json)
        return
    report_skipped(plan)

    with open_engine(jobs, scheduler, local_dask) as executor, byte_progress() as bar:
        bar.phase("packing", plan.bytes)

        def report(outcome: PackOutcome) -> None:
            bar.advance(outcome.bytes)
            if not as_json:
                say(
                    _summary(outcome.result)
                    if outcome.result
                    else f"Error: {outcome.source}: {outcome.error}"
                )

        outcomes = pack_plan(
            plan,
            executor=executor,
            jobs=jobs or 1,
            options=options,
            trust_mtime=trust_mtime,
            on_done=report,
        )
    rows = [
        {
            "name": outcome.record_name,
            "source": str(outcome.source),
            "error": outcome.error,
            **(_result_data(outcome.result) if outcome.result else {}),
        }
        for outcome in outcomes
    ]
    if as_json:
        echo_json(rows)
    else:
        echo_table(
            "packed records",
            ["record", "action", "patch", "files", "bytes", "error"],
            [
                [
                    row["name"],
                    row.get("action"),
                    row.get("patch_index"),
                    row.get("files"),
                    row.get("total_bytes"),
                    row["error"],
                ]
                for row in rows
            ],
        )
    report_outcomes(outcomes)
