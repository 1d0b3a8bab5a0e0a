"""``ih5 pack-many --plan``, engine options, the failure summary, ``verify`` on an engine and
``ih5 catalog``: exit codes and output, through click's runner."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from distributed import LocalCluster

from ih5.cli import cli
from ih5.pack import pack_directory, plan_many

from .conftest import check_chain, edit_plates, make_plates

pytestmark = pytest.mark.timeout(240)


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str


def ih5(*args: Any) -> Run:
    result = CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def plates(tmp_path: Path, count: int = 3) -> Path:
    root = make_plates(tmp_path / "plates", count=count, images=3)
    (root / "notes.txt").write_text("loose file")
    return root


def test_plan_prints_records_with_sizes_and_packs_nothing(tmp_path: Path) -> None:
    root = plates(tmp_path)
    run = ih5("pack-many", root, tmp_path / "archive", "--plan")
    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    assert lines[0] == "record\tsource\tfiles\tbytes\trecord exists"
    size = (root / "plate_000" / "images" / "A00_s1_w1.npy").stat().st_size
    assert lines[1] == f"plate-000\t{root / 'plate_000'}\t3\t{3 * size}\tno"
    assert len(lines) == 4
    assert f"skipped {root / 'notes.txt'}: not a directory" in run.stderr
    assert "3 records, 9 files" in run.stderr
    assert not (tmp_path / "archive").exists()


def test_plan_json_is_the_library_plan(tmp_path: Path) -> None:
    root = plates(tmp_path)
    run = ih5("pack-many", root, tmp_path / "archive", "--plan", "--json")
    assert run.exit_code == 0
    assert json.loads(run.stdout) == plan_many(root, tmp_path / "archive").to_json()


def test_pack_many_lists_each_failure_and_a_rerun_does_what_is_left(tmp_path: Path) -> None:
    root = plates(tmp_path)
    os.symlink("/etc/passwd", root / "plate_001" / "escape")
    (root / "plate_002" / "images" / "unreadable.bin").write_bytes(b"x")
    os.chmod(root / "plate_002" / "images" / "unreadable.bin", 0)
    out = tmp_path / "archive"
    run = ih5("pack-many", root, out, "--jobs", 2)
    failing = 1 if os.geteuid() == 0 else 2  # root reads files whatever their mode
    assert run.exit_code == 1
    assert f"3 records: {3 - failing} created, {failing} failed" in run.stderr
    assert "failed (the other records are packed" in run.stderr
    assert f"  plate-001 ({root / 'plate_001'}): " in run.stderr
    assert "escape" in run.stderr.split("  plate-001")[1].splitlines()[0]
    assert f"skipped {root / 'notes.txt'}" in run.stderr
    (root / "plate_001" / "escape").unlink()
    os.chmod(root / "plate_002" / "images" / "unreadable.bin", 0o644)
    again = ih5("pack-many", root, out, "--jobs", 2, "--json")
    assert again.exit_code == 0, again.stderr
    actions = {row["name"]: row["action"] for row in json.loads(again.stdout)}
    assert actions["plate-000"] == "unchanged"
    assert actions["plate-001"] == "created"
    assert "Error" not in again.stderr


def test_pack_many_runs_on_a_dask_scheduler(tmp_path: Path, cluster: LocalCluster) -> None:
    root = plates(tmp_path)
    out = tmp_path / "archive"
    run = ih5("pack-many", root, out, "--scheduler", cluster.scheduler_address, "--json")
    assert run.exit_code == 0, run.stderr
    assert [row["action"] for row in json.loads(run.stdout)] == ["created"] * 3
    assert f"running the tasks on the Dask scheduler at {cluster.scheduler_address}" in run.stderr
    for plate in range(3):
        check_chain(out, f"plate-{plate:03d}", patches=0)


def test_engine_options_that_contradict_each_other_are_a_usage_error(tmp_path: Path) -> None:
    root = plates(tmp_path)
    run = ih5("pack-many", root, tmp_path / "out", "--scheduler", "tcp://127.0.0.1:1", "--dask")
    assert run.exit_code == 2
    assert "give --scheduler ADDRESS or --dask, not both" in run.stderr
    jobs = ih5("pack-many", root, tmp_path / "out", "--scheduler", "tcp://127.0.0.1:1", "-j", 2)
    assert jobs.exit_code == 2
    assert "--jobs sets local workers" in jobs.stderr


def packed_with_patch(tmp_path: Path) -> Path:
    """A record of a base and one patch, packed in this process."""
    root = plates(tmp_path, count=1)
    out = tmp_path / "archive"
    pack_directory(root / "plate_000", out / "plate-000")
    edit_plates(root, seed=1)
    pack_directory(root / "plate_000", out / "plate-000")
    return out


def test_verify_on_a_scheduler_names_every_damaged_container(
    tmp_path: Path, cluster: LocalCluster
) -> None:
    out = packed_with_patch(tmp_path)
    for name in ("plate-000.ih5", "plate-000.p1.ih5"):
        with open(out / name, "r+b") as damaged:
            damaged.seek(-64, os.SEEK_END)
            damaged.write(b"\x00" * 8)
    run = ih5("verify", out / "plate-000", "--scheduler", cluster.scheduler_address)
    assert run.exit_code == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert [line.split(" is damaged")[0] for line in errors] == [
        f"Error: {out / 'plate-000.ih5'}",
        f"Error: {out / 'plate-000.p1.ih5'}",
    ]


def test_verify_with_jobs_reports_every_container_as_json(tmp_path: Path) -> None:
    out = packed_with_patch(tmp_path)
    run = ih5("verify", out / "plate-000", "--jobs", 2, "--json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    assert (data["ok"], data["containers"], data["error"]) == (True, 2, None)
    assert [Path(check["container"]).name for check in data["checks"]] == [
        "plate-000.ih5",
        "plate-000.p1.ih5",
    ]
    assert {check["status"] for check in data["checks"]} == {"ok"}
    assert data["size"] == sum(check["size"] for check in data["checks"])


def test_catalog_command_follows_a_patch_installed_by_copying(tmp_path: Path) -> None:
    root = plates(tmp_path, count=1)
    out = tmp_path / "archive"
    assert ih5("pack-many", root, out).exit_code == 0
    packer = tmp_path / "packer"
    packer.mkdir()
    shutil.copy(out / "plate-000.ih5mf.json", packer)
    edit_plates(root, seed=1)
    written = json.loads(ih5("pack", root / "plate_000", packer / "plate-000", "--json").stdout)
    for path in written["written"]:
        shutil.copy(path, out)
    run = ih5("catalog", out)
    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines()[1].split("\t")[:3] == ["plate-000", "1", "4"]
    catalog = json.loads((out / "catalog.json").read_text())
    assert catalog["records"]["plate-000"]["patch_index"] == 1


def test_catalog_command_names_a_record_it_cannot_read_and_exits_1(tmp_path: Path) -> None:
    root = plates(tmp_path, count=1)
    out = tmp_path / "archive"
    assert ih5("pack-many", root, out).exit_code == 0
    (out / "broken.ih5").write_bytes(b"not a container")
    run = ih5("catalog", out, "--json")
    assert run.exit_code == 1
    assert sorted(json.loads(run.stdout)["records"]) == ["plate-000"]
    assert "Error: broken left out of the catalog:" in run.stderr


TERMINAL = {"TTY_INTERACTIVE": "1", "TTY_COMPATIBLE": "1", "FORCE_COLOR": None}
PIPE = {"TTY_INTERACTIVE": None, "TTY_COMPATIBLE": None, "FORCE_COLOR": None}


def ih5_env(env: dict[str, str | None], *args: Any) -> Run:
    result = CliRunner().invoke(cli, [str(arg) for arg in args], env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.mark.parametrize(("env", "bar"), [(TERMINAL, True), (PIPE, False)])
def test_pack_many_shows_a_progress_bar_on_a_terminal_only(
    tmp_path: Path, env: dict[str, str | None], bar: bool
) -> None:
    root = plates(tmp_path, count=2)
    run = ih5_env(env, "pack-many", root, tmp_path / "archive")
    assert run.exit_code == 0, run.stderr
    assert ("packing" in run.stderr and "━" in run.stderr) is bar
    assert "2 records: 2 created" in run.stderr


def test_verify_on_an_engine_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    out = packed_with_patch(tmp_path)
    run = ih5_env(TERMINAL, "verify", out / "plate-000", "--jobs", 2)
    assert run.exit_code == 0, run.stderr
    assert "verifying" in run.stderr and "━" in run.stderr
