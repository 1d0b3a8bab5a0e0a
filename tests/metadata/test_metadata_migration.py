"""Legacy migration: detection, dry runs that touch nothing, backups, the zarr case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ih5.fs import atomic_write_json, read_json
from ih5.metadata import (
    MetadataNotFoundError,
    MigrationError,
    data_directory,
    detect_legacy,
    load_plate_metadata,
    migrate_legacy_metadata,
    plan_migration,
)
from tests.helpers.trees import snapshot

LEGACY: dict[str, Any] = {
    "microscope_handler_name": "imagexpress",
    "source_filename_parser_name": "ImageXpressFilenameParser",
    "grid_dimensions": [2, 2],
    "pixel_size": None,
    "image_files": ["/mnt/data/plate_1/images/A01_s001_w1_z001.tif", "C:\\plates\\A01_s002.tif"],
    "channels": {"1": None},
    "wells": {"A01": None},
    "sites": {"001": None, "002": None},
    "z_indexes": {"001": None},
    "lab_note": {"kept": True},
}


@pytest.fixture
def legacy_sidecar(sidecar: Path) -> Path:
    """The plate's sidecar in the legacy flat format."""
    atomic_write_json(sidecar, LEGACY)
    return sidecar


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (LEGACY, True),
        ({"image_files": []}, True),
        ({"subdirectories": {}, "image_files": ["/a.tif"]}, False),
        ({"subdirectories": {"images": {}}}, False),
        ({"available_backends": {"disk": True}}, False),
        ({}, False),
        ([LEGACY], False),
        (None, False),
    ],
    ids=[
        "legacy",
        "legacy-no-files",
        "has-subdirectories",
        "current",
        "backends-only",
        "empty",
        "list",
        "null",
    ],
)
def test_detect_legacy_recognises_flat_records_only(doc: Any, expected: bool) -> None:
    assert detect_legacy(doc) is expected


@pytest.mark.parametrize(
    ("directories", "expected"),
    [
        ((), ("images", "disk")),
        (("raw", "data"), ("data", "disk")),
        (("raw", "images"), ("images", "disk")),
        (("images.zarr",), ("images", "zarr")),
        (("data", "raw.zarr"), ("data", "disk")),
        (("images", "images.zarr"), ("images", "zarr")),
        (("other.zarr",), ("images", "disk")),
    ],
)
def test_data_directory_is_first_existing_candidate(
    plate: Path, directories: tuple[str, ...], expected: tuple[str, str]
) -> None:
    for name in directories:
        (plate / name).mkdir()
    assert data_directory(plate) == expected


def test_plan_migration_rewrites_image_files_below_the_sub_dir(plate: Path) -> None:
    (plate / "images").mkdir()
    record = plan_migration(plate, LEGACY)["subdirectories"]["images"]
    assert record["image_files"] == ["images/A01_s001_w1_z001.tif", "images/A01_s002.tif"]
    assert record["available_backends"] == {"disk": True}


def test_plan_migration_zarr_directory_sets_zarr_backend_and_drops_suffix(plate: Path) -> None:
    (plate / "images.zarr").mkdir()
    migrated = plan_migration(plate, LEGACY)
    assert list(migrated) == ["subdirectories"]
    assert list(migrated["subdirectories"]) == ["images"]
    record = migrated["subdirectories"]["images"]
    assert record["available_backends"] == {"zarr": True}
    assert record["image_files"][0] == "images/A01_s001_w1_z001.tif"


def test_plan_migration_keeps_every_other_field(plate: Path) -> None:
    record = plan_migration(plate, LEGACY)["subdirectories"]["images"]
    rest = {k: v for k, v in record.items() if k not in ("image_files", "available_backends")}
    assert rest == {k: v for k, v in LEGACY.items() if k != "image_files"}


def test_plan_migration_does_not_change_its_input(plate: Path) -> None:
    doc = {"image_files": ["/x/a.tif"], "wells": {"A01": None}}
    plan_migration(plate, doc)
    assert doc == {"image_files": ["/x/a.tif"], "wells": {"A01": None}}


@pytest.mark.parametrize(
    "doc",
    [{"subdirectories": {}}, {"image_files": "/a.tif"}, {"image_files": [], "pixel_size": "x"}],
    ids=["current-format", "files-not-a-list", "invalid-record"],
)
def test_plan_migration_refuses_what_it_cannot_migrate(plate: Path, doc: dict[str, Any]) -> None:
    with pytest.raises(MigrationError):
        plan_migration(plate, doc)


def test_migrate_legacy_metadata_dry_run_changes_nothing_on_disk(
    plate: Path, legacy_sidecar: Path
) -> None:
    (plate / "images.zarr").mkdir()
    before = snapshot(plate)
    result = migrate_legacy_metadata(plate, dry_run=True)
    assert snapshot(plate) == before
    assert (result.migrated, result.dry_run, result.backup_path) == (True, True, None)
    assert result.sub_dir == "images"
    assert result.document == plan_migration(plate, LEGACY)


def test_migrate_legacy_metadata_keeps_original_bytes_as_backup(
    plate: Path, legacy_sidecar: Path
) -> None:
    original = legacy_sidecar.read_bytes()
    result = migrate_legacy_metadata(plate)
    assert result.backup_path is not None
    assert result.backup_path.parent == plate
    assert result.backup_path.name.startswith("openhcs_metadata.json.legacy-")
    assert result.backup_path.name.endswith("Z")
    assert result.backup_path.read_bytes() == original


def test_migrate_legacy_metadata_writes_the_migrated_document(
    plate: Path, legacy_sidecar: Path
) -> None:
    (plate / "data").mkdir()
    result = migrate_legacy_metadata(plate)
    assert (result.migrated, result.dry_run, result.sub_dir) == (True, False, "data")
    assert read_json(legacy_sidecar) == result.document == plan_migration(plate, LEGACY)
    doc = load_plate_metadata(legacy_sidecar)
    assert doc.subdirectories["data"].image_files[1] == "data/A01_s002.tif"


def test_migrate_legacy_metadata_already_migrated_is_a_no_op(
    plate: Path, legacy_sidecar: Path
) -> None:
    migrate_legacy_metadata(plate)
    before = snapshot(plate)
    result = migrate_legacy_metadata(plate)
    assert snapshot(plate) == before
    assert (result.migrated, result.sub_dir, result.backup_path) == (False, None, None)
    assert result.document == read_json(legacy_sidecar)


def test_migrate_legacy_metadata_missing_sidecar_raises_not_found(plate: Path) -> None:
    with pytest.raises(MetadataNotFoundError):
        migrate_legacy_metadata(plate)
    assert list(plate.iterdir()) == []


@pytest.mark.parametrize(
    "content",
    [b"{ not json", b"[1, 2]", b'{"image_files": 3}'],
    ids=["corrupt", "not-plate-metadata", "bad-legacy-record"],
)
def test_migrate_legacy_metadata_failure_raises_and_keeps_bytes(
    plate: Path, sidecar: Path, content: bytes
) -> None:
    sidecar.write_bytes(content)
    with pytest.raises(MigrationError) as caught:
        migrate_legacy_metadata(plate)
    assert str(sidecar) in str(caught.value)
    assert snapshot(plate) == {sidecar.name: ("file", content)}
