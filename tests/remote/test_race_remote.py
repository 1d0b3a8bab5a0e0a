"""Packers racing on one remote record, some killed at random moments.

Each trial starts 2 to 8 packers at the same instant, each packing its own
directory into the same s3:// record, and kills some of them with SIGKILL at
random times. Afterwards the chain must be one chain (it opens, hashsums and
all), every acknowledged patch must be in it at the index it was acknowledged
with, and a next packer must go on from whatever the killed ones left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ih5 import IH5MFRecord, IH5Record, pack_directory, unpack_record
from ih5.fs import hashsum_bytes
from ih5.store import ObjectStore, open_store
from tests.remote.helpers import make_source, same_tree
from tests.remote.race_report import REPORT

LONG = os.environ.get("IH5_LONG") == "1"
TRIALS = [3, 5] if not LONG else [random.Random(seed).randint(2, 8) for seed in range(16)]
TRIAL_TIMEOUT = 120.0
REPO = Path(__file__).resolve().parents[2]


def _start(source: Path, url: str, start: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.remote.race_worker", str(source), url, str(start)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("packers", TRIALS)
def test_racing_packers_never_fork_the_chain_nor_lose_an_acknowledged_patch(
    bucket: str, tmp_path: Path, packers: int
) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    url = f"{bucket}/race/rec"
    sources = [
        make_source(tmp_path / f"w{k}", {"shared.txt": b"x", f"w{k}.bin": os.urandom(2000 + k)})
        for k in range(packers)
    ]
    start = time.time() + 2.0  # every packer imports ih5 first, then all go at once
    processes = [_start(source, url, start) for source in sources]
    victims = set(rng.sample(range(packers), rng.randint(1, max(1, packers // 2))))
    deadline = time.monotonic() + TRIAL_TIMEOUT
    try:
        for k in sorted(victims):
            time.sleep(max(0.0, start + rng.uniform(0.0, 1.5) - time.time()))
            processes[k].send_signal(signal.SIGKILL)
        outcomes = []
        for process in processes:
            out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outcomes.append((process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    acknowledged: dict[int, tuple[int, str]] = {}
    for k, (code, out, err) in enumerate(outcomes):
        assert code in (0, 3, -signal.SIGKILL), f"seed {seed}: packer {k} failed: {err[-2000:]}"
        if code == 0:
            result = json.loads(out)
            assert result["patch_index"] not in acknowledged, "two packers got one index"
            acknowledged[result["patch_index"]] = (k, result["manifest_hashsum"])
    REPORT.trials += 1
    REPORT.packers += packers
    REPORT.acknowledged += len(acknowledged)
    REPORT.killed += sum(code == -signal.SIGKILL for code, _, _ in outcomes)
    REPORT.gave_up += sum(code == 3 for code, _, _ in outcomes)

    store = open_store(f"{bucket}/race")
    assert isinstance(store, ObjectStore)
    if acknowledged:
        # One chain: links, indices, hashsums. (A packer killed between publishing its
        # container and its manifest leaves the manifest parked: the next packer publishes it.)
        with IH5Record(url, verify=True) as rec:
            assert [entry.index for entry in rec.history()] == list(range(len(rec.history())))
        for index, (k, manifest_hashsum) in acknowledged.items():
            name = "rec.ih5mf.json" if index == 0 else f"rec.p{index}.ih5mf.json"
            assert hashsum_bytes(store.read_bytes(name)) == manifest_hashsum
            with IH5Record(url, at=index) as state:
                assert sorted(state) == sorted(["shared.txt", f"w{k}.bin"])

    # Whatever the killed packers left, the next one goes on and the record reads whole.
    final = make_source(tmp_path / "final", {"final.txt": os.urandom(50)})
    pack_directory(final, url)
    unpack_record(url, tmp_path / "restored")
    assert same_tree(final, tmp_path / "restored")
    with IH5MFRecord(url, verify=True) as rec:
        REPORT.containers += len(rec.history())
        names = set(store.names())
        assert all(len(entry.files) == 2 for entry in rec.history()), names
