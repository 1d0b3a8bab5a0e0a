"""The plate metadata reader on bad documents: a typed error or a document that round-trips.

A "correct read" is a document that loads, gives a plate view, and reads back the
same after being written out as it was read. Non-finite numbers (NaN, 1e999 read
as infinity) are read as Python's json reads them: other writers (``json.dump``)
produce them, and refusing them would lock those plates out; ih5's own writer
refuses to write them, with a typed error.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ih5
from ih5 import load_plate_metadata, plate_view

from .fuzzing import Tally, flipped, mutated_json, report, typed_or_result, wants_long

RECORD = {
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
DOCUMENT = {
    "subdirectories": {
        "images": RECORD,
        "checkpoints": {**RECORD, "grid_dimensions": None, "image_files": [], "main": None},
    },
    "available_backends": {"disk": True, "zarr": True},
}
"""The example of METADATA.md: the intact document every mutation starts from."""


def _text(doc: ih5.PlateMetadata) -> str:
    return json.dumps(doc.to_json(), sort_keys=True)


def count(tally: Tally, path: Path, raw: bytes) -> None:
    """Load ``raw`` from ``path``; count an ih5 error or a round trip, fail otherwise."""
    path.write_bytes(raw)
    typed, doc = typed_or_result(lambda: load_plate_metadata(path))
    assert path.read_bytes() == raw, "reading changed the document"
    if typed:
        assert isinstance(doc, ih5.MetadataValidationError), doc
        tally.count("typed")
        return
    plate_view(doc)
    path.write_text(json.dumps(doc.to_json()), "utf-8")
    if _text(load_plate_metadata(path)) == _text(doc):
        tally.count("correct")
    else:
        tally.count("failure", f"{raw[:200]!r} loaded but does not round-trip")


def test_load_plate_metadata_of_flipped_documents_is_typed_or_valid(
    tmp_path: Path, request: pytest.FixtureRequest, capsys: Any
) -> None:
    long = wants_long(request.config)
    raw = json.dumps(DOCUMENT, indent=2).encode("utf-8")
    tally = Tally("load_plate_metadata byte flips")
    masks = (0x01, 0x02, 0x20, 0x80, 0xFF) if long else (0x01, 0xFF)
    for data in flipped(raw, masks, 1 if long else 3):
        count(tally, tmp_path / "openhcs_metadata.json", data)
    for cut in range(0, len(raw), 1 if long else 7):
        count(tally, tmp_path / "openhcs_metadata.json", raw[:cut])
    report(tally, capsys)


def test_load_plate_metadata_of_mutated_documents_is_typed_or_valid(
    tmp_path: Path, request: pytest.FixtureRequest, capsys: Any
) -> None:
    """Wrong types at every level, missing keys, huge numbers, deep nesting, bad bytes."""
    tally = Tally("load_plate_metadata JSON mutations")

    @settings(
        max_examples=3000 if wants_long(request.config) else 300,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=mutated_json(DOCUMENT) | st.binary(max_size=200))
    def run(raw: bytes) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
            count(tally, Path(scratch) / "openhcs_metadata.json", raw)

    run()
    report(tally, capsys)


HOSTILE = {
    "empty": b"",
    "not-json": b"subdirectories: {}",
    "not-utf8": b'{"subdirectories": {"\xff": {}}}',
    "deep-list": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"subdirectories": ' * 50_000 + b"{}" + b"}" * 50_000,
    "huge-int": b'{"subdirectories": {"a": {"grid_dimensions": [1' + b"0" * 5000 + b", 2]}}}",
    "huge-float-digits": b'{"subdirectories": {"a": {"pixel_size": 1' + b"0" * 5000 + b"}}}",
    "top-level-list": b"[]",
    "records-list": b'{"subdirectories": []}',
    "record-string": b'{"subdirectories": {"a": "x"}}',
    "10MB-of-records": json.dumps(
        {"subdirectories": {f"s{i}": {"image_files": ["x" * 100] * 10} for i in range(8000)}}
    ).encode()[:-1],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_load_plate_metadata_of_a_hostile_file_raises_validation_error(
    tmp_path: Path, case: str
) -> None:
    path = tmp_path / "openhcs_metadata.json"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(ih5.MetadataValidationError):
        load_plate_metadata(path)


@pytest.mark.parametrize("case", ["deep-list", "deep-object"])
def test_regression_load_plate_metadata_of_deep_nesting_raises_validation_error(
    tmp_path: Path, case: str
) -> None:
    """Was a bare RecursionError from json.loads."""
    path = tmp_path / "openhcs_metadata.json"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(ih5.MetadataValidationError, match="recursion"):
        load_plate_metadata(path)


@pytest.mark.parametrize("case", ["huge-int", "huge-float-digits"])
def test_regression_load_plate_metadata_of_huge_numbers_raises_validation_error(
    tmp_path: Path, case: str
) -> None:
    """Was a bare ValueError: json.loads refuses integers past 4300 digits."""
    path = tmp_path / "openhcs_metadata.json"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(ih5.MetadataValidationError, match="digits"):
        load_plate_metadata(path)


def test_load_plate_metadata_reads_non_finite_numbers_as_python_does(tmp_path: Path) -> None:
    path = tmp_path / "openhcs_metadata.json"
    path.write_bytes(b'{"subdirectories": {"a": {"pixel_size": 1e999}, "b": {"pixel_size": NaN}}}')
    doc = load_plate_metadata(path)
    assert doc.subdirectories["a"].pixel_size == float("inf")
    assert doc.subdirectories["b"].pixel_size != doc.subdirectories["b"].pixel_size


@pytest.mark.parametrize("where", ["objectives", "unknown-field", "top-level"])
def test_regression_load_plate_metadata_refuses_nesting_it_cannot_hand_back(
    tmp_path: Path, where: str
) -> None:
    """Loaded, but to_json() then raised a bare ValueError past pydantic's 255 levels."""
    deep = "[" * 300 + "]" * 300
    text = {
        "objectives": '{"subdirectories": {"a": {"objectives": {"k": %s}}}}',
        "unknown-field": '{"subdirectories": {"a": {"k": %s}}}',
        "top-level": '{"subdirectories": {}, "k": %s}',
    }[where] % deep
    path = tmp_path / "openhcs_metadata.json"
    path.write_text(text, "utf-8")
    with pytest.raises(ih5.MetadataValidationError, match="nests deeper"):
        load_plate_metadata(path)


def test_load_plate_metadata_keeps_moderate_nesting_in_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "openhcs_metadata.json"
    path.write_text('{"subdirectories": {"a": {"k": %s}}}' % ("[" * 90 + "]" * 90), "utf-8")
    assert load_plate_metadata(path).to_json()["subdirectories"]["a"]["k"]


def test_regression_atomic_write_json_refuses_deep_nesting(tmp_path: Path) -> None:
    """Was a bare RecursionError from json.dumps."""
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ih5.UnserializableDataError):
        ih5.atomic_write_json(tmp_path / "x.json", deep)
    assert list(tmp_path.iterdir()) == []
