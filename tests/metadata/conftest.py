"""Fixtures shared by the metadata floor's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ih5.metadata import AtomicMetadataWriter, MetadataUpdateRequest, get_metadata_path


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    """An empty plate root directory."""
    root = tmp_path / "plate"
    root.mkdir()
    return root


@pytest.fixture
def sidecar(plate: Path) -> Path:
    """Where the plate's sidecar lives (not created)."""
    return get_metadata_path(plate)


@pytest.fixture
def writer() -> AtomicMetadataWriter:
    """A writer that gives up quickly, so a hung lock fails the test instead of stalling it."""
    return AtomicMetadataWriter(timeout=5.0)


@pytest.fixture
def record() -> dict[str, Any]:
    """A complete, valid sub-directory record as the format documents it."""
    return {
        "microscope_handler_name": "imagexpress",
        "source_filename_parser_name": "ImageXpressFilenameParser",
        "grid_dimensions": [3, 3],
        "pixel_size": 0.65,
        "image_files": ["images/A01_s001_w1_z001.tif", "images/A01_s001_w2_z001.tif"],
        "channels": {"1": "DAPI", "2": None},
        "wells": {"A01": None},
        "sites": {"001": None},
        "z_indexes": {"001": None},
        "available_backends": {"zarr": True},
        "main": True,
        "objectives": {"magnification": "20x"},
        "acquisition_datetime": "2024-01-31T10:00:00",
        "plate_name": "plate_1",
    }


WriterCall = Callable[[AtomicMetadataWriter, Path], None]

WRITER_CALLS: dict[str, WriterCall] = {
    "update_subdirectory_metadata": lambda w, p: w.update_subdirectory_metadata(p, "new", {}),
    "merge_subdirectory_metadata": lambda w, p: w.merge_subdirectory_metadata(p, {"new": {}}),
    "update_available_backends": lambda w, p: w.update_available_backends(p, {"disk": True}),
    "create_or_update_metadata": lambda w, p: w.create_or_update_metadata(
        MetadataUpdateRequest(p, "new", {}, {"disk": True})
    ),
}


@pytest.fixture(params=list(WRITER_CALLS.values()), ids=list(WRITER_CALLS))
def writer_call(request: pytest.FixtureRequest) -> WriterCall:
    """Each writer method in turn, applied to a sidecar with a minimal valid argument."""
    call: WriterCall = request.param
    return call
