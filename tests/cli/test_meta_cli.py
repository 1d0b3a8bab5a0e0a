"""``ih5 meta``: commands through CliRunner, exit codes, --json output and --help."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ih5.cli import _exits as exits
from ih5.cli import cli
from ih5.fs import atomic_write_json, read_json
from ih5.metadata import get_metadata_path

RECORD: dict[str, Any] = {
    "image_files": ["images/A01_s001_w1_z001.tif", "images/A01_s001_w2_z001.tif"],
    "channels": {"1": "DAPI", "2": None},
    "wells": {"A01": None, "A02": None},
    "available_backends": {"disk": True, "zarr": False},
    "main": True,
    "custom": {"kept": True},
}
DOCUMENT: dict[str, Any] = {
    "subdirectories": {"checkpoints": {"image_files": []}, "images": RECORD},
    "available_backends": {"disk": True},
}
LEGACY: dict[str, Any] = {"microscope_handler_name": "imagexpress", "image_files": ["/x/A01.tif"]}


def invoke(*args: str, stdin: str | None = None) -> Result:
    """Run ``ih5 meta ...`` as a user would, stdout and stderr kept apart."""
    return CliRunner().invoke(cli, ["meta", *args], input=stdin)


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    """A plate root with a current-format sidecar."""
    root = tmp_path / "plate"
    root.mkdir()
    atomic_write_json(get_metadata_path(root), DOCUMENT)
    return root


@pytest.fixture
def legacy_plate(tmp_path: Path) -> Path:
    """A plate root with a legacy flat sidecar and an ``images.zarr`` data directory."""
    root = tmp_path / "legacy"
    (root / "images.zarr").mkdir(parents=True)
    atomic_write_json(get_metadata_path(root), LEGACY)
    return root


def test_meta_show_json_prints_the_document(plate: Path) -> None:
    result = invoke("show", str(plate), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == DOCUMENT


def test_meta_show_lists_one_row_per_subdirectory(plate: Path) -> None:
    result = invoke("show", str(plate))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "subdirectory\tmain\timages\twells\tchannels\tbackends",
        "checkpoints\t\t0\t\t\t",
        "images\ttrue\t2\tA01,A02\t1,2\tdisk",
    ]
    assert result.stderr == "plate backends: disk\nmain sub-directory: images (flagged main)\n"


def test_meta_show_main_column_shows_what_is_stored(tmp_path: Path) -> None:
    """A record stored with "main": false shows false, not the fallback that treats it as main."""
    atomic_write_json(
        get_metadata_path(tmp_path), {"subdirectories": {"only": {"main": False}, "next": {}}}
    )
    result = invoke("show", str(tmp_path))
    assert result.exit_code == 0
    assert [line.split("\t")[:2] for line in result.stdout.splitlines()] == [
        ["subdirectory", "main"],
        ["only", "false"],
        ["next", ""],
    ]
    assert result.stderr.splitlines()[-1] == (
        "main sub-directory: only (the first one; none is flagged main)"
    )


def test_meta_show_missing_plate_exits_3_with_one_error_line(tmp_path: Path) -> None:
    result = invoke("show", str(tmp_path / "nowhere"))
    assert result.exit_code == exits.NOT_FOUND
    assert result.stdout == ""
    sidecar = get_metadata_path(tmp_path / "nowhere")
    assert result.stderr.splitlines() == [
        f"Error: no plate metadata at {sidecar}; is this a plate root?"
    ]


def test_meta_show_invalid_document_exits_6_naming_the_problem(plate: Path) -> None:
    atomic_write_json(get_metadata_path(plate), {"subdirectories": {"images": {"main": "yes"}}})
    result = invoke("show", str(plate))
    assert result.exit_code == exits.REFUSED
    assert "subdirectories.images.main" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_meta_set_writes_the_record(plate: Path, tmp_path: Path, source: str) -> None:
    record = {"image_files": ["results/a.tif"], "extra": [1, 2]}
    if source == "file":
        record_file = tmp_path / "record.json"
        record_file.write_text(json.dumps(record), "utf-8")
        result = invoke("set", str(plate), "results", "--from", str(record_file))
    else:
        result = invoke("set", str(plate), "results", "--from", "-", stdin=json.dumps(record))
    assert result.exit_code == 0
    document = read_json(get_metadata_path(plate))
    assert document["subdirectories"]["results"] == record
    assert list(document["subdirectories"]) == ["checkpoints", "images", "results"]


def test_meta_set_not_json_is_a_usage_error(plate: Path) -> None:
    result = invoke("set", str(plate), "images", "--from", "-", stdin="{ nope")
    assert result.exit_code == 2
    assert "Invalid value for '--from': not valid JSON" in result.stderr


def test_meta_set_invalid_record_exits_6_and_writes_nothing(plate: Path) -> None:
    before = get_metadata_path(plate).read_bytes()
    result = invoke("set", str(plate), "images", "--from", "-", stdin='{"pixel_size": "big"}')
    assert result.exit_code == exits.REFUSED
    assert result.stderr.startswith("Error: refusing to write ")
    assert "subdirectories.images.pixel_size" in result.stderr
    assert get_metadata_path(plate).read_bytes() == before


def test_meta_backends_sets_plate_level_backends(plate: Path) -> None:
    result = invoke("backends", str(plate), "disk=false", "zarr=TRUE", "memory=0")
    assert result.exit_code == 0
    document = read_json(get_metadata_path(plate))
    assert document["available_backends"] == {"disk": False, "zarr": True, "memory": False}
    assert document["subdirectories"] == DOCUMENT["subdirectories"]


@pytest.mark.parametrize("pair", ["disk", "disk=maybe", "s3=true", "=true"])
def test_meta_backends_bad_pair_is_a_usage_error(plate: Path, pair: str) -> None:
    before = get_metadata_path(plate).read_bytes()
    result = invoke("backends", str(plate), "zarr=true", pair)
    assert result.exit_code == 2
    assert f"{pair!r} is not BACKEND=BOOL" in result.stderr
    assert get_metadata_path(plate).read_bytes() == before


def test_meta_backends_missing_sidecar_exits_6(tmp_path: Path) -> None:
    result = invoke("backends", str(tmp_path), "disk=true")
    assert result.exit_code == exits.REFUSED
    assert result.stderr.splitlines() == [
        f"Error: cannot set available backends: {get_metadata_path(tmp_path)} does not exist; "
        "write a sub-directory record first"
    ]


def test_meta_migrate_dry_run_json_reports_the_plan(legacy_plate: Path) -> None:
    before = get_metadata_path(legacy_plate).read_bytes()
    result = invoke("migrate", str(legacy_plate), "--dry-run", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert (report["migrated"], report["dry_run"], report["backup"]) == (True, True, None)
    record = report["document"]["subdirectories"]["images"]
    assert record["image_files"] == ["images/A01.tif"]
    assert record["available_backends"] == {"zarr": True}
    assert get_metadata_path(legacy_plate).read_bytes() == before


def test_meta_migrate_json_reports_the_backup(legacy_plate: Path) -> None:
    result = invoke("migrate", str(legacy_plate), "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert (report["migrated"], report["dry_run"], report["sub_dir"]) == (True, False, "images")
    assert json.loads(Path(report["backup"]).read_text("utf-8")) == LEGACY
    assert read_json(get_metadata_path(legacy_plate)) == report["document"]


def test_meta_migrate_current_sidecar_says_nothing_to_do(plate: Path) -> None:
    result = invoke("migrate", str(plate))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.endswith("is already in the current format; nothing to do\n")


def test_meta_migrate_missing_plate_exits_3(tmp_path: Path) -> None:
    result = invoke("migrate", str(tmp_path / "nowhere"))
    assert result.exit_code == exits.NOT_FOUND
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Error: no plate metadata at ")


@pytest.mark.parametrize("command", [[], ["show"], ["set"], ["backends"], ["migrate"]])
def test_meta_every_command_has_help_with_examples(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Examples:\n    ih5 meta" in result.stdout or "Examples:\n  ih5 meta" in result.stdout
