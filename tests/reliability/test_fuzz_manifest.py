"""The manifest parser on bad bytes: ManifestError or a manifest that round-trips.

A "correct read" is a parsed manifest whose own bytes parse back to an equal one.
Inputs are the metador-core manifests, flipped byte by byte and mutated as JSON
(wrong types, missing keys, huge numbers, deep nesting, bytes that are not UTF-8).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ih5
from ih5 import IH5Manifest, IH5MFRecord, pack_directory

from .fuzzing import FIXTURES, Tally, flipped, mutated_json, report, typed_or_result, wants_long

MANIFESTS = [
    "mfrec.ih5mf.json",
    "mfrec.p1.ih5mf.json",
    "stub.ih5mf.json",
    "stub.p2.ih5mf.json",
    "merged.ih5mf.json",
]


@pytest.fixture(scope="module")
def manifests() -> dict[str, bytes]:
    if not FIXTURES.is_dir():
        pytest.skip(f"metador-core fixtures not found at {FIXTURES}")
    return {name: (FIXTURES / name).read_bytes() for name in MANIFESTS}


def count(tally: Tally, raw: bytes) -> None:
    """Parse ``raw``; count a ManifestError or a manifest whose bytes parse back to the same
    bytes; fail otherwise."""
    typed, result = typed_or_result(lambda: IH5Manifest.from_bytes(raw, "fuzz.ih5mf.json"))
    if typed:
        assert isinstance(result, ih5.ManifestError), result
        tally.count("typed")
    # Compared as bytes: NaN, which Python's json writes and pydantic reads, is not == NaN.
    elif IH5Manifest.from_bytes(result.to_bytes(), "again").to_bytes() == result.to_bytes():
        tally.count("correct")
    else:
        tally.count("failure", f"{raw[:200]!r} parsed but does not round-trip")


def test_manifest_from_bytes_of_flipped_fixtures_is_typed_or_valid(
    manifests: dict[str, bytes], request: pytest.FixtureRequest, capsys: Any
) -> None:
    masks = (0x01, 0x02, 0x20, 0x40, 0x80, 0xFF) if wants_long(request.config) else (0x01, 0xFF)
    tally = Tally("IH5Manifest.from_bytes byte flips")
    for raw in manifests.values():
        for data in flipped(raw, masks):
            count(tally, data)
    report(tally, capsys)


def test_manifest_from_bytes_of_cut_and_doubled_fixtures_is_typed_or_valid(
    manifests: dict[str, bytes], capsys: Any
) -> None:
    """Truncated files, and files with a stretch of their bytes repeated."""
    tally = Tally("IH5Manifest.from_bytes cuts")
    for raw in manifests.values():
        for cut in range(len(raw)):
            count(tally, raw[:cut])
            count(tally, raw[:cut] + raw[cut // 2 :])
    report(tally, capsys)


def test_manifest_from_bytes_of_mutated_json_is_typed_or_valid(
    manifests: dict[str, bytes], request: pytest.FixtureRequest, capsys: Any
) -> None:
    docs = [json.loads(raw) for raw in manifests.values()]
    tally = Tally("IH5Manifest.from_bytes JSON mutations")

    @settings(
        max_examples=3000 if wants_long(request.config) else 300,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=st.sampled_from(docs).flatmap(mutated_json))
    def run(raw: bytes) -> None:
        count(tally, raw)

    run()
    report(tally, capsys)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe{}",
        b"null",
        b"[]",
        b"{" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"manifest_uuid": ' + b"9" * 100_000 + b"}",
        b"{}" + b" " * 10_000_000,
    ],
    ids=["empty", "bom-garbage", "null", "list", "open-braces", "deep", "huge-int", "10MB"],
)
def test_manifest_load_of_a_hostile_file_raises_manifest_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "x.ih5mf.json"
    path.write_bytes(raw)
    with pytest.raises(ih5.ManifestError):
        IH5Manifest.load(path)


def test_regression_manifest_load_of_a_directory_raises_manifest_error(tmp_path: Path) -> None:
    """Was a bare IsADirectoryError."""
    (tmp_path / "x.ih5mf.json").mkdir()
    with pytest.raises(ih5.ManifestError, match="directory"):
        IH5Manifest.load(tmp_path / "x.ih5mf.json")


def test_regression_pack_directory_refuses_a_damaged_pack_state(tmp_path: Path) -> None:
    """A manifest whose 'ih5_pack' section does not parse ended in a bare ValidationError."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"one")
    pack_directory(tmp_path / "src", tmp_path / "out" / "rec")
    with IH5MFRecord(tmp_path / "out" / "rec", "a") as record:
        record["x"] = 1
        record.commit_patch(manifest_exts={"ih5_pack": {"entries": {"f": {"kind": "?"}}}})
    (tmp_path / "src" / "g").write_bytes(b"two")
    with pytest.raises(ih5.PackError, match="ih5_pack"):
        pack_directory(tmp_path / "src", tmp_path / "out" / "rec")
