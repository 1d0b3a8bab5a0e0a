"""``pack_many``: pack every subdirectory of a root as its own record, in worker processes.

Each worker registers its record in ``OUT_DIR/catalog.json`` through a locked,
atomic JSON update, so workers never lose each other's entries and a killed
worker leaves the catalog as it was before its update.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ih5.errors import Ih5Error, PackError
from ih5.fs import atomic_update_json
from ih5.pack.codecs import PackOptions
from ih5.pack.packer import PackResult, pack_directory

CATALOG_NAME = "catalog.json"


@dataclass(frozen=True)
class PackOutcome:
    """The result for one subdirectory: a PackResult or the error that stopped it."""

    source: Path
    record_name: str
    result: PackResult | None = None
    error: str | None = None


def record_name_for(directory_name: str) -> str:
    """A valid record name (``[A-Za-z0-9-]+``) for a directory name."""
    name = re.sub(r"[^A-Za-z0-9-]+", "-", directory_name).strip("-")
    if not name:
        raise PackError(f"cannot derive a record name from {directory_name!r}", directory_name)
    return name


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

    def update(document: dict[str, Any]) -> dict[str, Any]:
        document.setdefault("records", {})[result.record.name] = _catalog_entry(source, result)
        return document

    atomic_update_json(catalog, update, default_data={"records": {}})


def _pack_one(
    source: Path, out_dir: Path, name: str, options: PackOptions, trust_mtime: bool
) -> PackOutcome:
    try:
        result = pack_directory(source, out_dir / name, options=options, trust_mtime=trust_mtime)
        register(out_dir / CATALOG_NAME, source, result)
    except Ih5Error as exc:
        return PackOutcome(source, name, error=str(exc))
    except OSError as exc:
        # One unreadable or full disk must not hide what the other workers did.
        return PackOutcome(source, name, error=f"{exc.strerror or exc}: {exc.filename or source}")
    return PackOutcome(source, name, result=result)


def pack_many(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    jobs: int = 1,
    options: PackOptions | None = None,
    trust_mtime: bool = False,
    on_done: Callable[[PackOutcome], None] | None = None,
) -> list[PackOutcome]:
    """Pack each subdirectory of ``root`` into ``out_dir/<name>`` with ``jobs`` processes."""
    source_root = Path(root)
    if not source_root.is_dir():
        raise PackError(f"{source_root} is not a directory", source_root)
    sources = sorted(path for path in source_root.iterdir() if path.is_dir())
    names = [record_name_for(path.name) for path in sources]
    clashes = {name for name in names if names.count(name) > 1}
    if clashes:
        raise PackError(
            f"subdirectories of {source_root} map to the same record name {sorted(clashes)}; "
            "rename them so they differ in letters, digits or '-'",
            source_root,
        )
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    options = options or PackOptions()
    outcomes: list[PackOutcome] = []
    # Not "fork": a child must not inherit HDF5 state of files its parent has open.
    context = multiprocessing.get_context("spawn" if os.name == "nt" else "forkserver")
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context) as pool:
        futures = [
            pool.submit(_pack_one, source, target, name, options, trust_mtime)
            for source, name in zip(sources, names, strict=True)
        ]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
    return sorted(outcomes, key=lambda outcome: outcome.record_name)
