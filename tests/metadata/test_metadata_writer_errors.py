"""AtomicMetadataWriter failures: typed errors naming the file, and nothing written."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ih5.errors import CorruptDocumentError, FileLockTimeoutError, UnserializableDataError
from ih5.fs import atomic_write_json, file_lock
from ih5.metadata import (
    AtomicMetadataWriter,
    MetadataValidationError,
    MetadataWriteError,
    get_metadata_path,
)

WriterCall = Callable[[AtomicMetadataWriter, Path], None]


@pytest.fixture
def held_lock(sidecar: Path) -> Iterator[None]:
    """Hold the sidecar's lock from another thread for the duration of the test."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with file_lock(sidecar, timeout=5.0):
            taken.set()
            done.wait(10.0)

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait(5.0)
    try:
        yield
    finally:
        done.set()
        thread.join(10.0)


def test_update_available_backends_missing_file_raises_and_creates_nothing(
    writer: AtomicMetadataWriter, plate: Path, sidecar: Path
) -> None:
    with pytest.raises(MetadataWriteError, match="does not exist") as caught:
        writer.update_available_backends(sidecar, {"disk": True})
    assert str(sidecar) in str(caught.value)
    assert caught.value.path == str(sidecar)
    assert list(plate.iterdir()) == []


def test_update_available_backends_rejects_unknown_backend(
    writer: AtomicMetadataWriter, sidecar: Path
) -> None:
    writer.update_subdirectory_metadata(sidecar, "images", {})
    before = sidecar.read_bytes()
    with pytest.raises(MetadataValidationError) as caught:
        writer.update_available_backends(sidecar, {"s3": True, "disk": "yes"})  # type: ignore[dict-item]
    assert caught.value.problems == (
        "available_backends.s3 (key): Input should be 'disk', 'memory' or 'zarr', got 's3'",
        "available_backends.disk: Input should be a valid boolean, got 'yes'",
    )
    assert sidecar.read_bytes() == before


def test_writer_corrupt_file_raises_write_error_and_keeps_bytes(
    writer_call: WriterCall, writer: AtomicMetadataWriter, sidecar: Path
) -> None:
    sidecar.write_bytes(b'{"subdirectories": {"images": ')
    with pytest.raises(MetadataWriteError) as caught:
        writer_call(writer, sidecar)
    assert str(sidecar) in str(caught.value)
    assert isinstance(caught.value.__cause__, CorruptDocumentError)
    assert sidecar.read_bytes() == b'{"subdirectories": {"images": '
    assert sorted(p.name for p in sidecar.parent.iterdir()) == [
        sidecar.name,
        f"{sidecar.name}.lock",
    ]


def test_writer_lock_timeout_raises_write_error_wrapping_it_once(
    writer_call: WriterCall, sidecar: Path, held_lock: None
) -> None:
    atomic_write_json(sidecar, {"subdirectories": {}})
    with pytest.raises(MetadataWriteError) as caught:
        writer_call(AtomicMetadataWriter(timeout=0.05), sidecar)
    assert isinstance(caught.value.__cause__, FileLockTimeoutError)
    assert not isinstance(caught.value.__cause__, MetadataWriteError)
    assert str(sidecar) in str(caught.value)


def test_writer_missing_plate_directory_raises_write_error(
    writer: AtomicMetadataWriter, tmp_path: Path
) -> None:
    sidecar = get_metadata_path(tmp_path / "no_such_plate")
    with pytest.raises(MetadataWriteError) as caught:
        writer.update_subdirectory_metadata(sidecar, "images", {})
    assert isinstance(caught.value.__cause__, OSError)
    assert str(sidecar) in str(caught.value)


@pytest.mark.parametrize(
    "document",
    [[1, 2], {"subdirectories": []}, {"image_files": ["/abs/images/a.tif"]}],
    ids=["not-an-object", "subdirectories-not-an-object", "legacy-flat-record"],
)
def test_writer_refuses_to_extend_a_document_of_the_wrong_shape(
    writer: AtomicMetadataWriter, sidecar: Path, document: Any
) -> None:
    atomic_write_json(sidecar, document)
    before = sidecar.read_bytes()
    with pytest.raises(MetadataWriteError) as caught:
        writer.update_subdirectory_metadata(sidecar, "images", {})
    assert isinstance(caught.value.__cause__, MetadataValidationError)
    assert sidecar.read_bytes() == before


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        (
            ["not", "an", "object"],
            "subdirectories.images: record should be a JSON object, got list",
        ),
        (
            {"grid_dimensions": [3, 3, 3]},
            "subdirectories.images.grid_dimensions: Tuple should have at most 2 items",
        ),
        ({"grid_dimensions": [3, "3"]}, "subdirectories.images.grid_dimensions[1]: Input should"),
        (
            {"pixel_size": "0.65"},
            "subdirectories.images.pixel_size: Input should be a valid number",
        ),
        ({"image_files": ["a", 1]}, "subdirectories.images.image_files[1]: Input should be"),
        ({"image_files": None}, "subdirectories.images.image_files: Input should be a valid"),
        (
            {"channels": {"1": 2}},
            "subdirectories.images.channels.1: Input should be a valid string",
        ),
        ({"wells": ["A01"]}, "subdirectories.images.wells: should be a JSON object"),
        ({"main": "yes"}, "subdirectories.images.main: Input should be a valid boolean"),
        ({"available_backends": {"s3": True}}, "subdirectories.images.available_backends.s3 (key)"),
        ({"plate_name": 7}, "subdirectories.images.plate_name: Input should be a valid string"),
    ],
)
def test_writer_invalid_record_raises_validation_error_and_writes_nothing(
    writer: AtomicMetadataWriter, plate: Path, sidecar: Path, metadata: Any, problem: str
) -> None:
    with pytest.raises(MetadataValidationError) as caught:
        writer.update_subdirectory_metadata(sidecar, "images", metadata)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(problem)
    assert str(sidecar) in str(caught.value)
    assert list(plate.iterdir()) == []


def test_writer_validation_error_lists_every_problem_of_every_record(
    writer: AtomicMetadataWriter, sidecar: Path
) -> None:
    updates: dict[str, dict[str, Any]] = {
        "images": {"pixel_size": "big", "wells": {"A01": 1}},
        "checkpoints": {"grid_dimensions": None, "main": 1},
    }
    with pytest.raises(MetadataValidationError) as caught:
        writer.merge_subdirectory_metadata(sidecar, updates)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "subdirectories.images.pixel_size",
        "subdirectories.images.wells.A01",
        "subdirectories.checkpoints.main",
    ]
    assert not sidecar.exists()


def test_writer_unserializable_record_raises_before_writing(
    writer: AtomicMetadataWriter, sidecar: Path
) -> None:
    with pytest.raises(UnserializableDataError):
        writer.update_subdirectory_metadata(sidecar, "images", {"extra": {1, 2}})
    assert not sidecar.exists()
