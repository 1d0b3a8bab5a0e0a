"""Attribute strings that are not valid UTF-8 survive a copy; lone surrogates get a typed error."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from ih5 import IH5Record, UnencodableValueError
from tests.helpers.nodes import as_dataset

INVALID = b"\xff\xfeok"
"""Bytes another tool stored in a UTF-8 string attribute; h5py reads them surrogate-escaped."""


def record_with_invalid_utf8(tmp_path: Path) -> Path:
    """A record whose dataset ``d`` has a UTF-8 string attribute holding invalid bytes."""
    path = tmp_path / "rec"
    with IH5Record(path, "w") as rec:
        rec["d"] = np.arange(3)
        rec["d"].attrs["s"] = "placeholder"
        # What a foreign writer can put there: bytes in a UTF-8 string type.
        raw = rec.chain.require_writer().file["d"].attrs
        raw.create("s", np.array(INVALID, dtype=object), dtype=h5py.string_dtype("utf-8"))
    return path


def test_copy_into_patch_keeps_invalid_utf8_attribute_bytes(tmp_path: Path) -> None:
    """copy_into_patch() of a dataset with an invalid-UTF-8 attribute stores the same bytes."""
    path = record_with_invalid_utf8(tmp_path)
    with IH5Record(path, "r+") as rec:
        before = rec["d"].attrs["s"]
        as_dataset(rec["d"]).copy_into_patch()
    with h5py.File(tmp_path / "rec.p1.ih5", "r") as raw:
        assert raw["d"].attrs["s"] == before
        assert raw["d"].attrs["s"].encode("utf-8", "surrogateescape") == INVALID


def test_surrogate_escaped_value_read_from_a_record_can_be_set_again(tmp_path: Path) -> None:
    """A value read back surrogate-escaped can be assigned to another attribute as it is."""
    path = record_with_invalid_utf8(tmp_path)
    with IH5Record(path, "r+") as rec:
        rec.attrs["copy"] = rec["d"].attrs["s"]
    with IH5Record(path) as rec:
        assert rec.attrs["copy"] == rec["d"].attrs["s"]


def test_lone_surrogate_attribute_is_refused_with_typed_error(tmp_path: Path) -> None:
    """A string with a lone surrogate no encoding can store raises UnencodableValueError."""
    with IH5Record(tmp_path / "rec", "w") as rec:
        with pytest.raises(UnencodableValueError, match="lone surrogate") as caught:
            rec.attrs["bad"] = "\ud800"
        assert isinstance(caught.value, ValueError)
        assert "bad" not in rec.attrs
