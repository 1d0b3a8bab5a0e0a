"""Migrating legacy flat sidecars (one record, absolute paths) to the sub-directory format.

Unlike the published migration, this one keeps every field of the legacy
record (unknown ones too), never renames directories on disk, and keeps the
original bytes as a backup beside the sidecar before replacing it.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PureWindowsPath
from typing import Any

from ih5.errors import Ih5Error, MetadataNotFoundError, MetadataValidationError, MigrationError
from ih5.fs import atomic_update_json, atomic_write_bytes
from ih5.metadata._location import get_metadata_path
from ih5.metadata._validation import (
    AVAILABLE_BACKENDS,
    SUBDIRECTORIES,
    detect_legacy,
    parse_document,
)
from ih5.metadata._view import read_plate_document

DATA_DIRECTORIES = ("images", "data", "raw")
"""Where legacy plates keep their images, in order of preference."""

DEFAULT_SUB_DIR = "images"
ZARR_SUFFIX = ".zarr"
BACKUP_INFIX = ".legacy-"


@dataclass(frozen=True)
class MigrationResult:
    """What a migration did (or, for a dry run, would do).

    ``migrated`` is True when the sidecar was in the legacy format and was
    (dry run: would be) rewritten; ``backup_path`` is where the original
    bytes were kept (None for dry runs and no-ops); ``document`` is the
    migrated document, or the current one when nothing needed doing.
    """

    path: Path
    migrated: bool
    dry_run: bool
    sub_dir: str | None
    backup_path: Path | None
    document: dict[str, Any]


def data_directory(plate_root: str | os.PathLike[str]) -> tuple[str, str]:
    """Return ``(sub_dir, backend)`` for a legacy plate's images.

    The first of ``images``, ``data``, ``raw`` that exists, checking the
    ``.zarr``-suffixed name first (then the backend is ``zarr`` and the
    suffix is dropped from the sub-directory name); ``images`` on disk if none.
    """
    root = Path(plate_root)
    for name in DATA_DIRECTORIES:
        if (root / f"{name}{ZARR_SUFFIX}").is_dir():
            return name, "zarr"
        if (root / name).is_dir():
            return name, "disk"
    return DEFAULT_SUB_DIR, "disk"


def _relative_files(files: Any, sub_dir: str, path: Path) -> list[str]:
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        raise MigrationError(
            f"cannot migrate {path}: image_files should be a list of path strings", path
        )
    # PureWindowsPath splits on both separators, so paths written on Windows migrate too.
    return [f"{sub_dir}/{PureWindowsPath(name).name}" for name in files]


def plan_migration(plate_root: str | os.PathLike[str], doc: Any) -> dict[str, Any]:
    """Return the migrated form of the legacy document ``doc``, writing nothing.

    Raises :class:`MigrationError` when ``doc`` is not legacy or would not
    migrate into a valid document.
    """
    path = get_metadata_path(plate_root)
    if not detect_legacy(doc):
        raise MigrationError(f"{path} is not in the legacy flat format; nothing to migrate", path)
    sub_dir, backend = data_directory(plate_root)
    record = copy.deepcopy(dict(doc))
    record["image_files"] = _relative_files(record.get("image_files", []), sub_dir, path)
    record[AVAILABLE_BACKENDS] = {backend: True}
    migrated = {SUBDIRECTORIES: {sub_dir: record}}
    try:
        parse_document(migrated, path)
    except MetadataValidationError as exc:
        raise MigrationError(
            f"cannot migrate {path}: the legacy record does not fit the format: "
            + "; ".join(exc.problems),
            path,
        ) from exc
    return migrated


def _backup_path(path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    backup = path.with_name(f"{path.name}{BACKUP_INFIX}{stamp}")
    counter = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}{BACKUP_INFIX}{stamp}-{counter}")
        counter += 1
    return backup


class _AlreadyMigratedError(Exception):
    """Raised under the lock to leave a sidecar that is already migrated untouched."""

    def __init__(self, document: Any) -> None:
        super().__init__("not legacy")
        self.document = document


def _unchanged(path: Path, document: Any, dry_run: bool) -> MigrationResult:
    if not isinstance(document, dict) or SUBDIRECTORIES not in document:
        raise MigrationError(
            f"{path} is neither legacy nor current plate metadata; check its content", path
        )
    return MigrationResult(path, False, dry_run, None, None, document)


def migrate_legacy_metadata(
    plate_root: str | os.PathLike[str], *, dry_run: bool = False, timeout: float = 30.0
) -> MigrationResult:
    """Migrate the plate's legacy sidecar in place, under its lock, keeping a backup.

    A dry run only reads. A sidecar already in the current format is left
    untouched (``migrated`` is False). Failures raise :class:`MigrationError`
    (a missing sidecar :class:`ih5.errors.MetadataNotFoundError`).
    """
    path = get_metadata_path(plate_root)
    try:
        current = read_plate_document(path)
    except MetadataNotFoundError:
        raise
    except Ih5Error as exc:
        raise MigrationError(f"cannot migrate {path}: {exc}", path) from exc
    if not detect_legacy(current):
        return _unchanged(path, current, dry_run)
    # Planning before the lock refuses a record that cannot migrate without touching the plate.
    planned = plan_migration(plate_root, current)
    if dry_run:
        return MigrationResult(path, True, True, next(iter(planned[SUBDIRECTORIES])), None, planned)

    backups: list[Path] = []

    def migrate(document: Any) -> Any:
        if not detect_legacy(document):
            raise _AlreadyMigratedError(document)  # another process migrated it meanwhile
        planned = plan_migration(plate_root, document)
        backup = _backup_path(path)
        atomic_write_bytes(backup, path.read_bytes())
        backups.append(backup)
        return planned

    try:
        document = atomic_update_json(path, migrate, timeout)
    except _AlreadyMigratedError as done:
        return _unchanged(path, done.document, dry_run)
    except MigrationError:
        raise
    except (Ih5Error, OSError) as exc:
        raise MigrationError(f"cannot migrate {path}: {exc}", path) from exc
    return MigrationResult(
        path, True, False, next(iter(document[SUBDIRECTORIES])), backups[-1], document
    )
