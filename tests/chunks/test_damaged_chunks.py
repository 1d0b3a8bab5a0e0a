"""A damaged stored chunk, met by a read of a record opened with verify=False, raises
DamagedPayloadError (an OSError), never h5py's bare error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ih5 import DamagedPayloadError
from ih5.record import IH5Dataset, IH5Record

PATTERN = 0x5A5A5A5A
"""The values the patch writes: easy to find in the patch file's bytes."""


def damaged_record(tmp_path: Path) -> Path:
    """A record whose patch stores one chunk (fletcher32-checked) with a flipped byte."""
    record = tmp_path / "rec"
    with IH5Record(record, "w") as rec:
        rec.create_dataset("x", data=np.arange(16, dtype="i4"), chunks=(4,), fletcher32=True)
    with IH5Record(record, "r+") as rec:
        if not rec.has_patch:
            rec.create_patch()
        target = rec["x"]
        assert isinstance(target, IH5Dataset)
        target[4:8] = PATTERN
    patch = tmp_path / "rec.p1.ih5"
    data = bytearray(patch.read_bytes())
    at = data.index(np.full(4, PATTERN, dtype="i4").tobytes())
    data[at + 5] ^= 0xFF
    patch.write_bytes(bytes(data))
    return record


@pytest.mark.parametrize("selection", [slice(4, 8), slice(2, 10), 5], ids=repr)
def test_read_of_a_damaged_stored_chunk_raises_damaged_payload_error(
    tmp_path: Path, selection: slice | int
) -> None:
    with IH5Record(damaged_record(tmp_path), verify=False) as rec:
        target = rec["x"]
        assert isinstance(target, IH5Dataset)
        assert target[0:4].tolist() == [0, 1, 2, 3]
        with pytest.raises(DamagedPayloadError) as caught:
            target[selection]
    assert isinstance(caught.value, OSError)
    assert "ih5 verify" in str(caught.value)
