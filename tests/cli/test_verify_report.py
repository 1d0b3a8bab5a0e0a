"""``ih5 verify`` and ``ih5 log`` report every file (ok, damaged, missing, stray), a damaged
patch hides no earlier state, and ``ih5 manifest --rebuild`` restores lost manifests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ih5.cli import _exits as exits
from ih5.cli import cli
from ih5.manifest import IH5MFRecord


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def statuses(result: Result) -> list[tuple[str, str]]:
    """(file name, status) of each entry of a --json report of verify or log."""
    data = json.loads(result.stdout)
    rows = data["containers"] if isinstance(data, dict) else data
    return [(Path(row["file"]).name, row["status"]) for row in rows]


@pytest.fixture
def packed(tmp_path: Path) -> Path:
    """A directory packed three times: base, patch 1, patch 2 (manifest-backed)."""
    source = tmp_path / "src"
    source.mkdir()
    record = tmp_path / "archive" / "rec"
    for step in range(3):
        (source / f"file{step}.txt").write_text(f"content {step}\n" * 100)
        assert invoke("pack", source, record).exit_code == 0
    return record


def flip_payload_byte(container: Path) -> None:
    data = bytearray(container.read_bytes())
    offset = data.rfind(b"content 2")
    data[offset] ^= 0xFF
    container.write_bytes(bytes(data))


def test_verify_lists_a_stray_copy_and_exits_1(packed: Path) -> None:
    shutil.copy(packed.parent / "rec.p1.ih5", packed.parent / "rec.p1 (copy).ih5")
    result = invoke("verify", packed, "--json")
    assert result.exit_code == exits.CHECK_FAILED
    assert statuses(result) == [
        ("rec.ih5", "ok"),
        ("rec.p1.ih5", "ok"),
        ("rec.p2.ih5", "ok"),
        ("rec.p1 (copy).ih5", "stray"),
    ]
    stray = json.loads(result.stdout)["containers"][-1]
    assert stray["index"] == 1
    assert "rename it to rec.p1.ih5 if it belongs" in stray["reason"]


def test_log_lists_a_lone_manifest_as_a_stray(packed: Path) -> None:
    shutil.copy(packed.parent / "rec.p2.ih5mf.json", packed.parent / "rec.p3.ih5mf.json")
    result = invoke("log", packed)
    assert result.exit_code == 0
    last = result.stdout.splitlines()[-1].split("\t")
    assert (last[0], last[1], last[5]) == ("3", "stray", "rec.p3.ih5mf.json")
    assert "a manifest without its container rec.p3.ih5" in last[6]


def test_a_damaged_newest_patch_leaves_log_and_earlier_states_readable(packed: Path) -> None:
    newest = packed.parent / "rec.p2.ih5"
    flip_payload_byte(newest)
    log = invoke("log", packed, "--json")
    assert log.exit_code == 0, log.stderr
    assert [row["index"] for row in json.loads(log.stdout)] == [0, 1, 2]
    earlier = invoke("tree", packed, "--at", 1, "--json")
    assert earlier.exit_code == 0, earlier.stderr
    assert "/file1.txt" in [entry["path"] for entry in json.loads(earlier.stdout)]
    newest_state = invoke("tree", packed)
    assert newest_state.exit_code == exits.DAMAGED
    assert newest_state.stderr.splitlines() == [
        f"Error: {newest} is damaged: "
        + newest_state.stderr.split(" is damaged: ", 1)[1].split("; the states")[0]
        + f"; the states before it stay readable with --at 1, and setting it aside "
        f"('mv {newest} {newest}.damaged') makes state 1 the newest"
    ]


def test_setting_a_damaged_patch_aside_as_told_makes_the_record_whole_again(packed: Path) -> None:
    newest = packed.parent / "rec.p2.ih5"
    flip_payload_byte(newest)
    newest.rename(newest.with_name(newest.name + ".damaged"))
    (packed.parent / "rec.p2.ih5mf.json").rename(packed.parent / "rec.p2.ih5mf.json.damaged")
    result = invoke("verify", packed)
    assert result.exit_code == 0, result.stdout
    assert result.stderr == f"{packed}: every hashsum and manifest matches (2 containers)\n"


def test_verify_reports_a_damaged_patch_and_every_other_container(packed: Path) -> None:
    flip_payload_byte(packed.parent / "rec.p2.ih5")
    result = invoke("verify", packed)
    assert result.exit_code == exits.CHECK_FAILED
    assert [line.split("\t")[1:4] for line in result.stdout.splitlines()] == [
        ["file", "status", "manifest"],
        ["rec.ih5", "ok", "ok"],
        ["rec.p1.ih5", "ok", "ok"],
        ["rec.p2.ih5", "damaged", "ok"],
    ]
    assert result.stderr == f"{packed}: 1 damaged; states up to 1 are sound (--at 1)\n"


def hand_edit(manifest: Path) -> None:
    document = json.loads(manifest.read_text())
    document["manifest_exts"]["note"] = "edited by hand"
    manifest.write_text(json.dumps(document, indent=2) + "\n")


def test_verify_catches_a_hand_edited_manifest(packed: Path) -> None:
    hand_edit(packed.parent / "rec.p1.ih5mf.json")
    result = invoke("verify", packed, "--json")
    assert result.exit_code == exits.CHECK_FAILED
    report = json.loads(result.stdout)
    assert [row["manifest"]["status"] for row in report["containers"]] == ["ok", "damaged", "ok"]
    assert "does not match" in report["containers"][1]["manifest"]["reason"]
    table = invoke("verify", packed)
    assert table.stderr == (
        f"{packed}: 1 manifest damaged; states up to 2 are sound (--at 2); "
        f"rebuild manifests with 'ih5 manifest {packed} --rebuild'\n"
    )


@pytest.mark.parametrize("damage", ["edited", "deleted"])
def test_manifest_rebuild_restores_the_manifest_byte_for_byte(packed: Path, damage: str) -> None:
    manifest = packed.parent / "rec.p2.ih5mf.json"
    original = manifest.read_bytes()
    if damage == "edited":
        hand_edit(manifest)
    else:
        manifest.unlink()
    assert invoke("verify", packed).exit_code == exits.CHECK_FAILED
    result = invoke("manifest", packed, "--rebuild", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    [outcome] = json.loads(result.stdout)
    assert (outcome["manifest"], outcome["rebuilt"]) == (str(manifest), True)
    assert manifest.read_bytes() == original
    if damage == "edited":
        assert outcome["set_aside"] == f"{manifest}.damaged"
        assert "edited by hand" in Path(outcome["set_aside"]).read_text()
    assert invoke("verify", packed).exit_code == 0
    source = packed.parent.parent / "src"
    (source / "after.txt").write_text("after the rebuild\n")
    repacked = invoke("pack", source, packed, "--json")
    assert repacked.exit_code == 0, repacked.stderr
    assert json.loads(repacked.stdout)["added"] == ["/after.txt"]


def test_manifest_rebuild_refuses_what_it_cannot_restore_exactly(tmp_path: Path) -> None:
    """Extensions the containers do not hold cannot be rebuilt: nothing is replaced by a guess."""
    record = tmp_path / "rec"
    with IH5MFRecord(record, "w") as rec:
        rec["x"] = 1
        rec.manifest_exts = {"lab": {"operator": "ada"}}
    manifest = tmp_path / "rec.ih5mf.json"
    manifest.unlink()
    result = invoke("manifest", record, "--rebuild")
    assert result.exit_code == exits.CHECK_FAILED
    [row] = result.stdout.splitlines()[1:]
    assert row.split("\t")[:2] == ["rec.ih5mf.json", "not rebuilt"]
    assert "cannot be rebuilt byte for byte; restore it from a copy" in row
    assert not manifest.exists()


def test_manifest_rebuild_with_nothing_to_do_says_so(packed: Path) -> None:
    result = invoke("manifest", packed, "--rebuild")
    assert result.exit_code == 0
    assert result.stderr == f"{packed}: every manifest matches its container; nothing to rebuild\n"


def test_messages_count_one_container_in_the_singular(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    record = tmp_path / "rec"
    assert invoke("pack", source, record).exit_code == 0
    assert invoke("verify", record).stderr == (
        f"{record}: every hashsum and manifest matches (1 container)\n"
    )
    merged = invoke("merge", record, tmp_path / "merged.ih5")
    assert merged.stderr.splitlines()[0] == (
        f"merging 1 container of {record} into {tmp_path / 'merged.ih5'} ..."
    )
