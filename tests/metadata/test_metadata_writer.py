"""AtomicMetadataWriter: each method, key order, unknown fields that survive every update."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ih5.metadata._writer as writer_module
from ih5.fs import atomic_write_json, grouped_update_json, read_json
from ih5.metadata import (
    AtomicMetadataWriter,
    MetadataUpdateRequest,
    SubdirectoryRecord,
    get_metadata_path,
)

WriterCall = Callable[[AtomicMetadataWriter, Path], None]


@pytest.fixture
def update_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Count the locked read-modify-write updates the writer makes."""
    calls: list[Path] = []
    real = grouped_update_json

    def counting(path: Path, *args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(writer_module, "grouped_update_json", counting)
    return calls


def test_get_metadata_path_is_the_sidecar_in_the_plate_root(plate: Path) -> None:
    assert get_metadata_path(plate) == plate / "openhcs_metadata.json"
    assert get_metadata_path(str(plate)) == plate / "openhcs_metadata.json"


def test_update_subdirectory_metadata_creates_missing_file(
    writer: AtomicMetadataWriter, sidecar: Path, record: dict[str, Any]
) -> None:
    writer.update_subdirectory_metadata(sidecar, "images", record)
    assert read_json(sidecar) == {"subdirectories": {"images": record}}


def test_update_subdirectory_metadata_replaces_whole_record(
    writer: AtomicMetadataWriter, sidecar: Path, record: dict[str, Any]
) -> None:
    writer.update_subdirectory_metadata(sidecar, "images", record)
    writer.update_subdirectory_metadata(sidecar, "images", {"image_files": []})
    assert read_json(sidecar)["subdirectories"]["images"] == {"image_files": []}


def test_update_subdirectory_metadata_writes_two_space_indented_json(
    writer: AtomicMetadataWriter, sidecar: Path
) -> None:
    writer.update_subdirectory_metadata(sidecar, "images", {"image_files": []})
    assert sidecar.read_text("utf-8").startswith('{\n  "subdirectories": {\n    "images"')


def test_update_subdirectory_metadata_accepts_a_model(
    writer: AtomicMetadataWriter, sidecar: Path, record: dict[str, Any]
) -> None:
    writer.update_subdirectory_metadata(sidecar, "images", SubdirectoryRecord(**record))
    assert read_json(sidecar)["subdirectories"]["images"] == record


def test_merge_subdirectory_metadata_writes_all_records_in_one_update(
    writer: AtomicMetadataWriter, sidecar: Path, update_calls: list[Path]
) -> None:
    records = {name: {"image_files": [f"{name}/a.tif"]} for name in ("a", "b", "c")}
    writer.merge_subdirectory_metadata(sidecar, records)
    assert read_json(sidecar)["subdirectories"] == records
    assert update_calls == [sidecar]


def test_writer_keeps_first_insertion_order_of_subdirectories(
    writer: AtomicMetadataWriter, sidecar: Path
) -> None:
    for name in ("images", "checkpoints", "results"):
        writer.update_subdirectory_metadata(sidecar, name, {"image_files": []})
    writer.update_subdirectory_metadata(sidecar, "checkpoints", {"image_files": ["x"]})
    writer.merge_subdirectory_metadata(sidecar, {"zeta": {}, "images": {"main": True}})
    order = list(read_json(sidecar)["subdirectories"])
    assert order == ["images", "checkpoints", "results", "zeta"]


def test_update_available_backends_sets_plate_level_backends(
    writer: AtomicMetadataWriter, sidecar: Path, record: dict[str, Any]
) -> None:
    writer.update_subdirectory_metadata(sidecar, "images", record)
    writer.update_available_backends(sidecar, {"disk": True, "zarr": False})
    document = read_json(sidecar)
    assert document["available_backends"] == {"disk": True, "zarr": False}
    assert document["subdirectories"]["images"] == record


def test_create_or_update_metadata_writes_record_and_backends_in_one_update(
    writer: AtomicMetadataWriter,
    sidecar: Path,
    record: dict[str, Any],
    update_calls: list[Path],
) -> None:
    writer.create_or_update_metadata(
        MetadataUpdateRequest(sidecar, "images", record, {"disk": True})
    )
    assert read_json(sidecar) == {
        "subdirectories": {"images": record},
        "available_backends": {"disk": True},
    }
    assert update_calls == [sidecar]


def test_create_or_update_metadata_without_backends_keeps_plate_backends(
    writer: AtomicMetadataWriter, sidecar: Path
) -> None:
    writer.create_or_update_metadata(MetadataUpdateRequest(sidecar, "images", {}, {"zarr": True}))
    writer.create_or_update_metadata(MetadataUpdateRequest(sidecar, "checkpoints", {}))
    assert read_json(sidecar)["available_backends"] == {"zarr": True}


def test_metadata_update_request_is_frozen(sidecar: Path) -> None:
    request = MetadataUpdateRequest(sidecar, "images", {})
    assert request.available_backends is None
    with pytest.raises(AttributeError):
        request.sub_dir = "other"  # type: ignore[misc]


def test_writer_keeps_unknown_fields(
    writer_call: WriterCall, writer: AtomicMetadataWriter, sidecar: Path
) -> None:
    document: dict[str, Any] = {
        "format_note": {"written_by": "another tool", "n": [1, 2.5, None]},
        "subdirectories": {"images": {"image_files": [], "custom": {"deep": [True]}}},
        "available_backends": {"disk": True},
        "trailer": "kept",
    }
    atomic_write_json(sidecar, document)
    writer_call(writer, sidecar)
    after = read_json(sidecar)
    assert after["format_note"] == document["format_note"]
    assert after["trailer"] == "kept"
    assert after["subdirectories"]["images"] == document["subdirectories"]["images"]
    assert list(after)[:2] == ["format_note", "subdirectories"]


def test_writer_leaves_no_temp_files(writer: AtomicMetadataWriter, sidecar: Path) -> None:
    for index in range(5):
        writer.update_subdirectory_metadata(sidecar, f"s{index}", {"image_files": []})
    names = sorted(path.name for path in sidecar.parent.iterdir())
    assert names == [sidecar.name, f"{sidecar.name}.lock"]
    assert json.loads(sidecar.read_text("utf-8"))["subdirectories"].keys() == {
        f"s{i}" for i in range(5)
    }
