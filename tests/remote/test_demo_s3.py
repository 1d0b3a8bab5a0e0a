"""README's second command: the main job against a local S3-compatible server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.skipif(
    os.environ.get("IH5_LONG") != "1", reason="about a minute of subprocesses: runs with --long"
)
def test_pack_demo_with_s3_packs_into_the_bucket_and_reads_it_there(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "pack_demo.py"), str(out), "--s3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2] == "2. pushed the 3 records into s3://demo/archive"
    assert lines[3:6] == [
        f"3. {plate}: re-packed into s3://demo/archive/{plate} from its manifest there alone "
        "-> patch 1 (+1 ~1 -1)"
        for plate in ("plate-1", "plate-2", "plate-3")
    ]
    assert all(line.endswith("unpacked copy equals the source") for line in lines[6:9])
