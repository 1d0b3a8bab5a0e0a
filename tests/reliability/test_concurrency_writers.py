"""Writer processes competing for one record: every commit lands once, the chain never forks.

Each writer commits its own patches, retrying when the record is locked
(short lock timeout) or changed under it, and acknowledges a patch with the
index it was committed as only after the commit returned.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import h5py
import numpy as np

from ih5 import ConflictError, IH5MFRecord, IH5Record, RecordLockedError
from ih5.format import discover_containers, load_refs, validate_chain

from .processes import acknowledge, acknowledged, workers
from .states import garbage, values_at
from .stats import REPORT

RUN_TIMEOUT = 150.0
LOCK_TIMEOUT = 0.02


def commit_own_patches(record: Path, writer: int, count: int, acks: Path) -> None:
    """Commit ``count`` patches, each adding ``w<writer>/k<k>``; retry while others write.

    Odd writers write manifests too (IH5MFRecord), even ones plain patches.
    """
    kind = IH5MFRecord if writer % 2 else IH5Record
    rng = random.Random(writer)
    retries = 0
    for k in range(count):
        while True:
            try:
                with kind(record, "r+", lock_timeout=LOCK_TIMEOUT) as rec:
                    rec[f"w{writer}/k{k}"] = np.array([writer, k])
                    rec.attrs["last"] = f"{writer}:{k}"
                    rec.commit_patch()
                    index = rec.user_block.patch_index
                break
            except (RecordLockedError, ConflictError):
                retries += 1
                time.sleep(rng.uniform(0, 0.005))
        acknowledge(acks, f"commit {writer} {k} {index}")
    acknowledge(acks, f"retries {writer} {retries}")


def test_record_competing_writers_commit_every_patch_once_on_one_chain(
    tmp_path: Path, long_run: bool
) -> None:
    writers, count = (6, 50) if long_run else (5, 15)
    row = REPORT.stress_run(f"{writers} competing writers")
    record = tmp_path / "rec"
    with IH5Record(record, "w") as rec:
        rec.attrs["last"] = "base"
    acks = tmp_path / "acks.txt"
    began = time.monotonic()
    with workers(RUN_TIMEOUT) as pool:
        for writer in range(writers):
            pool.start(f"w{writer}", commit_own_patches, record, writer, count, acks)
        codes = pool.join()
    row.seconds = time.monotonic() - began
    lines = [line.split() for line in acknowledged(acks)]
    commits = {(int(line[1]), int(line[2])): int(line[3]) for line in lines if line[0] == "commit"}
    row.processes, row.operations = writers, len(commits)
    row.retries = sum(int(line[2]) for line in lines if line[0] == "retries")
    assert set(codes.values()) == {0}, codes

    chain = validate_chain(load_refs(discover_containers(tmp_path, "rec")))
    indices = [ref.user_block.patch_index for ref in chain]
    prev_patches = [ref.user_block.prev_patch for ref in chain]
    assert indices == list(range(writers * count + 1)), "missing or extra containers"
    assert len(set(prev_patches)) == len(prev_patches), "two containers follow the same patch"
    assert len(commits) == writers * count
    assert sorted(commits.values()) == indices[1:], "an index was acknowledged twice"
    for (writer, k), index in commits.items():
        with h5py.File(chain[index].path, "r") as container:
            assert container[f"w{writer}/k{k}"][()].tolist() == [writer, k]
    with IH5Record(record) as rec:
        for writer, k in commits:
            assert values_at(rec, f"w{writer}/k{k}") == [writer, k]
        newest = max(commits, key=commits.__getitem__)
        assert rec.attrs["last"] == f"{newest[0]}:{newest[1]}"
    assert garbage(tmp_path) == []
