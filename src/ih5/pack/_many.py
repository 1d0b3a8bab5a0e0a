"""``pack_many``: every subdirectory of a root as its own record, one task per record.

First a plan (:func:`plan_many`): which directories become which records, with
sizes, and what is skipped. Then one task per record on any executor
(:mod:`ih5.pack._tasks`); each task packs its own record and nothing else. The
calling process alone writes ``OUT_DIR/catalog.json`` (locked, atomic updates),
from the results as they arrive; :func:`rebuild_catalog` makes it follow the
records again after patches were installed by hand.
"""

from __future__ import annotations

import os
import re
import stat
import time
import unicodedata
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache, partial
from pathlib import Path
from typing import Any

from ih5.errors import ConflictError, Ih5Error, PackError, RemoteReadOnlyError
from ih5.format import (
    MANIFEST_SUFFIX,
    discover_containers,
    load_refs,
    manifest_name,
    parse_container_name,
    validate_chain,
)
from ih5.fs import atomic_update_json, hashsum_bytes
from ih5.manifest import IH5Manifest, check_manifest
from ih5.pack._codecs import FileCodec, PackOptions, installed_codecs
from ih5.pack._packer import PackResult, pack_directory
from ih5.pack._tasks import run_tasks
from ih5.pack._tree_state import TreeState
from ih5.store import ObjectStore, RemoteOptions, is_remote, local_path, open_store

CATALOG_NAME = "catalog.json"
CONFLICT_RETRIES = 3
"""How often a task packs again after another copy of it published the record's next patch."""
FLUSH_SECONDS = 1.0
"""The catalog is written at most this often while results arrive (and once at the end)."""

_SPELLED = {
    "ß": "ss",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ø": "o",
    "Ø": "O",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "Th",
    "\u0131": "i",  # dotless i
    "\u00b5": "u",  # micro sign
    "\u03bc": "u",  # Greek mu
}
"""Letters that Unicode does not decompose into a Latin letter and a mark."""


def record_name_for(directory_name: str) -> str:
    """A valid record name (``[A-Za-z0-9-]+``) for a directory name, by a fixed rule.

    Accents are dropped (``Ünïcode`` -> ``Unicode``), a few letters are spelled
    out (``ß`` -> ``ss``), compatibility forms become plain letters (a full-width
    A -> ``A``), and every run of anything else becomes one ``-``.
    """
    spelled = "".join(_SPELLED.get(char, char) for char in directory_name)
    latin = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9-]+", "-", latin).strip("-")
    if not name:
        raise PackError(
            f"cannot derive a record name from directory {directory_name!r} (no Latin "
            "letters or digits); rename the directory",
            directory_name,
        )
    return name


# --- the plan -------------------------------------------------------------------


@dataclass(frozen=True)
class PackItem:
    """One record to pack: its source directory and record path, as strings (they cross
    process and machine boundaries), with the source's size as the plan saw it."""

    source: str
    record: str
    files: int
    bytes: int
    exists: bool
    """The output directory already holds containers or manifests of this record."""

    @property
    def name(self) -> str:
        """The record's name."""
        return Path(self.record).name


@dataclass(frozen=True)
class Skipped:
    """An entry of the root that does not become a record, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class PackPlan:
    """What ``pack_many`` would do: the records to pack and what it skips."""

    root: Path
    out_dir: Path | str
    """A directory, or the ``s3://BUCKET/PREFIX`` URL the records go below."""
    items: tuple[PackItem, ...]
    skipped: tuple[Skipped, ...] = ()

    @property
    def remote(self) -> bool:
        """The records go into object storage (no catalog is written there)."""
        return isinstance(self.out_dir, str)

    @property
    def files(self) -> int:
        """Files in all sources."""
        return sum(item.files for item in self.items)

    @property
    def bytes(self) -> int:
        """Bytes in all sources."""
        return sum(item.bytes for item in self.items)

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON data (what ``ih5 pack-many --plan --json`` prints)."""
        return {
            "root": str(self.root),
            "out_dir": str(self.out_dir),
            "records": [
                {
                    "name": item.name,
                    "source": item.source,
                    "record": item.record,
                    "files": item.files,
                    "bytes": item.bytes,
                    "exists": item.exists,
                }
                for item in self.items
            ],
            "skipped": [{"path": entry.path, "reason": entry.reason} for entry in self.skipped],
            "files": self.files,
            "bytes": self.bytes,
        }


def _tree_size(directory: Path) -> tuple[int, int]:
    """Regular files below ``directory`` and their bytes (links not followed, errors ignored:
    the packing task reports them)."""
    files = size = 0
    pending = [directory]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode):
                        pending.append(Path(entry.path))
                    elif stat.S_ISREG(info.st_mode):
                        files += 1
                        size += info.st_size
        except OSError:
            continue
    return files, size


def _record_names_in(directory: Path) -> set[str]:
    """Names of the records with a container or a manifest in ``directory``."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return set()
    return _record_names(names)


def _record_names_at(url: str, remote: RemoteOptions | None) -> set[str]:
    """Names of the records with a container or a manifest below ``url`` (one listing)."""
    store = open_store(url, remote)
    assert isinstance(store, ObjectStore)
    if not store.writable:
        raise RemoteReadOnlyError(
            f"{url} is read-only (HTTP); pack into object storage (s3://BUCKET/PREFIX/) "
            "or a local directory instead",
            url,
        )
    try:
        return _record_names(store.names())
    finally:
        store.close()


def _record_names(names: Iterable[str]) -> set[str]:
    found = set()
    for name in names:
        parsed = parse_container_name(name.removesuffix(MANIFEST_SUFFIX))
        if parsed is not None:
            found.add(parsed[0])
    return found


def _same_directory(left: Path, right: Path) -> bool:
    return left.resolve() == right.resolve()


def _refuse_bad_names(root: Path, unnamed: list[str], named: dict[str, list[str]]) -> None:
    problems = [f"{directory!r} has no Latin letters or digits" for directory in unnamed]
    for name, directories in sorted(named.items()):
        if len(directories) > 1:
            listed = " and ".join(repr(directory) for directory in directories)
            problems.append(f"directories {listed} would all become record {name!r}")
    if problems:
        raise PackError(
            f"cannot name the records for {root}: {'; '.join(problems)}; rename those "
            "directories so that their names differ in Latin letters, digits or '-'",
            root,
        )


def plan_many(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    remote: RemoteOptions | None = None,
) -> PackPlan:
    """Which subdirectories of ``root`` become which records in ``out_dir``, with sizes.

    Loose files at the root and the output directory itself (when it is inside
    ``root``) are skipped and listed. Names that no rule can tell apart are refused
    before anything is written, naming the directories. ``out_dir`` may be an
    ``s3://BUCKET/PREFIX/`` URL: record NAME is then ``s3://BUCKET/PREFIX/NAME``
    (``remote`` sets the connection; default: the ``AWS_*`` environment).
    """
    source_root = Path(root)
    target: Path | str = (
        str(out_dir).rstrip("/")
        if isinstance(out_dir, str) and is_remote(out_dir)
        else local_path(out_dir)
    )
    if not source_root.is_dir():
        raise PackError(f"{source_root} is not a directory; pass the directory of plates", root)
    skipped: list[Skipped] = []
    named: dict[str, list[str]] = {}
    unnamed: list[str] = []
    for entry in sorted(os.scandir(source_root), key=lambda entry: entry.name):
        path = Path(entry.path)
        if not entry.is_dir():
            skipped.append(Skipped(str(path), "not a directory (only subdirectories are packed)"))
        elif isinstance(target, Path) and _same_directory(path, target):
            skipped.append(Skipped(str(path), "the output directory"))
        else:
            try:
                named.setdefault(record_name_for(entry.name), []).append(entry.name)
            except PackError:
                unnamed.append(entry.name)
    _refuse_bad_names(source_root, unnamed, named)
    present = (
        _record_names_in(target) if isinstance(target, Path) else _record_names_at(target, remote)
    )
    items = []
    for name, (directory,) in sorted(named.items()):
        files, size = _tree_size(source_root / directory)
        record = str(target / name) if isinstance(target, Path) else f"{target}/{name}"
        items.append(PackItem(str(source_root / directory), record, files, size, name in present))
    return PackPlan(source_root, target, tuple(items), tuple(skipped))


# --- the tasks --------------------------------------------------------------------


@dataclass(frozen=True)
class PackOutcome:
    """The result for one subdirectory: a PackResult or the error that stopped it."""

    source: Path
    record_name: str
    result: PackResult | None = None
    error: str | None = None
    bytes: int = field(default=0, compare=False)
    """The source's size in the plan (for progress)."""


def _failure(item: PackItem, error: str) -> PackOutcome:
    return PackOutcome(Path(item.source), item.name, error=error, bytes=item.bytes)


@cache
def _codecs_here() -> tuple[FileCodec, ...]:
    """The installed codecs, looked up once per worker process: the entry-point scan
    behind them costs milliseconds, a few percent of packing a small plate."""
    return tuple(installed_codecs())


def pack_item(
    item: PackItem,
    options: PackOptions,
    trust_mtime: bool,
    remote: RemoteOptions | None = None,
) -> PackOutcome:
    """Pack one record: the task ``pack_many`` runs, safe to run again or twice at once.

    It writes only its own staging files and commits through the commit protocol.
    A second run after a first one published finds nothing changed. When a
    concurrent copy (an engine's retry while the first still ran) takes the
    patch's name first, the task packs again on top of it, and an identical change
    set then comes out as unchanged. A record URL is packed through the remote path of
    ``pack_directory`` (its newest manifest alone, create-if-absent).
    """
    source = Path(item.source)
    message = ""
    for _ in range(CONFLICT_RETRIES):
        try:
            result = pack_directory(
                source,
                item.record,
                options=options,
                trust_mtime=trust_mtime,
                remote=remote,
                codecs=_codecs_here(),
            )
        except ConflictError as exc:
            message = str(exc)
            continue
        except Ih5Error as exc:
            return _failure(item, str(exc))
        except OSError as exc:
            # One unreadable file or full disk must not hide what the other tasks did.
            return _failure(item, f"{exc.strerror or exc}: {exc.filename or source}")
        return PackOutcome(source, item.name, result=result, bytes=item.bytes)
    return _failure(item, message)


# --- the catalog ------------------------------------------------------------------


def _entry(
    name: str,
    user_block_fields: tuple[str, int, str | None],
    state: TreeState,
    source: str | None,
    action: str | None,
) -> dict[str, Any]:
    record_uuid, patch_index, manifest_hashsum = user_block_fields
    files = [entry for entry in state.entries.values() if entry.kind == "file"]
    return {
        "record": name,
        "record_uuid": record_uuid,
        "patch_index": patch_index,
        "manifest_hashsum": manifest_hashsum,
        "source": source,
        "files": len(files),
        "bytes": sum(entry.size for entry in files),
        "last_action": action,
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _catalog_entry(source: Path, result: PackResult) -> dict[str, Any]:
    return {
        "record": result.record.name,
        "record_uuid": result.record_uuid,
        "patch_index": result.patch_index,
        "manifest_hashsum": result.manifest_hashsum,
        "source": str(source),
        "files": result.file_count,
        "bytes": result.total_bytes,
        "last_action": result.action,
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def register(catalog: Path, source: Path, result: PackResult) -> None:
    """Record one packed directory in the catalog (locked read-modify-write)."""
    _register_many(catalog, [(source, result)])


def _register_many(catalog: Path, packed: Iterable[tuple[Path, PackResult]]) -> None:
    entries = {result.record.name: _catalog_entry(source, result) for source, result in packed}
    if not entries:
        return

    def update(document: dict[str, Any]) -> dict[str, Any]:
        document.setdefault("records", {}).update(entries)
        return document

    atomic_update_json(catalog, update, default_data={"records": {}})


class _CatalogWriter:
    """Collects results and writes them to the catalog at most every FLUSH_SECONDS."""

    def __init__(self, catalog: Path) -> None:
        self.catalog = catalog
        self.pending: list[tuple[Path, PackResult]] = []
        self.flushed = time.monotonic()

    def add(self, outcome: PackOutcome) -> None:
        if outcome.result is not None:
            self.pending.append((outcome.source, outcome.result))
        if time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        _register_many(self.catalog, pending)
        self.flushed = time.monotonic()


def pack_plan(
    plan: PackPlan,
    *,
    executor: Executor | None = None,
    jobs: int = 1,
    options: PackOptions | None = None,
    trust_mtime: bool = False,
    on_done: Callable[[PackOutcome], None] | None = None,
    remote: RemoteOptions | None = None,
) -> list[PackOutcome]:
    """Pack every item of ``plan``, one task per record on ``executor``; sorted by name.

    Without ``executor``, a local pool of ``jobs`` processes runs the tasks.
    Failures stay per record; a run again does only what is left (records
    already packed come out unchanged, and no patch is written for them).
    Into object storage (``plan.remote``) no catalog is written: each record's
    newest manifest says what it holds (``ih5 log URL``).
    """
    catalog: _CatalogWriter | None = None
    if isinstance(plan.out_dir, Path):
        plan.out_dir.mkdir(parents=True, exist_ok=True)
        catalog = _CatalogWriter(plan.out_dir / CATALOG_NAME)

    def done(outcome: PackOutcome) -> None:
        if catalog is not None:
            catalog.add(outcome)
        if on_done is not None:
            on_done(outcome)

    # Largest first: the long tasks start early and the short ones fill the gaps.
    items = sorted(plan.items, key=lambda item: (-item.bytes, item.name))
    # The own local pool's workers take the caller's environment (AWS_* included, see
    # tasks.local_pool); an engine's workers (Dask) keep their own credentials.
    task = partial(
        pack_item, options=options or PackOptions(), trust_mtime=trust_mtime, remote=remote
    )
    try:
        outcomes = run_tasks(task, items, _failure, executor=executor, jobs=jobs, on_done=done)
    finally:
        if catalog is not None:
            catalog.flush()
    return sorted(outcomes, key=lambda outcome: outcome.record_name)


def pack_many(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
    jobs: int = 1,
    options: PackOptions | None = None,
    trust_mtime: bool = False,
    on_done: Callable[[PackOutcome], None] | None = None,
    remote: RemoteOptions | None = None,
) -> list[PackOutcome]:
    """Pack each subdirectory of ``root`` into ``out_dir/<name>``: :func:`plan_many`, then
    :func:`pack_plan` (on ``executor``, default: a local pool of ``jobs`` processes).
    ``out_dir`` may be an ``s3://BUCKET/PREFIX/`` URL (``remote``: its connection)."""
    return pack_plan(
        plan_many(root, out_dir, remote=remote),
        executor=executor,
        jobs=jobs,
        options=options,
        trust_mtime=trust_mtime,
        on_done=on_done,
        remote=remote,
    )


@dataclass(frozen=True)
class CatalogRebuild:
    """What :func:`rebuild_catalog` wrote: the entries, and the records it could not read."""

    records: dict[str, dict[str, Any]]
    problems: dict[str, str]


def _newest_manifest_only(directory: Path, name: str) -> tuple[tuple[str, int, str], TreeState]:
    """Identity and source state from the newest lone manifest of ``name`` (no containers)."""
    best: tuple[int, Path] | None = None
    for path in directory.glob(manifest_name(f"{name}*.ih5")):
        parsed = parse_container_name(path.name.removesuffix(MANIFEST_SUFFIX))
        if parsed is None or parsed[0] != name:
            continue
        loaded = IH5Manifest.load(path)
        candidate = (loaded.user_block.patch_index, path)
        best = candidate if best is None or candidate > best else best
    if best is None:
        raise PackError(f"no containers or manifests of {name} in {directory}", directory)
    raw = best[1].read_bytes()
    manifest = IH5Manifest.from_bytes(raw, best[1])
    identity = (str(manifest.user_block.record_uuid), best[0], hashsum_bytes(raw))
    return identity, TreeState.from_exts(manifest.manifest_exts, str(directory / name))


def _newest_state(directory: Path, name: str) -> tuple[tuple[str, int, str | None], TreeState]:
    containers = discover_containers(directory, name)
    if not containers:
        return _newest_manifest_only(directory, name)
    newest = validate_chain(load_refs(containers), verify_hashsums=False)[-1]
    manifest = check_manifest(newest.path, newest.user_block)
    if manifest is None:
        raise PackError(f"{newest.path} has no manifest: it was not written by 'ih5 pack'")
    ext = newest.user_block.ub_exts.get("ih5mf_v01", {})
    identity = (
        str(newest.user_block.record_uuid),
        newest.user_block.patch_index,
        ext.get("manifest_hashsum"),
    )
    return identity, TreeState.from_exts(manifest.manifest_exts, str(directory / name))


def rebuild_catalog(out_dir: str | os.PathLike[str]) -> CatalogRebuild:
    """Rewrite ``out_dir/catalog.json`` from the records that are there now.

    Each entry is read from the newest container's user block and manifest (no
    payload is hashed), so patches installed by copying them beside a record
    show. The source and last action of an existing entry are kept; records
    that cannot be read are left out and returned as problems.
    """
    directory = Path(out_dir)
    if not directory.is_dir():
        raise PackError(f"{directory} is not a directory; pass pack-many's output", directory)
    records: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    names = sorted(_record_names_in(directory))

    def update(document: dict[str, Any]) -> dict[str, Any]:
        old = document.get("records", {})
        for name in names:
            previous = old.get(name, {})
            try:
                identity, state = _newest_state(directory, name)
            except (Ih5Error, OSError) as exc:
                problems[name] = str(exc)
                continue
            records[name] = _entry(
                name, identity, state, previous.get("source"), previous.get("last_action")
            )
        return {**document, "records": dict(records)}

    atomic_update_json(directory / CATALOG_NAME, update, default_data={"records": {}})
    return CatalogRebuild(records, problems)
