"""``ih5 pack``, ``ih5 unpack`` and ``ih5 pack-many``: the directory archiving commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ih5.cli._arguments import new_record_argument, record_argument
from ih5.cli._engine import engine_options, open_engine
from ih5.cli._many import report_outcomes, report_skipped, show_plan
from ih5.cli._output import echo_json, echo_table, json_option, say
from ih5.cli._progress import byte_progress
from ih5.cli._remote import RECORD, options_from, remote_options

if TYPE_CHECKING:  # ih5.pack is imported where used: ``ih5 --help`` loads no h5py
    from ih5.pack import PackOptions, PackOutcome, PackResult

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
    from ih5.pack import PackOptions

    return PackOptions(compression=compression, compression_opts=level)


def _slashed(paths: tuple[str, ...]) -> list[str]:
    """Archive paths as 'ih5 tree' and 'ih5 diff' spell them: absolute, with a leading '/'."""
    return ["/" + path for path in paths]


def _result_data(result: PackResult) -> dict[str, Any]:
    return {
        "record": result.url or str(result.record),
        "action": result.action,
        "record_uuid": result.record_uuid,
        "patch_index": result.patch_index,
        "written": [str(path) for path in result.written],
        "added": _slashed(result.added),
        "changed": _slashed(result.changed),
        "removed": _slashed(result.removed),
        "bytes_packed": result.bytes_packed,
        "files": result.file_count,
        "total_bytes": result.total_bytes,
        "manifest_hashsum": result.manifest_hashsum,
    }


def _written_size(result: PackResult, containers: tuple[Path, ...]) -> str:
    """The size of what a pack wrote: its containers, or for a remote record what it sent."""
    if result.url is not None and result.transfer is not None:
        return f"{result.transfer.bytes_uploaded} bytes uploaded"
    return f"{_size_of(containers)} bytes"


def _size_of(paths: tuple[Path, ...]) -> int:
    return sum(path.stat().st_size for path in paths if path.exists())


def _summary(result: PackResult) -> str:
    """What a pack did, with sizes, in words."""
    if result.action == "unchanged":
        return (
            f"{result.url or result.record}: nothing changed since patch "
            f"{result.patch_index}; no patch written"
        )
    containers = tuple(path for path in result.written if path.name.endswith(".ih5"))
    where = ", ".join(path.name for path in result.written)
    if result.action == "created":
        return (
            f"{(result.url or result.record)}: created the record, {result.file_count} files "
            f"({result.total_bytes} bytes) in {where} ({_written_size(result, containers)})"
        )
    counts = (
        f"{len(result.added)} added, {len(result.changed)} changed, {len(result.removed)} removed"
    )
    kept = result.total_bytes - result.bytes_packed
    travel = (
        f"; {result.bytes_packed} bytes written, {max(kept, 0)} bytes of unchanged files "
        "not written again"
    )
    patch = (
        f"patch {result.patch_index} ({counts}) in {where} ({_written_size(result, containers)})"
    )
    if result.action == "patched-on-stub":
        return (
            f"{result.record}: wrote {patch} on a stub{travel}; "
            f"copy {where} next to the real record"
        )
    return f"{(result.url or result.record)}: wrote {patch}{travel}"


@click.command("pack")
@click.argument("source", type=click.Path(file_okay=False, path_type=Path))
@new_record_argument
@storage_options
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    metavar="PATTERN",
    help="Leave out paths matching PATTERN (gitignore-style, repeatable), e.g. '*.tmp'.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Allow a patch that removes every path packed before (packing a different source).",
)
@remote_options
@json_option
def pack_command(
    source: Path,
    record: Path | str,
    compression: str | None,
    level: int | None,
    trust_mtime: bool,
    exclude: tuple[str, ...],
    replace: bool,
    endpoint_url: str | None,
    region: str | None,
    allow_http: bool | None,
    as_json: bool,
) -> None:
    """Pack directory SOURCE into RECORD (DIR/NAME): create it, or add one patch.

    Later runs write exactly the added, changed and removed files. When only
    the newest manifest of RECORD is present, the patch is written on a stub
    beside it, ready to be copied next to the real record. ih5's own lock
    and staging files are never packed; RECORD must not be inside SOURCE. RECORD may be
    s3://BUCKET/PREFIX/NAME: only its newest manifest is fetched, the patch is
    built on a stub locally and published there (a lost race is rebuilt).

    \b
    Examples:
      ih5 pack plate_1 archive/plate-1
      ih5 pack plate_1 archive/plate-1 --compression gzip --trust-mtime
      ih5 pack plate_1 archive/plate-1 --exclude '*.tmp' --exclude 'cache/'
      ih5 pack plate_1 archive/plate-1 --json | jq .added
    """
    from ih5.pack import pack_directory

    with byte_progress() as progress:
        result = pack_directory(
            source,
            record,
            options=_options(compression, level),
            trust_mtime=trust_mtime,
            progress=progress,
            exclude=exclude,
            refuse_full_replace=not replace,
            remote=options_from(endpoint_url, region, allow_http),
        )
    if as_json:
        echo_json(_result_data(result))
    else:
        say(_summary(result))


@click.command("unpack")
@record_argument
@click.argument("destination", type=click.Path(path_type=Path))
@click.option(
    "--at",
    type=click.IntRange(min=0),
    help="Restore the state as of patch index K (default: newest).",
)
@json_option
def unpack_command(record: Path | str, destination: Path, at: int | None, as_json: bool) -> None:
    """Restore the directory packed into RECORD at DESTINATION (new or empty).

    Every file is checked against the hashsum it was packed with.

    \b
    Examples:
      ih5 unpack archive/plate-1 restored/plate_1
      ih5 unpack archive/plate-1 restored/plate_1-v0 --at 0 --json
    """
    from ih5.pack import unpack_record

    with byte_progress() as progress:
        result = unpack_record(record, destination, progress=progress, at=at)
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
@click.argument("out_dir", type=RECORD)
@engine_options
@click.option(
    "--plan", "plan_only", is_flag=True, help="Show what would be packed, with sizes; pack nothing."
)
@storage_options
@remote_options
@json_option
def pack_many_command(
    root: Path,
    out_dir: Path | str,
    jobs: int | None,
    scheduler: str | None,
    local_dask: bool,
    plan_only: bool,
    compression: str | None,
    level: int | None,
    trust_mtime: bool,
    endpoint_url: str | None,
    region: str | None,
    allow_http: bool | None,
    as_json: bool,
) -> None:
    """Pack each subdirectory of ROOT as its own record in OUT_DIR, one task per record.

    The tasks run in JOBS local processes, or on a Dask cluster (--scheduler
    tcp://HOST:8786, or --dask for a local one). Every record is registered
    in OUT_DIR/catalog.json. Exits 1 if any subdirectory failed (the others
    are still packed, and each failure is listed); running the same command
    again packs what is left. OUT_DIR may be s3://BUCKET/PREFIX/: each record
    is packed there as 'ih5 pack DIR s3://BUCKET/PREFIX/NAME' does, from its
    newest manifest alone (no catalog is written there).

    \b
    Examples:
      ih5 pack-many plates/ archive/ --plan
      ih5 pack-many plates/ archive/ --jobs 4
      ih5 pack-many plates/ archive/ --dask --jobs 2 --json
      ih5 pack-many plates/ s3://lab-archive/plates/ --jobs 4
    """
    from ih5.pack import pack_plan, plan_many

    options = _options(compression, level)
    remote = options_from(endpoint_url, region, allow_http)
    plan = plan_many(root, out_dir, remote=remote)
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
            remote=remote,
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
