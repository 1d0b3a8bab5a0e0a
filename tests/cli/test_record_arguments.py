"""What a RECORD argument may be: DIR/NAME, a container file, or a directory holding one record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from ih5.cli import _exits as exits
from ih5.cli import cli
from ih5.record import IH5Record


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def make_record(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with IH5Record(path, "w") as rec:
        rec["x"] = np.arange(3)
    with IH5Record(path, "r+") as rec:
        rec["y"] = 1
    return path


def test_a_patch_container_file_names_its_record(tmp_path: Path) -> None:
    record = make_record(tmp_path / "rec")
    result = invoke("info", tmp_path / "rec.p1.ih5", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["patch_index"] == 1
    assert json.loads(invoke("info", record, "--json").stdout) == json.loads(result.stdout)


def test_a_directory_with_one_record_means_that_record(tmp_path: Path) -> None:
    make_record(tmp_path / "archive" / "rec")
    result = invoke("log", f"{tmp_path / 'archive'}/", "--json")
    assert result.exit_code == 0, result.stderr
    assert [row["index"] for row in json.loads(result.stdout)] == [0, 1]


def test_a_directory_beside_a_record_of_its_name_is_refused_as_ambiguous(tmp_path: Path) -> None:
    """``archive/`` holds a record and ``archive.ih5`` is another one: say both spellings."""
    make_record(tmp_path / "archive" / "rec")
    make_record(tmp_path / "archive")
    result = invoke("log", tmp_path / "archive")
    assert result.exit_code == exits.USAGE
    assert str(tmp_path / "archive" / "rec") in result.stderr
    assert f"{tmp_path / 'archive'}.ih5" in result.stderr


def test_a_directory_with_two_records_is_refused_naming_both(tmp_path: Path) -> None:
    make_record(tmp_path / "archive" / "one")
    make_record(tmp_path / "archive" / "two")
    result = invoke("verify", tmp_path / "archive")
    assert result.exit_code == exits.USAGE
    assert result.stdout == ""
    assert "more than one record" in result.stderr
    assert str(tmp_path / "archive" / "one") in result.stderr
    assert str(tmp_path / "archive" / "two") in result.stderr


def test_pack_into_an_existing_empty_directory_refuses_instead_of_writing_beside_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "out").mkdir()
    result = invoke("pack", tmp_path / "src", tmp_path / "out")
    assert result.exit_code == exits.USAGE
    assert f"give the record to create inside it as DIR/NAME, e.g. {tmp_path / 'out'}/" in (
        result.stderr
    )
    assert not (tmp_path / "out.ih5").exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_pack_into_a_directory_holding_one_record_patches_that_record(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    assert invoke("pack", tmp_path / "src", tmp_path / "out" / "rec").exit_code == 0
    (tmp_path / "src" / "b.txt").write_text("b")
    result = invoke("pack", tmp_path / "src", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["record"], data["patch_index"], data["added"]) == (
        str(tmp_path / "out" / "rec"),
        1,
        ["/b.txt"],
    )


@pytest.mark.parametrize(
    ("name", "suggestion"), [("my_run", "my-run"), ("run.2024", "run-2024"), ("a b", "a-b")]
)
def test_an_invalid_record_name_is_refused_with_a_valid_suggestion(
    tmp_path: Path, name: str, suggestion: str
) -> None:
    (tmp_path / "src").mkdir()
    result = invoke("pack", tmp_path / "src", tmp_path / name)
    assert result.exit_code == exits.USAGE
    assert f"record name {name!r} is not allowed" in result.stderr
    assert f"e.g. {tmp_path / suggestion}" in result.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "src"]
