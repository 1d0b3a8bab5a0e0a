"""Reading the sidecar: the typed models, every problem with its JSON path, the plate view."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pydantic
import pytest

from ih5.fs import atomic_write_json
from ih5.metadata import (
    MetadataNotFoundError,
    MetadataValidationError,
    PlateMetadata,
    SubdirectoryRecord,
    load_plate_metadata,
    main_subdirectory,
    plate_view,
)


def plate_of(*records: tuple[str, dict[str, Any]], **top: Any) -> PlateMetadata:
    """A plate document with the given (name, record) pairs in order."""
    return PlateMetadata.model_validate({"subdirectories": dict(records), **top})


def test_load_plate_metadata_reads_the_documented_example(
    sidecar: Path, record: dict[str, Any]
) -> None:
    atomic_write_json(
        sidecar,
        {
            "subdirectories": {"images": record, "checkpoints": {"grid_dimensions": None}},
            "available_backends": {"disk": True, "zarr": True},
        },
    )
    doc = load_plate_metadata(sidecar)
    images = doc.subdirectories["images"]
    assert list(doc.subdirectories) == ["images", "checkpoints"]
    assert images.grid_dimensions == (3, 3)
    assert images.pixel_size == 0.65
    assert images.channels == {"1": "DAPI", "2": None}
    assert images.is_main
    assert doc.subdirectories["checkpoints"].image_files == ()
    assert doc.available_backends == {"disk": True, "zarr": True}


def test_load_plate_metadata_reports_every_problem_with_its_json_path(sidecar: Path) -> None:
    atomic_write_json(
        sidecar,
        {
            "subdirectories": {
                "images": {"grid_dimensions": [3], "image_files": "a.tif", "main": True},
                "checkpoints": 5,
            },
            "available_backends": {"disk": "true"},
        },
    )
    with pytest.raises(MetadataValidationError) as caught:
        load_plate_metadata(sidecar)
    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        "subdirectories.images.grid_dimensions[1]",
        "subdirectories.images.image_files",
        "subdirectories.checkpoints",
        "available_backends.disk",
    ]
    assert str(sidecar) in str(caught.value)
    assert all(problem in str(caught.value) for problem in caught.value.problems)


def test_load_plate_metadata_missing_file_raises_not_found(sidecar: Path) -> None:
    with pytest.raises(MetadataNotFoundError, match="no plate metadata") as caught:
        load_plate_metadata(sidecar)
    assert isinstance(caught.value, FileNotFoundError)
    assert caught.value.path == str(sidecar)


def test_load_plate_metadata_not_json_raises_validation_error(sidecar: Path) -> None:
    sidecar.write_bytes(b"{ nope")
    with pytest.raises(MetadataValidationError, match="not valid JSON") as caught:
        load_plate_metadata(sidecar)
    assert caught.value.problems[0].startswith("(document): not valid JSON")


def test_load_plate_metadata_legacy_document_suggests_migration(sidecar: Path) -> None:
    atomic_write_json(sidecar, {"image_files": ["/data/plate/images/A01.tif"]})
    with pytest.raises(MetadataValidationError, match="ih5 meta migrate"):
        load_plate_metadata(sidecar)


@pytest.mark.parametrize("given", [{}, {"pixel_size": None}], ids=["missing", "null"])
def test_subdirectory_record_unknown_pixel_size_reads_as_one(given: dict[str, Any]) -> None:
    assert SubdirectoryRecord.model_validate(given).pixel_size == 1.0


@pytest.mark.parametrize("main", [True, False, None])
def test_subdirectory_record_main_flag_reads_true_false_or_null(main: bool | None) -> None:
    assert SubdirectoryRecord.model_validate({"main": main}).is_main is (main is True)


def test_subdirectory_record_keeps_unknown_fields() -> None:
    record = SubdirectoryRecord.model_validate({"image_files": [], "custom": {"a": [1]}})
    assert record.model_extra == {"custom": {"a": [1]}}


def test_plate_metadata_is_frozen() -> None:
    doc = plate_of(("images", {}))
    with pytest.raises(pydantic.ValidationError):
        doc.available_backends = {"disk": True}


def test_plate_metadata_to_json_gives_back_the_fields_it_was_read_with(
    record: dict[str, Any],
) -> None:
    document = {
        "extra_top": [1, {"x": None}],
        "subdirectories": {"b": {"custom": 1}, "a": record},
        "available_backends": {"memory": False},
    }
    assert PlateMetadata.model_validate(document).to_json() == document
    assert list(PlateMetadata.model_validate(document).to_json()["subdirectories"]) == ["b", "a"]


def test_metadata_validation_error_pickles_with_its_problems(sidecar: Path) -> None:
    error = MetadataValidationError("bad", sidecar, ("a: x", "b: y"))
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.path, copy.problems) == ("bad", str(sidecar), ("a: x", "b: y"))


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ((("a", {}), ("b", {"main": True}), ("c", {"main": True})), "b"),
        ((("a", {"main": None}), ("b", {"main": False})), "a"),
        ((), None),
    ],
    ids=["first-main", "no-main-takes-first", "empty"],
)
def test_main_subdirectory_is_first_main_record_else_first(
    records: tuple[tuple[str, dict[str, Any]], ...], expected: str | None
) -> None:
    assert main_subdirectory(plate_of(*records)) == expected


def test_plate_view_takes_the_main_records_fields() -> None:
    doc = plate_of(
        ("checkpoints", {"pixel_size": 2.0, "plate_name": "ck"}),
        ("images", {"pixel_size": 0.65, "plate_name": "p1", "main": True, "custom": 1}),
    )
    view = plate_view(doc)
    assert (view.pixel_size, view.plate_name, view.model_extra) == (0.65, "p1", {"custom": 1})


def test_plate_view_concatenates_image_files_in_subdirectory_order() -> None:
    doc = plate_of(
        ("images", {"image_files": ["images/a.tif", "images/b.tif"]}),
        ("checkpoints", {"image_files": ["checkpoints/a.tif"], "main": True}),
    )
    assert plate_view(doc).image_files == ("images/a.tif", "images/b.tif", "checkpoints/a.tif")


def test_plate_view_unions_components_with_earlier_records_winning() -> None:
    doc = plate_of(
        ("images", {"channels": {"1": "DAPI", "2": None}, "wells": None}),
        ("checkpoints", {"channels": {"2": "GFP", "3": "RFP"}, "wells": {"A01": None}}),
    )
    view = plate_view(doc)
    assert view.channels == {"1": "DAPI", "2": None, "3": "RFP"}
    assert view.wells == {"A01": None}
    assert view.sites is None


@pytest.mark.parametrize(
    ("top", "expected"),
    [({"available_backends": {"zarr": True}}, {"zarr": True}), ({}, {"disk": True})],
    ids=["plate-level", "falls-back-to-main-record"],
)
def test_plate_view_uses_plate_level_backends(
    top: dict[str, Any], expected: dict[str, bool]
) -> None:
    doc = plate_of(("images", {"available_backends": {"disk": True}}), **top)
    assert plate_view(doc).available_backends == expected


def test_plate_view_of_an_empty_plate_is_an_empty_record() -> None:
    view = plate_view(plate_of(available_backends={"disk": True}))
    assert (view.image_files, view.channels, view.available_backends) == ((), None, {"disk": True})
