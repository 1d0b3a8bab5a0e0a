"""The runnable examples run, succeed and say what they did."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_demo(out_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run the plate metadata demo into ``out_dir`` with a bounded run time."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "plate_metadata_demo.py"), str(out_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plate_metadata_demo_merges_every_worker_update(tmp_path: Path) -> None:
    result = run_demo(tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"sample plate: {tmp_path / 'sample_plate'} (4 wells, 48 files")
    assert "  images (main): 24 image files, wells A01,A02,B01,B02" in lines
    assert "  checkpoints: 24 image files, wells A01,A02,B01,B02" in lines
    assert lines[-4] == "OK: the sidecar is valid and every worker's update is in it"
    assert (tmp_path / "sample_plate" / "openhcs_metadata.json").is_file()
    assert lines[-3:] == [
        "try next:",
        f"  ih5 meta show {tmp_path / 'sample_plate'}",
        f"  ih5 pack {tmp_path / 'sample_plate'} {tmp_path / 'archive' / 'sample-plate'}",
    ]


def test_plate_metadata_demo_next_commands_run_and_leave_the_lock_file_out(
    tmp_path: Path,
) -> None:
    lines = run_demo(tmp_path).stdout.splitlines()
    assert (tmp_path / "sample_plate" / "openhcs_metadata.json.lock").exists()
    for line in lines[-2:]:
        done = subprocess.run(
            [sys.executable, "-m", "ih5", *shlex.split(line)[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    tree = subprocess.run(
        [sys.executable, "-m", "ih5", "tree", str(tmp_path / "archive" / "sample-plate")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "openhcs_metadata.json" in tree.stdout
    assert ".lock" not in tree.stdout


def test_plate_metadata_demo_reruns_on_an_existing_out_dir(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    sidecar = (tmp_path / "sample_plate" / "openhcs_metadata.json").read_bytes()
    second = run_demo(tmp_path)
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert (tmp_path / "sample_plate" / "openhcs_metadata.json").read_bytes() == sidecar


def test_pack_demo_round_trips_every_plate_through_a_manifest_alone(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "pack_demo.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    plates = ["plate-1", "plate-2", "plate-3"]
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"1. generated 3 sample plates in {out / 'plates'} (")
    assert lines[1].startswith(
        f"2. packed them with 2 jobs into {out / 'archive'}, one record each: plate-1 (base "
    )
    for plate, line in zip(plates, lines[2:5], strict=True):
        assert line.startswith(f"3. {plate}: re-packed from its manifest alone (")
        assert "-> patch 1 (+1 ~1 -1: added, changed, removed files), " in line
        assert line.endswith(" bytes of unchanged files did not travel")
    assert lines[5].startswith("4. copied 6 patch files (")
    assert lines[6:9] == [
        f"5. {plate}: verified 2 containers, diff 0->1 lists 3 paths, "
        "unpacked copy equals the source"
        for plate in plates
    ]
    assert lines[9].startswith("done in ")
    assert lines[9].endswith(f" s; everything is under {out}")
    assert lines[10] == "try next:"
    for line in lines[11:]:
        command = shlex.split(line.strip())
        assert command[0] == "ih5"
        done = subprocess.run(
            [sys.executable, "-m", "ih5", *command[1:]],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert len(lines) == 15
