"""A stub knows each chunked dataset's layout, so a packer can append to data it does not have."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ih5.errors import StubError
from ih5.manifest import IH5MFRecord
from ih5.manifest._manifest import manifest_path
from ih5.record import IH5Dataset, IH5Record


@pytest.fixture
def real(tmp_path: Path) -> Path:
    """A manifest-backed record with a resizable chunked dataset and a contiguous one."""
    location = tmp_path / "real" / "rec"
    location.parent.mkdir()
    with IH5MFRecord(location, "w") as record:
        record.create_dataset(
            "rows", data=np.arange(20.0), chunks=(10,), maxshape=(None,), compression="gzip"
        )
        record["plain"] = np.arange(3)
    return location


def stub_of(real: Path, tmp_path: Path) -> Path:
    """A stub in a directory of its own, built from the real record's manifest alone."""
    (tmp_path / "stub").mkdir()
    (tmp_path / "lone").mkdir()
    with IH5Record(real) as record:
        manifest = manifest_path(record.containers[-1])
    lone = tmp_path / "lone" / manifest.name
    shutil.copy(manifest, lone)
    IH5MFRecord.create_stub(tmp_path / "stub" / "rec", lone).close()
    return tmp_path / "stub" / "rec"


def rows_of(record: IH5Record) -> IH5Dataset:
    found = record["rows"]
    assert isinstance(found, IH5Dataset)
    return found


def test_manifest_carries_layout_of_chunked_datasets_only(real: Path) -> None:
    with IH5Record(real) as record:
        raw = json.loads(manifest_path(record.containers[-1]).read_bytes())
    layout = raw["skeleton"]["/rows"]["ih5_layout"]
    assert (layout["shape"], layout["maxshape"], layout["chunks"]) == ([20], [None], [10])
    assert "ih5_layout" not in raw["skeleton"]["/plain"]


def test_patch_appended_on_stub_applies_to_real_record(real: Path, tmp_path: Path) -> None:
    stub = stub_of(real, tmp_path)
    with IH5MFRecord(stub, "r+") as record:
        if not record.has_patch:  # "r+" opens one at once once issue 11 lands
            record.create_patch()
        rows_of(record).resize((40,))
        rows_of(record)[20:40] = np.arange(20.0, 40.0)
        assert rows_of(record).shape == (40,)
    with IH5Record(stub) as record:
        patch = record.containers[-1]
    shutil.copy(patch, real.parent / patch.name)
    shutil.copy(manifest_path(patch), real.parent / manifest_path(patch).name)
    with IH5MFRecord(real) as record:
        assert rows_of(record)[()].tolist() == list(np.arange(40.0))


def test_partial_chunk_write_on_stub_needs_the_data(real: Path, tmp_path: Path) -> None:
    stub = stub_of(real, tmp_path)
    with IH5MFRecord(stub, "r+") as record:
        if not record.has_patch:  # "r+" opens one at once once issue 11 lands
            record.create_patch()
        with pytest.raises(StubError, match="whole chunks"):
            rows_of(record)[3] = 1.0
        record.discard_patch()
