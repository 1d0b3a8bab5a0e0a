"""The writer on sidecars and lock files that other tools and users left behind."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

from ih5 import MetadataWriteError, read_json
from ih5.errors import FileLockSymlinkError, LossyDocumentError
from ih5.fs import lock_path_for
from ih5.metadata import AtomicMetadataWriter

NAN_SIDECAR = b"""{
  "subdirectories": {
    "images": {
      "microscope_handler_name": "imagexpress",
      "pixel_size": NaN
    }
  }
}
"""


def test_regression_writer_updates_a_sidecar_holding_nan(
    sidecar: Path, writer: AtomicMetadataWriter, record: dict[str, Any]
) -> None:
    """The original OpenHCS writer writes NaN; every ih5 update then failed."""
    sidecar.write_bytes(NAN_SIDECAR)
    writer.update_subdirectory_metadata(sidecar, "checkpoints", record)
    document = read_json(sidecar)
    assert math.isnan(document["subdirectories"]["images"]["pixel_size"])
    assert list(document["subdirectories"]) == ["images", "checkpoints"]
    assert '"pixel_size": NaN' in sidecar.read_text()


def test_regression_writer_refuses_a_lock_file_symlink_and_keeps_its_target(
    sidecar: Path, writer: AtomicMetadataWriter, record: dict[str, Any], tmp_path: Path
) -> None:
    """A lock file linked to another file got that file truncated to 0 bytes."""
    victim = tmp_path / "precious"
    victim.write_bytes(b"do not truncate me\n")
    os.symlink(victim, lock_path_for(sidecar))
    with pytest.raises(MetadataWriteError, match="symlink") as caught:
        writer.update_subdirectory_metadata(sidecar, "images", record)
    assert isinstance(caught.value.__cause__, FileLockSymlinkError)
    assert victim.read_bytes() == b"do not truncate me\n"
    assert not sidecar.exists()


@pytest.mark.parametrize(
    ("raw", "json_path"),
    [
        (b'{"subdirectories": {"images": {"plate_name": "\\ud800"}}}', '$["subdirectories"]'),
        (b'{"subdirectories": {"images": {}, "images": {}}}', '$["subdirectories"]["images"]'),
    ],
    ids=["lone-surrogate", "duplicate-key"],
)
def test_regression_writer_refuses_lossy_sidecars_naming_the_json_path(
    sidecar: Path, writer: AtomicMetadataWriter, record: dict[str, Any], raw: bytes, json_path: str
) -> None:
    """Was a bare UnicodeEncodeError, or duplicate keys silently collapsed; the file is kept."""
    sidecar.write_bytes(raw)
    with pytest.raises(MetadataWriteError) as caught:
        writer.update_subdirectory_metadata(sidecar, "checkpoints", record)
    cause = caught.value.__cause__
    assert isinstance(cause, LossyDocumentError)
    assert cause.json_path.startswith(json_path)
    assert cause.json_path in str(caught.value)
    assert sidecar.read_bytes() == raw
