"""``ih5 info``, ``log``, ``verify``, ``merge``, ``manifest``, ``stub``: a record's containers."""

from __future__ import annotations

from pathlib import Path

import click

from ih5.cli.contents import cat, diff, record_argument, tree
from ih5.cli.engine import engine_options, engine_requested
from ih5.cli.many import verify_on_engine
from ih5.cli.output import echo_json, echo_table, json_option, say
from ih5.cli.progress import activity, byte_progress
from ih5.errors import Ih5Error
from ih5.format import IH5UserBlock, split_record_path
from ih5.format.extensions import MANIFEST_EXT
from ih5.manifest import IH5Manifest, IH5MFRecord, manifest_path
from ih5.record import IH5Dataset, IH5Group, IH5Record


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
def info(record: Path, as_json: bool) -> None:
    """Summarize RECORD: identity, size, manifest, node counts.

    The size is that of the containers; groups count the root group.

    \b
    Examples:
      ih5 info data/rec
      ih5 info data/rec.ih5 --json | jq .patch_index
    """
    with IH5Record(record) as rec:
        history = rec.history()
        newest = rec.user_block
        nodes: list[IH5Group | IH5Dataset] = [rec]
        rec.visititems(lambda _name, obj: nodes.append(obj))
    summary = {
        "name": split_record_path(record)[1],
        "record_uuid": str(newest.record_uuid),
        "containers": len(history),
        "patch_index": newest.patch_index,
        "patch_uuid": str(newest.patch_uuid),
        "size": sum(entry.size for entry in history),
        "manifest": _manifest_backed(newest),
        "groups": sum(isinstance(node, IH5Group) for node in nodes),
        "datasets": sum(isinstance(node, IH5Dataset) for node in nodes),
    }
    if as_json:
        echo_json(summary)
    else:
        echo_table(str(record), ("field", "value"), list(summary.items()))


@click.command()
@record_argument
@json_option
def log(record: Path, as_json: bool) -> None:
    """List the committed containers of RECORD, oldest first.

    The table shortens hashsums; --json gives them in full, with the paths
    of each container's files (the container and its manifest, if any).

    \b
    Examples:
      ih5 log data/rec
      ih5 log data/rec --json | jq -r '.[-1].patch_uuid'
    """
    with IH5Record(record) as rec:
        history = rec.history()
    if as_json:
        echo_json(
            [
                {
                    "index": entry.index,
                    "patch_uuid": entry.patch_uuid,
                    "hashsum": entry.hashsum,
                    "size": entry.size,
                    "files": [str(path) for path in entry.files],
                }
                for entry in history
            ]
        )
        return
    rows = [
        (e.index, e.patch_uuid, _short(e.hashsum), e.size, " ".join(p.name for p in e.files))
        for e in history
    ]
    echo_table(str(record), ("index", "patch uuid", "hashsum", "size", "files"), rows)


def _open_unhashed(record: Path) -> IH5Record:
    """Open without checking hashsums, so that verify() can hash under a progress bar."""
    try:
        return IH5Record(record, verify=False)
    except Ih5Error:
        raise
    except (OSError, KeyError):
        # h5py cannot index a container whose HDF5 metadata is damaged; opening with
        # hashsum checks hashes before h5py reads a byte, and names the damaged file.
        return IH5Record(record)


@click.command()
@record_argument
@engine_options
@json_option
def verify(
    record: Path, jobs: int | None, scheduler: str | None, local_dask: bool, as_json: bool
) -> None:
    """Re-hash every container of RECORD against its user block.

    Exits 0 when every hashsum matches, 1 (with one Error: line) when a
    container is damaged or the chain is broken. With --jobs, --scheduler or
    --dask, the containers are hashed as parallel tasks (and every damaged one
    is named).

    \b
    Examples:
      ih5 verify data/rec
      ih5 verify data/rec --json || echo "restore data/rec from a backup"
      ih5 verify data/rec --dask --jobs 2
    """
    if engine_requested(jobs, scheduler, local_dask):
        verify_on_engine([record], jobs, scheduler, local_dask, as_json)
        return
    with _open_unhashed(record) as rec:
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
    if as_json:
        echo_json({"record": str(record), "ok": True, "containers": len(history), "size": total})
    else:
        say(f"{record}: {len(history)} containers, {total} bytes; every hashsum matches")


@click.command()
@record_argument
@click.argument(
    "target", type=click.Path(dir_okay=False, path_type=Path), callback=_in_existing_directory
)
@json_option
def merge(record: Path, target: Path, as_json: bool) -> None:
    """Merge the chain of RECORD into one new base container TARGET.

    TARGET keeps the identity of the newest container, so later patches of
    RECORD still apply to it; a manifest-backed record's TARGET gets its
    manifest beside it.

    \b
    Examples:
      ih5 merge data/rec merged/rec.ih5
      ih5 merge data/rec merged/rec.ih5 --json | jq .hashsum
    """
    with IH5Record(record) as rec:
        # Only a manifest-backed record may give the merged file a manifest.
        record_class = IH5MFRecord if _manifest_backed(rec.user_block) else IH5Record
    with record_class(record, verify=False) as rec:
        say(f"merging {len(rec.containers)} containers of {record} into {target} ...")
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


@click.command()
@record_argument
@json_option
def manifest(record: Path, as_json: bool) -> None:
    """Show the manifest of the newest container of RECORD.

    The manifest is checked against the hashsum its container names; --json
    prints the manifest document itself.

    \b
    Examples:
      ih5 manifest data/rec
      ih5 manifest data/rec --json | jq '.skeleton | keys'
    """
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
        ("manifest_exts", ",".join(found.manifest_exts)),
    ]
    echo_table(str(record), ("field", "value"), rows)


@click.command()
@click.argument("manifest_file", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path), callback=_in_existing_directory)
@json_option
def stub(manifest_file: Path, target: Path, as_json: bool) -> None:
    """Build a stub record at TARGET (DIR/NAME) from a MANIFEST.

    The stub has the record's structure with empty placeholders for all
    values; a patch committed on it applies to the real record. Prints the
    stub's file.

    \b
    Examples:
      ih5 stub data/rec.p3.ih5mf.json elsewhere/rec
      ih5 stub data/rec.p3.ih5mf.json elsewhere/rec --json | jq -r .stub
    """
    with IH5MFRecord.create_stub(target, manifest_file) as built:
        created = built.ih5_files[0]
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


def register(group: click.Group) -> None:
    """Add the record and manifest commands to ``group`` (the root ``ih5`` group)."""
    for command in (info, log, tree, cat, diff, verify, merge, manifest, stub):
        group.add_command(command)
