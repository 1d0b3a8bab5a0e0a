"""``ih5 info``, ``log``, ``verify``, ``merge``, ``manifest``, ``stub``: a record's containers."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ih5.cli import _exits as exits
from ih5.cli._arguments import RecordPath, record_argument
from ih5.cli._engine import engine_options, engine_requested
from ih5.cli._many import verify_on_engine
from ih5.cli._output import counted, echo_json, echo_table, json_option, say
from ih5.cli._progress import activity, byte_progress
from ih5.errors import RecordExistsError, StrayFileWarning
from ih5.format import MANIFEST_EXT

if TYPE_CHECKING:  # imported where used: ``ih5 --help`` loads no h5py, numpy or rich
    from ih5.format import IH5UserBlock
    from ih5.manifest import (
        ContainerHealth,
        RecordHealth,
    )
    from ih5.record import IH5Record, Stray


def _manifest_backed(user_block: IH5UserBlock) -> bool:
    return MANIFEST_EXT in user_block.ub_exts


def _in_existing_directory(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """Refuse a target whose directory is missing, before any work is done."""
    if not value.parent.is_dir():
        raise click.BadParameter(
            f"directory {value.parent} does not exist; create it first", ctx, param
        )
    return value


def _short(hashsum: str) -> str:
    algorithm, _, digest = hashsum.partition(":")
    return f"{algorithm}:{digest[:12]}"


@click.command()
@record_argument
@json_option
def info(record: Path | str, as_json: bool) -> None:
    """Summarize RECORD: identity, size, manifest, node counts.

    The size is that of the containers; groups count the root group.

    \b
    Examples:
      ih5 info data/rec
      ih5 info data/rec.p1.ih5 --json | jq .patch_index
    """
    from ih5.record import IH5Record

    with IH5Record(record) as rec:
        history = rec.history()
        newest = rec.user_block
        groups, datasets = rec.node_counts()
        requests = getattr(rec.store, "stats", None)
    summary = {
        "name": record.rsplit("/", 1)[-1] if isinstance(record, str) else record.name,
        "record_uuid": str(newest.record_uuid),
        "containers": len(history),
        "patch_index": newest.patch_index,
        "patch_uuid": str(newest.patch_uuid),
        "size": sum(entry.size for entry in history),
        "manifest": _manifest_backed(newest),
        "groups": groups,
        "datasets": datasets,
    }
    if requests is not None:
        # A remote record: what finding and reading it cost (HTTP follows names one by one).
        summary["requests"] = requests.requests
        summary["bytes_downloaded"] = requests.bytes_downloaded
    if as_json:
        echo_json(summary)
    else:
        echo_table(
            str(record), ("field", "value"), [(k.replace("_", " "), v) for k, v in summary.items()]
        )


def _health_data(entry: ContainerHealth) -> dict[str, Any]:
    manifest = entry.manifest
    return {
        "index": entry.index,
        "file": str(entry.path),
        "status": entry.status,
        "reason": entry.reason,
        "patch_uuid": entry.patch_uuid,
        "hashsum": entry.hashsum,
        "size": entry.size,
        "hashed": entry.hashed,
        "manifest": None
        if manifest is None
        else {"file": str(manifest.path), "status": manifest.status, "reason": manifest.reason},
    }


def _detail(entry: ContainerHealth) -> str:
    reasons = [entry.reason] if entry.reason else []
    if entry.manifest is not None and entry.manifest.reason:
        reasons.append(entry.manifest.reason)
    return "; ".join(reasons)


@click.command()
@record_argument
@json_option
def log(record: Path | str, as_json: bool) -> None:
    """List the containers of RECORD, oldest first, then its strays.

    Reads user blocks only (fast; 'ih5 verify' re-hashes the payloads), so a
    damaged patch does not hide the others. The table shortens hashsums;
    --json gives every entry in full with its status (ok, damaged, missing,
    stray, uncommitted) and its files (the container and its manifest, if any).

    \b
    Examples:
      ih5 log data/rec
      ih5 log data/rec --json | jq -r 'map(select(.status == "ok")) | .[-1].patch_uuid'
    """
    if isinstance(record, str):
        return _remote_log(record, as_json)
    from ih5.manifest import check_record

    health = check_record(record, verify=False)
    entries = [
        {
            **_health_data(entry),
            "files": [
                str(path)
                for path in (entry.path, entry.manifest.path if entry.manifest else None)
                if path is not None and path.exists()
            ],
        }
        for entry in health.containers
    ]
    if as_json:
        echo_json(entries)
        return
    rows = [
        (
            "" if entry.index is None else entry.index,
            entry.status,
            entry.patch_uuid or "",
            _short(entry.hashsum) if entry.hashsum else "",
            "" if entry.size is None else entry.size,
            " ".join(Path(path).name for path in data["files"]) or entry.path.name,
            _detail(entry),
        )
        for entry, data in zip(health.containers, entries, strict=True)
    ]
    echo_table(
        str(record),
        ("index", "status", "patch uuid", "hashsum", "size", "files", "detail"),
        rows,
    )


@click.command()
@record_argument
@engine_options
@json_option
def verify(
    record: Path | str,
    jobs: int | None,
    scheduler: str | None,
    local_dask: bool,
    as_json: bool,
) -> None:
    """Re-hash every container of RECORD and check every manifest against its container.

    Reports each file as ok, damaged, missing or stray (a file that looks like
    the record's but is not part of its chain), as a table or --json. Exits 0
    when everything is sound, 1 when anything is not. A missing or damaged
    manifest can be rebuilt with 'ih5 manifest RECORD --rebuild'.

    \b
    Examples:
      ih5 verify data/rec
      ih5 verify data/rec --json | jq -r '.containers[] | select(.status != "ok") | .file'
      ih5 verify data/rec > report.tsv || echo "see report.tsv"
      ih5 verify data/rec --jobs 2

    With --jobs, --scheduler or --dask, the containers are hashed as parallel
    tasks on a local pool or a Dask cluster (every damaged one is named).
    """
    if isinstance(record, str):
        return _remote_verify(record, as_json)
    if engine_requested(jobs, scheduler, local_dask):
        verify_on_engine([record], jobs, scheduler, local_dask, as_json)
        return
    from ih5.manifest import check_record

    with byte_progress() as bar:
        bar.phase("verifying", _container_bytes(record))
        health = check_record(record, verify=True, progress=bar.advance)
    if as_json:
        echo_json(
            {
                "record": str(record),
                "ok": health.ok,
                "containers": [_health_data(entry) for entry in health.containers],
            }
        )
    else:
        rows = [
            (
                "" if entry.index is None else entry.index,
                entry.path.name,
                entry.status,
                "" if entry.manifest is None else entry.manifest.status,
                _detail(entry),
            )
            for entry in health.containers
        ]
        echo_table(str(record), ("index", "file", "status", "manifest", "detail"), rows)
        say(_verdict(record, health))
    if not health.ok:
        raise click.exceptions.Exit(exits.CHECK_FAILED)


def _container_bytes(record: Path) -> int:
    """The bytes a check of ``record`` hashes, for the progress bar (user blocks only read)."""
    from ih5.manifest import check_record

    preview = check_record(record, verify=False)
    return sum(entry.size or 0 for entry in preview.containers if entry.status == "ok")


def _verdict(record: Path, health: RecordHealth) -> str:
    sound = [entry for entry in health.containers if entry.ok]
    if health.ok:
        return f"{record}: every hashsum and manifest matches ({counted(len(sound), 'container')})"
    counts: dict[str, int] = {}
    for entry in health.problems:
        kind = (
            entry.status
            if entry.status != "ok"
            else "manifest " + (entry.manifest.status if entry.manifest else "")
        )
        counts[kind] = counts.get(kind, 0) + 1
    found = ", ".join(f"{count} {kind}" for kind, count in counts.items())
    newest = health.newest_sound
    advice = "" if newest is None else f"; states up to {newest} are sound (--at {newest})"
    manifests = any(
        entry.status == "ok" and entry.manifest is not None and entry.manifest.status != "ok"
        for entry in health.problems
    )
    if manifests:
        advice += f"; rebuild manifests with 'ih5 manifest {record} --rebuild'"
    return f"{record}: {found}{advice}"


@click.command()
@record_argument
@click.argument(
    "target", type=click.Path(dir_okay=False, path_type=Path), callback=_in_existing_directory
)
@json_option
def merge(record: Path | str, target: Path, as_json: bool) -> None:
    """Merge the chain of RECORD into one new base container TARGET.

    TARGET keeps the identity of the newest container, so later patches of
    RECORD still apply to it; a manifest-backed record's TARGET gets its
    manifest beside it.

    \b
    Examples:
      ih5 merge data/rec merged/rec.ih5
      ih5 merge data/rec merged/rec2.ih5 --json | jq .hashsum
    """
    from ih5.manifest import open_record
    from ih5.record import IH5Record

    if isinstance(record, str):
        from ih5.manifest import IH5MFRecord

        # A remote record: only a manifest-backed one may give the merged file a manifest.
        with IH5Record(record) as probe:
            record_class = IH5MFRecord if _manifest_backed(probe.user_block) else IH5Record
        rec = record_class(record, verify=False)
    else:
        with byte_progress() as bar:
            bar.phase("verifying", _container_bytes(record))
            rec = open_record(record, progress=bar.advance)
    with rec:
        say(f"merging {counted(len(rec.containers), 'container')} of {record} into {target} ...")
        with activity("merging"):
            written = rec.merge_files(target)
    with IH5Record([written], verify=False) as merged:
        (entry,) = merged.history()
    say(f"wrote {written} ({entry.size} bytes, patch index {entry.index})")
    if as_json:
        echo_json(
            {
                "target": str(written),
                "patch_index": entry.index,
                "patch_uuid": entry.patch_uuid,
                "hashsum": entry.hashsum,
                "size": entry.size,
                "files": [str(path) for path in entry.files],
            }
        )


def _rebuild(record: Path, as_json: bool) -> None:
    from ih5.pack import rebuild_pack_manifests

    outcomes = rebuild_pack_manifests(record)
    if as_json:
        echo_json(
            [
                {
                    "container": str(outcome.container),
                    "manifest": str(outcome.manifest),
                    "rebuilt": outcome.rebuilt,
                    "reason": outcome.reason,
                    "set_aside": None if outcome.set_aside is None else str(outcome.set_aside),
                }
                for outcome in outcomes
            ]
        )
    else:
        rows = [
            (
                outcome.manifest.name,
                "rebuilt" if outcome.rebuilt else "not rebuilt",
                outcome.reason
                + (
                    f"; the damaged one is kept as {outcome.set_aside.name}"
                    if outcome.set_aside
                    else ""
                ),
            )
            for outcome in outcomes
        ]
        echo_table(str(record), ("manifest", "result", "detail"), rows)
    if not outcomes:
        say(f"{record}: every manifest matches its container; nothing to rebuild")
    if any(not outcome.rebuilt for outcome in outcomes):
        raise click.exceptions.Exit(exits.CHECK_FAILED)


@click.command()
@record_argument
@click.option(
    "--rebuild",
    is_flag=True,
    help="Rebuild every missing or damaged manifest from the containers, then show the result.",
)
@json_option
def manifest(record: Path | str, rebuild: bool, as_json: bool) -> None:
    """Show the manifest of the newest container of RECORD, or rebuild lost manifests.

    The manifest is checked against the hashsum its container names; --json
    prints the manifest document itself. --rebuild recreates each missing or
    damaged manifest from the containers and publishes it only if it is the
    original byte for byte (a damaged one is kept as ...ih5mf.json.damaged);
    it exits 1 if one cannot be rebuilt.

    \b
    Examples:
      ih5 manifest data/rec
      ih5 manifest data/rec --json | jq '.skeleton | keys'
      ih5 manifest data/rec --rebuild
    """
    from ih5.manifest import IH5MFRecord, manifest_path

    if rebuild:
        if isinstance(record, str):
            raise click.UsageError(
                f"--rebuild writes beside the containers; pull {record} to a directory first"
            )
        _rebuild(record, as_json)
        return
    with IH5MFRecord(record) as rec:
        found = rec.manifest if rec.has_manifest else None
        path = manifest_path(rec.containers[-1])
    if found is None:
        raise click.ClickException(
            f"the newest container of {record} names no manifest; "
            "commit a patch with IH5MFRecord to write one"
        )
    if as_json:
        click.echo(found.to_bytes().decode("utf-8"), nl=False)
        return
    types = [entry.node_type for entry in found.skeleton.root.values()]
    rows = [
        ("file", path),
        ("manifest uuid", found.manifest_uuid),
        ("record uuid", found.user_block.record_uuid),
        ("patch index", found.user_block.patch_index),
        ("patch uuid", found.user_block.patch_uuid),
        ("groups", types.count("group")),
        ("datasets", types.count("dataset")),
        ("manifest exts", ",".join(found.manifest_exts)),
    ]
    echo_table(str(record), ("field", "value"), rows)


@click.command()
@click.argument("manifest_file", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.argument("target", type=RecordPath(creating=True), callback=_in_existing_directory)
@json_option
def stub(manifest_file: Path, target: Path, as_json: bool) -> None:
    """Build a stub record at TARGET (DIR/NAME) from a MANIFEST.

    The stub has the record's structure with empty placeholders for all
    values; a patch committed on it applies to the real record. Prints the
    stub's file.

    \b
    Examples:
      ih5 stub data/rec.p1.ih5mf.json elsewhere/rec
      ih5 stub data/rec.p1.ih5mf.json elsewhere/rec2 --json | jq -r .stub
    """
    from ih5.manifest import IH5Manifest, IH5MFRecord, manifest_path

    try:
        with IH5MFRecord.create_stub(target, manifest_file) as built:
            created = built.ih5_files[0]
    except RecordExistsError as exc:
        # The library's advice (open it with another mode) does not apply on the command line.
        raise RecordExistsError(
            f"{target} already exists; give a new TARGET, or pack into the existing "
            f"record with 'ih5 pack SOURCE {target}'",
            exc.path,
        ) from exc
    identity = IH5Manifest.load(manifest_path(created)).user_block
    if as_json:
        echo_json(
            {
                "stub": str(created),
                "manifest": str(manifest_path(created)),
                "record_uuid": str(identity.record_uuid),
                "patch_index": identity.patch_index,
                "patch_uuid": str(identity.patch_uuid),
            }
        )
        return
    click.echo(str(created))
    say(f"stub of record {identity.record_uuid} at patch index {identity.patch_index}")


# --- remote records (URLs): read through the store floor, no local health checks --------


def _remote_log(record: str, as_json: bool) -> None:
    """List the committed containers of RECORD, oldest first, then its strays.

    The table shortens hashsums; --json gives them in full, with the paths
    of each container's files (the container and its manifest, if any).

    \b
    Examples:
      ih5 log data/rec
      ih5 log data/rec --json | jq -r '.[-1].patch_uuid'
    """
    from ih5.record import IH5Record

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StrayFileWarning)  # listed below instead
        with IH5Record(record) as rec:
            history = rec.history()
            strays = rec.strays()
    entries = [
        {
            "index": entry.index,
            "status": "ok",
            "reason": "",
            "patch_uuid": entry.patch_uuid,
            "hashsum": entry.hashsum,
            "size": entry.size,
            "files": [str(path) for path in entry.files],
        }
        for entry in history
    ] + [_stray_data(stray) for stray in strays]
    if as_json:
        echo_json(entries)
        return
    rows = [
        (
            "" if e["index"] is None else e["index"],
            e["status"],
            e["patch_uuid"] or "",
            _short(e["hashsum"]) if e["hashsum"] else "",
            "" if e["size"] is None else e["size"],
            " ".join(Path(p).name for p in e["files"]),
            e["reason"],
        )
        for e in entries
    ]
    echo_table(
        str(record), ("index", "status", "patch uuid", "hashsum", "size", "files", "detail"), rows
    )


def _stray_data(stray: Stray) -> dict[str, Any]:
    """A stray file of a remote record as an entry of 'ih5 log' and 'ih5 verify'."""
    return {
        "index": stray.claims,
        "status": "stray",
        "reason": stray.reason,
        "patch_uuid": None,
        "hashsum": None,
        "size": None,
        "files": [stray.location],
    }


def _remote_verify(record: str, as_json: bool) -> None:
    """Re-hash every container of the remote RECORD against its user block (streamed once),
    and report strays under its prefix; exit 1 when there are any."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StrayFileWarning)  # reported below instead
        rec = _open_unhashed(record)
    with rec:
        history = rec.history()
        total = sum(entry.size for entry in history)
        with byte_progress() as bar:
            bar.phase("verifying", total)
            hashed = 0

            def advance(count: int) -> None:
                nonlocal hashed
                hashed += count
                bar.advance(count)

            rec.verify(progress=advance)
            # User blocks are not part of the hashed payload: fill the bar up to the file sizes.
            bar.advance(total - hashed)
        strays = rec.strays()
    if as_json:
        echo_json(
            {
                "record": str(record),
                "ok": not strays,
                "containers": len(history),
                "size": total,
                "strays": [_stray_data(stray) for stray in strays],
            }
        )
    else:
        for stray in strays:
            say(f"stray: {stray.location}: {stray.reason}")
        verdict = f"{len(history)} containers, {total} bytes; every hashsum matches"
        if strays:
            verdict += f"; {counted(len(strays), 'stray')} (move them away, see above)"
        say(f"{record}: {verdict}")
    if strays:
        raise click.exceptions.Exit(exits.CHECK_FAILED)


def _open_unhashed(record: Path | str) -> IH5Record:
    """Open without checking hashsums, so that verify() can hash under a progress bar."""
    from ih5.errors import Ih5Error
    from ih5.record import IH5Record

    try:
        return IH5Record(record, verify=False)
    except Ih5Error:
        raise
    except (OSError, KeyError):
        # h5py cannot index a container whose HDF5 metadata is damaged; opening with
        # hashsum checks hashes before h5py reads a byte, and names the damaged file.
        return IH5Record(record)
