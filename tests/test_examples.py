"""The runnable examples run, succeed and say what they did."""

from __future__ import annotations

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
    assert lines[-1] == "OK: the sidecar is valid and every worker's update is in it"
    assert (tmp_path / "sample_plate" / "openhcs_metadata.json").is_file()


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
    assert lines[:2] == [
        f"1. generated 3 sample plates in {out / 'plates'}",
        f"2. packed them with 2 jobs into {out / 'archive'}: {plates}",
    ]
    assert lines[2:5] == [
        f"3. {plate}: re-packed from its manifest alone -> patch 1 (+1 ~1 -1)" for plate in plates
    ]
    assert lines[5] == "4. copied 6 patch files next to the records"
    assert lines[6:9] == [
        f"5. {plate}: verified 2 containers, diff 0->1 lists 3 paths, "
        "unpacked copy equals the source"
        for plate in plates
    ]
    assert lines[9].startswith("done in ")
    assert lines[9].endswith(f" s; everything is under {out}")
    assert len(lines) == 10
