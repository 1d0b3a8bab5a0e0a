"""What people reach for: ``cat`` of a packed file, ``get``, ``--at``, ``diff`` defaults,
``tree`` of odd datasets and a quiet end when the reader of stdout goes away."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from click.testing import CliRunner, Result

from ih5.cli import _exits as exits
from ih5.cli import cli
from ih5.record import IH5Record

NOTES_V0 = "first notes\n" * 1000
NOTES_V1 = "second notes, longer\n" * 1000


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


@pytest.fixture
def packed(tmp_path: Path) -> Path:
    """A source packed twice: state 0 with notes v0, state 1 with notes v1 and a new image."""
    source = tmp_path / "src"
    (source / "images").mkdir(parents=True)
    (source / "notes.txt").write_text(NOTES_V0)
    (source / "images" / "a.bin").write_bytes(bytes(range(256)) * 4)
    record = tmp_path / "archive" / "rec"
    assert invoke("pack", source, record).exit_code == 0
    (source / "notes.txt").write_text(NOTES_V1)
    (source / "images" / "b.bin").write_bytes(b"\x00\xff" * 100)
    assert invoke("pack", source, record).exit_code == 0
    return record


def test_cat_of_a_packed_file_writes_its_original_bytes(packed: Path) -> None:
    result = invoke("cat", packed, "/notes.txt")
    assert result.exit_code == 0
    assert result.stdout_bytes == NOTES_V1.encode()
    assert result.stderr == ""


def test_cat_at_an_earlier_state_writes_that_version(packed: Path) -> None:
    result = invoke("cat", packed, "/notes.txt", "--at", 0)
    assert result.exit_code == 0
    assert result.stdout_bytes == NOTES_V0.encode()


def test_cat_json_of_a_packed_file_holds_its_text_not_integers(packed: Path) -> None:
    result = invoke("cat", packed, "/notes.txt", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["value"] == NOTES_V1
    binary = json.loads(invoke("cat", packed, "/images/b.bin", "--json").stdout)
    assert binary["value"] == {"base64": base64.b64encode(b"\x00\xff" * 100).decode()}
    assert len(result.stdout) < 2 * len(NOTES_V1)


def test_cat_values_prints_the_dataset_as_numbers(packed: Path) -> None:
    result = invoke("cat", packed, "/images/b.bin", "--values", "--slice", "0:4")
    assert result.exit_code == 0
    assert result.stdout == "[  0 255   0 255]\n"


def test_get_extracts_one_file_as_packed(packed: Path, tmp_path: Path) -> None:
    result = invoke("get", packed, "/notes.txt", tmp_path / "notes.txt", "--at", 0)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "notes.txt").read_text() == NOTES_V0
    assert result.stderr == (
        f"extracted /notes.txt (1 file, {len(NOTES_V0)} bytes) to {tmp_path / 'notes.txt'}\n"
    )


def test_get_into_a_directory_keeps_the_file_name(packed: Path, tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    assert invoke("get", packed, "/images/a.bin", tmp_path / "here").exit_code == 0
    assert (tmp_path / "here" / "a.bin").read_bytes() == bytes(range(256)) * 4


def test_get_a_directory_extracts_its_subtree(packed: Path, tmp_path: Path) -> None:
    result = invoke("get", packed, "/images", tmp_path / "images", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["files"] == 2
    assert sorted(path.name for path in (tmp_path / "images").iterdir()) == ["a.bin", "b.bin"]


def test_get_refuses_to_overwrite_a_file(packed: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = invoke("get", packed, "/notes.txt", tmp_path / "notes.txt")
    assert result.exit_code == exits.REFUSED
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_get_a_missing_path_says_how_to_list_the_record(packed: Path, tmp_path: Path) -> None:
    result = invoke("get", packed, "/nope.txt", tmp_path / "x")
    assert result.exit_code == exits.REFUSED
    assert f"list what is there with 'ih5 tree {packed}'" in result.stderr


def test_unpack_at_an_earlier_state_restores_that_state(packed: Path, tmp_path: Path) -> None:
    result = invoke("unpack", packed, tmp_path / "v0", "--at", 0)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "v0" / "notes.txt").read_text() == NOTES_V0
    assert not (tmp_path / "v0" / "images" / "b.bin").exists()


def test_diff_defaults_to_the_previous_state_against_the_newest(packed: Path) -> None:
    result = invoke("diff", packed, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["from"], data["to"], data["added"]) == (0, 1, ["/images/b.bin"])
    assert [change["path"] for change in data["changed"]] == ["/notes.txt"]


def test_diff_exit_code_is_1_when_states_differ_and_0_when_not(packed: Path) -> None:
    assert invoke("diff", packed, "--exit-code").exit_code == exits.CHECK_FAILED
    same = invoke("diff", packed, "--from", 1, "--to", 1, "--exit-code")
    assert same.exit_code == 0
    assert invoke("diff", packed).exit_code == 0


def test_diff_paths_are_sorted_and_spelled_as_pack_json_spells_them(
    packed: Path, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "a-z").write_text("sorts before a/ by its '-'")
    (source / "images" / "c.bin").write_bytes(b"c")
    packed_json = json.loads(invoke("pack", source, packed, "--json").stdout)
    diff_json = json.loads(invoke("diff", packed, "--json").stdout)
    assert diff_json["added"] == packed_json["added"] == ["/a-z", "/images/c.bin"]
    table = invoke("diff", packed)
    assert [line.split("\t")[1] for line in table.stdout.splitlines()[1:]] == sorted(
        line.split("\t")[1] for line in table.stdout.splitlines()[1:]
    )


def test_diff_of_a_record_with_one_state_asks_for_from(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec["x"] = 1
    result = invoke("diff", tmp_path / "rec")
    assert result.exit_code == exits.USAGE
    assert "has no state before 0; give --from" in result.stderr


def test_tree_shows_an_empty_dataset(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec["nothing"] = h5py.Empty("f8")
        rec["x"] = np.arange(2)
    result = invoke("tree", tmp_path / "rec")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["/", "  nothing  (empty) float64", "  x  (2,) int64"]
    entries = json.loads(invoke("tree", tmp_path / "rec", "--json").stdout)
    assert entries[1] == {"path": "/nothing", "type": "dataset", "shape": None, "dtype": "float64"}


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        for index in range(3000):
            rec[f"d{index:04}"] = index
    env = {key: value for key, value in os.environ.items() if key != "FORCE_COLOR"}
    command = (
        f"{sys.executable} -m ih5 tree {tmp_path / 'rec'} | head -1; echo status ${{PIPESTATUS[0]}}"
    )
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.stdout.splitlines() == ["/", f"status {exits.BROKEN_PIPE}"]
    assert done.stderr == ""
