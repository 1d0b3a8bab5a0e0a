"""``ih5 diff`` shows which regions of a chunk-patched dataset changed, as h5py index ranges.

The regions are at chunk granularity: a one-element write shows its whole
chunk. Neighbouring changed chunks are joined into one range in the table and
in ``ranges`` of ``--json``; ``chunks`` of ``--json`` lists every chunk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner, Result

from ih5.cli import _exits as exits
from ih5.cli import cli
from ih5.record import IH5Dataset, IH5Record
from ih5.record._diff import RegionChanges


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def dataset(record: IH5Record, path: str) -> IH5Dataset:
    found = record[path]
    assert isinstance(found, IH5Dataset)
    return found


def patched(tmp_path: Path) -> Path:
    """State 0: "x" (40 values, chunks of 4) and "m" (8 x 8, chunks of 2 x 4); state 1 changes
    elements of both through chunk deltas and grows "x" to 45."""
    record = tmp_path / "rec"
    with IH5Record(record, "w") as rec:
        rec.create_dataset("x", data=np.arange(40.0), chunks=(4,), maxshape=(None,))
        rec.create_dataset("m", data=np.zeros((8, 8)), chunks=(2, 4), maxshape=(None, 8))
    with IH5Record(record, "r+") as rec:
        if not rec.has_patch:
            rec.create_patch()
        dataset(rec, "x")[5] = 1.0
        dataset(rec, "x")[9:15] = 2.0
        dataset(rec, "x")[30] = 3.0
        dataset(rec, "x").resize((45,))
        dataset(rec, "m")[0:4, :] = 1.0
    return record


def table_rows(result: Result) -> list[list[str]]:
    assert result.exit_code == 0, result.output
    return [line.split("\t") for line in result.stdout.splitlines()[1:]]


def test_table_lists_changed_ranges_and_new_shape(tmp_path: Path) -> None:
    rows = table_rows(invoke("diff", patched(tmp_path)))
    assert ["values", "/x", "[4:16], [28:32]"] in rows
    assert ["shape", "/x", "(40,) -> (45,)"] in rows
    assert ["values", "/m", "[0:4, 0:8]"] in rows


def test_json_lists_every_changed_chunk_and_the_joined_ranges(tmp_path: Path) -> None:
    result = invoke("diff", patched(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    regions = json.loads(result.stdout)["regions"]
    assert regions["/x"] == {
        "shape_before": [40],
        "shape_after": [45],
        "chunks": [[[4, 8]], [[8, 12]], [[12, 16]], [[28, 32]]],
        "ranges": ["[4:16]", "[28:32]"],
    }
    assert regions["/m"]["chunks"] == [
        [[0, 2], [0, 4]],
        [[0, 2], [4, 8]],
        [[2, 4], [0, 4]],
        [[2, 4], [4, 8]],
    ]
    assert regions["/m"]["ranges"] == ["[0:4, 0:8]"]


def test_states_that_differ_only_in_chunks_give_exit_code_1(tmp_path: Path) -> None:
    record = tmp_path / "rec"
    with IH5Record(record, "w") as rec:
        rec.create_dataset("x", data=np.arange(8), chunks=(4,))
    with IH5Record(record, "r+") as rec:
        if not rec.has_patch:
            rec.create_patch()
        dataset(rec, "x")[0] = 7
    assert invoke("diff", record, "--exit-code").exit_code == exits.CHECK_FAILED


def test_table_shows_the_first_ranges_and_counts_the_rest(tmp_path: Path) -> None:
    record = tmp_path / "rec"
    with IH5Record(record, "w") as rec:
        rec.create_dataset("x", data=np.arange(100), chunks=(2,))
    with IH5Record(record, "r+") as rec:
        if not rec.has_patch:
            rec.create_patch()
        dataset(rec, "x")[0:100:4] = -1  # every other chunk: 25 ranges that do not touch
    rows = table_rows(invoke("diff", record))
    assert rows == [
        ["values", "/x", "[0:2], [4:6], [8:10], [12:14], [16:18], [20:22], [24:26], "
         "[28:30] (and 17 more)"],
    ]  # fmt: skip
    regions = json.loads(invoke("diff", record, "--json").stdout)["regions"]
    assert len(regions["/x"]["ranges"]) == 25


def test_merged_joins_neighbours_along_every_axis() -> None:
    chunks = tuple(((r, r + 2), (c, c + 4)) for r in (0, 2) for c in (0, 4, 12))
    changes = RegionChanges((8, 16), (8, 16), chunks)
    assert changes.merged() == (((0, 4), (0, 8)), ((0, 4), (12, 16)))


def test_merged_keeps_boxes_of_unequal_spans_apart() -> None:
    chunks = (((0, 2), (0, 4)), ((2, 4), (0, 4)), ((2, 4), (4, 8)))
    changes = RegionChanges((8, 16), (8, 16), chunks)
    assert changes.merged() == (((0, 2), (0, 4)), ((2, 4), (0, 8)))
