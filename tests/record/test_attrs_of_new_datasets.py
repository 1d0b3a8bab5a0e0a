"""Attributes set right after creating a dataset land on it, also when a path is reused."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

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
