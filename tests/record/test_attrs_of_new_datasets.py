"""Attributes set right after creating a dataset land on it, also when a path is reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ih5 import IH5Record


def test_attributes_set_after_create_land_on_the_new_dataset(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec.create_dataset("g/a", data=np.arange(3))
        rec["g/a"].attrs["kind"] = "first"
        rec.create_dataset("g/b", data=np.arange(4))
        rec["g/a"].attrs["late"] = 1
        rec["g/b"].attrs["kind"] = "second"
    with h5py.File(tmp_path / "rec.ih5", "r") as raw:
        assert dict(raw["g/a"].attrs) == {"kind": "first", "late": 1}
        assert dict(raw["g/b"].attrs) == {"kind": "second"}


def test_a_dataset_recreated_at_a_deleted_path_gets_its_own_attributes(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec.create_dataset("a", data=np.arange(3))
        rec["a"].attrs["old"] = 1
        del rec["a"]
        rec.create_dataset("a", data=np.arange(5))
        rec["a"].attrs["new"] = 2
    with h5py.File(tmp_path / "rec.ih5", "r") as raw:
        assert raw["a"].shape == (5,)
        assert dict(raw["a"].attrs) == {"new": 2}


def test_a_group_made_where_a_dataset_was_deleted_gets_the_attributes(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec.create_dataset("g/x", data=np.arange(3))
        rec["g/x"].attrs["on"] = "dataset"
        del rec["g"]
        rec.create_group("g/x")
        rec.create_group("g/y")
        rec["g/x"].attrs["on"] = "group"
    with h5py.File(tmp_path / "rec.ih5", "r") as raw:
        assert isinstance(raw["g/x"], h5py.Group)
        assert dict(raw["g/x"].attrs) == {"on": "group"}


VALUES: list[Any] = [
    "abc",
    "ünï",
    "",
    0,
    -1,
    (1 << 63) - 1,
    -(1 << 63),
    1 << 63,
    True,
    1.5,
    np.int32(3),
    b"raw",
]


def test_attributes_have_the_types_h5py_gives_the_same_values(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec.create_dataset("d", data=np.arange(3))
        for number, value in enumerate(VALUES):
            rec["d"].attrs[f"a{number}"] = value
    with h5py.File(tmp_path / "plain.h5", "w") as plain:
        plain.create_dataset("d", data=np.arange(3))
        for number, value in enumerate(VALUES):
            plain["d"].attrs[f"a{number}"] = value
    with h5py.File(tmp_path / "rec.ih5", "r") as ours, h5py.File(tmp_path / "plain.h5") as plain:
        for number in range(len(VALUES)):
            mine, theirs = (
                ours["d"].attrs.get_id(f"a{number}"),
                plain["d"].attrs.get_id(f"a{number}"),
            )
            assert mine.get_type().encode() == theirs.get_type().encode(), VALUES[number]
            assert mine.shape == theirs.shape == ()
            assert ours["d"].attrs[f"a{number}"] == plain["d"].attrs[f"a{number}"]


def test_setting_an_attribute_again_replaces_its_value_and_type(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec.create_dataset("d", data=np.arange(3))
        rec["d"].attrs["x"] = "first"
        rec["d"].attrs["x"] = 7
        rec["d"].attrs["y"] = 7
        rec["d"].attrs["y"] = "second"
    with h5py.File(tmp_path / "rec.ih5", "r") as raw:
        assert raw["d"].attrs["x"] == 7
        assert raw["d"].attrs["y"] == "second"


def test_a_string_with_a_nul_is_refused_and_leaves_no_attribute(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec.create_dataset("d", data=np.arange(3))
        with pytest.raises(ValueError, match="NUL"):
            rec["d"].attrs["x"] = "a\x00b"
        assert "x" not in rec["d"].attrs
    with h5py.File(tmp_path / "rec.ih5", "r") as raw:
        assert "x" not in raw["d"].attrs
