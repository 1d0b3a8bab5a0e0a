"""Kept views of committed chunk deltas never hide what the open patch changes.

A read remembers where each chunk of the committed deltas is stored; the open
patch's delta is laid over that kept view, so writes, resizes and discards of
the open patch must show at once, exactly as h5py shows them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from ih5.record import IH5Dataset, IH5Record


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[IH5Record, h5py.File]]:
    """A record whose dataset "x" got one chunk delta (committed), a new patch open, and a
    plain h5py file holding the same values."""
    data = np.arange(40, dtype="f8")
    create = {"data": data, "chunks": (4,), "maxshape": (None,), "fillvalue": -1.0}
    with IH5Record(tmp_path / "rec", "w") as record:
        record.create_dataset("x", **create)
    record = IH5Record(tmp_path / "rec", "r+")
    if not record.has_patch:
        record.create_patch()
    plain = h5py.File(tmp_path / "plain.h5", "w")
    plain.create_dataset("x", **create)
    for target in (dataset(record), plain["x"]):
        target[5:11] = 100.0
    record.commit_patch()
    record.create_patch()
    yield record, plain
    plain.close()
    record.close()


def dataset(record: IH5Record) -> IH5Dataset:
    found = record["x"]
    assert isinstance(found, IH5Dataset)
    return found


def read_everything(target: IH5Dataset) -> None:
    """Read every chunk by the fast path (one chunk per read), so the view remembers them."""
    for start in range(0, 40, 2):
        target[start : start + 2]
        target[start]


def test_writes_into_remembered_chunks_show_at_once(pair: tuple[IH5Record, h5py.File]) -> None:
    record, plain = pair
    read_everything(dataset(record))
    for target in (dataset(record), plain["x"]):
        target[6:9] = 7.0
        target[20] = 8.0
    for start in range(0, 40, 2):
        assert np.array_equal(dataset(record)[start : start + 2], plain["x"][start : start + 2])
        assert dataset(record)[start] == plain["x"][start]


def test_resizes_of_remembered_chunks_show_at_once(pair: tuple[IH5Record, h5py.File]) -> None:
    record, plain = pair
    read_everything(dataset(record))
    for target in (dataset(record), plain["x"]):
        target.resize((6,))
        target.resize((40,))
    assert np.array_equal(dataset(record)[4:8], plain["x"][4:8])
    assert dataset(record)[30] == plain["x"][30] == -1.0


def test_discarded_patch_shows_the_committed_values_again(
    pair: tuple[IH5Record, h5py.File],
) -> None:
    record, plain = pair
    read_everything(dataset(record))
    dataset(record)[0:40] = 3.0
    assert dataset(record)[8] == 3.0
    record.discard_patch()
    record.create_patch()
    assert np.array_equal(dataset(record)[()], plain["x"][()])
    assert dataset(record)[8:10].tolist() == [100.0, 100.0]


def test_committed_writes_read_back_through_a_fresh_view(
    pair: tuple[IH5Record, h5py.File],
) -> None:
    record, plain = pair
    read_everything(dataset(record))
    for target in (dataset(record), plain["x"]):
        target[12:14] = 9.0
    record.commit_patch()
    assert np.array_equal(dataset(record)[12:16], plain["x"][12:16])
