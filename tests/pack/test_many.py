"""``pack_many``: one record per subdirectory, worker processes, a catalog that survives kills."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ih5 import PackError, read_json
from ih5.manifest import IH5MFRecord
from ih5.pack import (
    CATALOG_NAME,
    PackOutcome,
    pack_directory,
    pack_many,
    plan_many,
    rebuild_catalog,
    record_name_for,
)
from tests.helpers.trees import snapshot

from .helpers import Link, container_names, make_tree, unpacked

SUBDIRS: dict[str, dict[str, bytes | None]] = {
    "plate_1": {"a.bin": b"1" * 100, "wells/A01.txt": b"A01\n"},
    "plate_2": {"a.bin": b"2" * 200, "empty": None},
    "run 3": {"b.bin": b"3" * 300},
    "x": {"deep/er/c.bin": b"4"},
}
NAMES = {"plate_1": "plate-1", "plate_2": "plate-2", "run 3": "run-3", "x": "x"}


def make_root(tmp_path: Path, subdirs: dict[str, Any] = SUBDIRS) -> Path:
    root = tmp_path / "root"
    for name, spec in subdirs.items():
        make_tree(root / name, spec)
    (root / "README.txt").write_bytes(b"plain files at the root are not packed")
    return root


def catalog_records(out: Path) -> dict[str, Any]:
    records: dict[str, Any] = read_json(out / CATALOG_NAME)["records"]
    return records


@pytest.mark.parametrize("jobs", [1, 2, 4])
def test_pack_many_packs_each_subdirectory_as_its_own_record(tmp_path: Path, jobs: int) -> None:
    root = make_root(tmp_path)
    out = tmp_path / "out"
    outcomes = pack_many(root, out, jobs=jobs)
    assert [outcome.record_name for outcome in outcomes] == sorted(NAMES.values())
    assert all(outcome.error is None for outcome in outcomes)
    for directory, name in NAMES.items():
        assert container_names(out, name) == {f"{name}.ih5"}
        assert unpacked(out / name, tmp_path / "back" / name) == snapshot(root / directory)


def test_pack_many_catalog_matches_the_records(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    out = tmp_path / "out"
    pack_many(root, out, jobs=2)
    records = catalog_records(out)
    assert sorted(records) == sorted(NAMES.values())
    for directory, name in NAMES.items():
        entry = records[name]
        with IH5MFRecord(out / name) as rec:
            user_block = rec.user_block
        assert entry["record_uuid"] == str(user_block.record_uuid)
        assert entry["patch_index"] == user_block.patch_index == 0
        assert entry["manifest_hashsum"] == user_block.ub_exts["ih5mf_v01"]["manifest_hashsum"]
        assert entry["source"] == str(root / directory)
        assert entry["last_action"] == "created"
        assert entry["files"] == len([v for v in SUBDIRS[directory].values() if v is not None])


def test_pack_many_repacks_only_changed_subdirectories(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    out = tmp_path / "out"
    pack_many(root, out, jobs=2)
    (root / "run 3" / "b.bin").write_bytes(b"changed")
    outcomes = {outcome.record_name: outcome for outcome in pack_many(root, out, jobs=2)}
    actions = {name: outcome.result.action for name, outcome in outcomes.items() if outcome.result}
    assert actions == {
        "plate-1": "unchanged",
        "plate-2": "unchanged",
        "run-3": "patched",
        "x": "unchanged",
    }
    entry = catalog_records(out)["run-3"]
    assert (entry["patch_index"], entry["last_action"]) == (1, "patched")


def test_pack_many_reports_each_subdirectory_as_it_finishes(tmp_path: Path) -> None:
    seen: list[PackOutcome] = []
    outcomes = pack_many(make_root(tmp_path), tmp_path / "out", jobs=2, on_done=seen.append)
    assert sorted(seen, key=lambda outcome: outcome.record_name) == outcomes


@pytest.mark.parametrize(
    ("directory", "name"),
    [
        ("plate_1", "plate-1"),
        ("Plate 2 (repeat)", "Plate-2-repeat"),
        ("__x__", "x"),
        ("a.b.c", "a-b-c"),
        ("already-fine-09", "already-fine-09"),
        ("Ünïcode", "Unicode"),
        ("ünï", "uni"),
        ("Straße 5µm", "Strasse-5um"),
        ("\uff30late", "Plate"),  # a full-width P
        ("Ølstykke_æble", "Olstykke-aeble"),
    ],
)
def test_record_name_for_transliterates_directory_names(directory: str, name: str) -> None:
    assert record_name_for(directory) == name


@pytest.mark.parametrize("directory", ["___", "...", "☃", "日本"])
def test_record_name_for_refuses_names_without_letters_or_digits(directory: str) -> None:
    with pytest.raises(PackError, match="record name"):
        record_name_for(directory)


def test_pack_many_refuses_clashing_record_names_naming_the_directories(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"plate_1": {"a": b"a"}, "plate-1": {"b": b"b"}, "y": {}})
    with pytest.raises(
        PackError, match="'plate-1' and 'plate_1' would all become record 'plate-1'"
    ):
        pack_many(root, tmp_path / "out", jobs=2)
    assert not (tmp_path / "out").exists()


def test_pack_many_refuses_a_directory_without_letters_naming_it(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"☃": {"a": b"a"}, "y": {"b": b"b"}})
    with pytest.raises(PackError, match="'☃' has no Latin letters or digits"):
        pack_many(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_plan_lists_records_with_sizes_and_writes_nothing(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    out = tmp_path / "out"
    plan = plan_many(root, out)
    assert [(item.name, item.source, item.files, item.bytes) for item in plan.items] == [
        ("plate-1", str(root / "plate_1"), 2, 104),
        ("plate-2", str(root / "plate_2"), 1, 200),
        ("run-3", str(root / "run 3"), 1, 300),
        ("x", str(root / "x"), 1, 1),
    ]
    assert (plan.files, plan.bytes) == (5, 605)
    assert not any(item.exists for item in plan.items)
    assert not out.exists()


def test_plan_reports_loose_files_and_the_output_directory_as_skipped(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    out = root / "archive"
    pack_many(root, out)
    plan = plan_many(root, out)
    assert [(Path(entry.path).name, entry.reason) for entry in plan.skipped] == [
        ("README.txt", "not a directory (only subdirectories are packed)"),
        ("archive", "the output directory"),
    ]
    assert all(item.exists for item in plan.items)
    assert "archive" not in catalog_records(out)


def test_catalog_rebuild_follows_a_patch_installed_by_copying(tmp_path: Path) -> None:
    """The main job: a packer without the archive writes patch 1 from the manifest alone;
    copied beside the record, the rebuilt catalog lists patch 1."""
    root = make_root(tmp_path)
    out = tmp_path / "out"
    pack_many(root, out)
    packer = tmp_path / "packer"
    packer.mkdir()
    shutil.copy(out / "run-3.ih5mf.json", packer)
    (root / "run 3" / "b.bin").write_bytes(b"changed")
    result = pack_directory(root / "run 3", packer / "run-3")
    for path in result.written:
        shutil.copy(path, out)
    assert catalog_records(out)["run-3"]["patch_index"] == 0
    rebuilt = rebuild_catalog(out)
    assert rebuilt.problems == {}
    entry = catalog_records(out)["run-3"]
    with IH5MFRecord(out / "run-3") as rec:
        user_block = rec.user_block
    assert (entry["patch_index"], user_block.patch_index) == (1, 1)
    assert entry["manifest_hashsum"] == user_block.ub_exts["ih5mf_v01"]["manifest_hashsum"]
    assert entry["source"] == str(root / "run 3")
    assert (entry["files"], entry["bytes"]) == (1, len(b"changed"))
    assert catalog_records(out)["plate-1"] == {
        **rebuilt.records["plate-1"],
        "updated": catalog_records(out)["plate-1"]["updated"],
    }


def test_catalog_rebuild_leaves_out_an_unreadable_record_and_names_it(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    out = tmp_path / "out"
    pack_many(root, out)
    (out / "x.ih5mf.json").write_text("{}")
    rebuilt = rebuild_catalog(out)
    assert sorted(rebuilt.records) == ["plate-1", "plate-2", "run-3"]
    assert "x.ih5mf.json" in rebuilt.problems["x"]
    assert sorted(catalog_records(out)) == ["plate-1", "plate-2", "run-3"]


def test_pack_many_refuses_a_missing_root(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="not a directory"):
        pack_many(tmp_path / "missing", tmp_path / "out")


def test_pack_many_reports_a_failing_subdirectory_and_packs_the_others(tmp_path: Path) -> None:
    subdirs = {**SUBDIRS, "broken": {"ok.bin": b"ok", "bad-link": Link("/etc/passwd")}}
    root = make_root(tmp_path, subdirs)
    out = tmp_path / "out"
    outcomes = {outcome.record_name: outcome for outcome in pack_many(root, out, jobs=2)}
    broken = outcomes.pop("broken")
    assert broken.result is None
    assert broken.error is not None and "bad-link" in broken.error
    assert all(outcome.result is not None for outcome in outcomes.values())
    assert sorted(catalog_records(out)) == sorted(NAMES.values())
    assert container_names(out, "broken") == set()


# --- kills --------------------------------------------------------------------

CHILD = """
import sys
from ih5.pack import pack_many
print("ready", flush=True)
pack_many(sys.argv[1], sys.argv[2], jobs=2)
"""


def big_root(tmp_path: Path) -> Path:
    """Six subdirectories of 24 files (about 2 MB each): long enough to be killed halfway."""
    root = tmp_path / "root"
    rng = random.Random(7)
    for plate in range(6):
        make_tree(
            root / f"plate_{plate}",
            {f"w{well:02d}/img.bin": rng.randbytes(80_000) for well in range(24)},
        )
    return root


def kill_midway(root: Path, out: Path, delay: float) -> None:
    """Run pack_many in a child process group and SIGKILL all of it ``delay`` s after start."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(out)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    time.sleep(delay)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()


def check_catalog(out: Path) -> None:
    """The catalog, if any, is valid JSON and every record it lists opens as listed."""
    if not (out / CATALOG_NAME).exists():
        return
    for name, entry in catalog_records(out).items():
        with IH5MFRecord(out / name) as rec:
            assert str(rec.user_block.record_uuid) == entry["record_uuid"]
            assert rec.user_block.patch_index >= entry["patch_index"]


def edit_every_plate(root: Path, tag: str) -> None:
    for plate in root.iterdir():
        (plate / f"{tag}.bin").write_bytes(os.urandom(50_000))
        (plate / "w00" / "img.bin").write_bytes(os.urandom(80_000))


def test_pack_many_survives_being_killed_midway(tmp_path: Path) -> None:
    """Kills while records are created, then while patches are written; a re-run completes."""
    root = big_root(tmp_path)
    out = tmp_path / "out"
    delays = random.Random(11)
    kill_midway(root, out, delays.uniform(0.1, 0.6))
    check_catalog(out)
    assert [outcome.error for outcome in pack_many(root, out, jobs=2)] == [None] * 6
    for round_ in range(3):
        edit_every_plate(root, f"round{round_}")
        kill_midway(root, out, delays.uniform(0.05, 0.6))
        check_catalog(out)
    outcomes = pack_many(root, out, jobs=2)
    assert [outcome.error for outcome in outcomes] == [None] * 6
    check_catalog(out)
    records = catalog_records(out)
    for plate in sorted(root.iterdir()):
        name = record_name_for(plate.name)
        with IH5MFRecord(out / name) as rec:
            assert records[name]["patch_index"] == rec.user_block.patch_index
        assert unpacked(out / name, tmp_path / "back" / name) == snapshot(plate)
