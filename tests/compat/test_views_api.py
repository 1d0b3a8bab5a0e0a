"""metador-core 0.1.1's views (IH5Group, IH5Dataset, IH5AttributeManager), as its users call them.

One test per row of METADOR-API.md ("Views"), plus the h5py-like member list.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from ih5 import (
    IH5AttributeManager,
    IH5Dataset,
    IH5Group,
    IH5Record,
    NodeNotFoundError,
    NotAGroupError,
    RecordModeError,
    UnknownKeywordError,
    UnsupportedValueError,
)
from ih5.errors import RecordClosedError
from tests.helpers.nodes import as_dataset, as_group


def test_views_have_the_h5py_like_members(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        grp = ds.create_group("grp")
        assert ds.require_group("grp") == grp
        ds["grp/val"] = [1, 2, 3]
        ds.create_dataset("mat", data=[[0, 1, 2], [3, 4, 5]], compression="gzip")
        ds.require_dataset("mat", shape=(2, 3), dtype="i8")
        ds.attrs["rootattr"] = "yay"
        assert isinstance(ds.attrs, IH5AttributeManager)
        assert ds.get("missing") is None
        assert ds.get("missing", 123) == 123
        assert "grp/val" in ds and "/grp/val" in ds and "grp/nope" not in ds
        assert list(ds) == list(ds.keys()) == ["grp", "mat"]
        assert len(ds) == 2
        assert set(ds.values()) == {ds["grp"], ds["mat"]}
        assert dict(ds.items()) == {"grp": ds["grp"], "mat": ds["mat"]}
        val = ds["grp/val"]
        assert isinstance(val, IH5Dataset) and isinstance(grp, IH5Group)
        assert (val.name, val.parent, val.file, val.ndim) == ("/grp/val", grp, ds, 1)
        assert as_dataset(ds["mat"]).ndim == 2
        ds.copy("grp", "copied")
        ds.move("copied", "moved")
        del ds["mat"]
        assert "copied" not in ds and "mat" not in ds
        names: list[str] = []
        assert ds.visit(names.append) is None
        assert names == ["grp", "grp/val", "moved", "moved/val"]
        found = ds.visititems(lambda name, node: name if isinstance(node, IH5Dataset) else None)
        assert found == "grp/val"


def test_missing_path_is_key_error(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds.create_group("nested")
        with pytest.raises(KeyError) as raised:
            ds["nested/missing"]
        assert isinstance(raised.value, NodeNotFoundError)
        with pytest.raises(KeyError):
            del ds["missing"]


def test_path_through_a_dataset_is_value_error(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["nested/data"] = 123
        with pytest.raises(ValueError) as raised:
            ds["nested/data/something"]
        assert isinstance(raised.value, NotAGroupError)
        assert isinstance(raised.value, KeyError)  # what ih5 raised before
        assert "nested/data/something" not in ds


def test_write_to_a_node_of_an_older_patch_is_value_error_until_copied(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["a"] = [1, 2, 3]
        a = ds["a"]
        assert isinstance(a, IH5Dataset)
        ds.commit_patch()
        with pytest.raises(ValueError) as no_patch:  # no open patch
            a[2] = 5
        assert "patch" in str(no_patch.value)
        ds.create_patch()
        with pytest.raises(ValueError) as older:  # node of the committed patch
            a[2] = 5
        assert isinstance(older.value, RecordModeError)
        assert "copy_into_patch" in str(older.value)
        a.copy_into_patch()
        a[2] = 5
        a[0:2] = [3, 4]
        assert a[()].tolist() == [3, 4, 5]


def test_copy_into_patch_of_a_node_in_the_open_patch_is_value_error(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["a"] = [1, 2, 3]
        ds["fresh"] = [0]
        ds.commit_patch()
        ds.create_patch()
        copied = ds["a"]
        assert isinstance(copied, IH5Dataset)
        copied.copy_into_patch()
        with pytest.raises(ValueError) as raised:
            copied.copy_into_patch()
        assert isinstance(raised.value, RecordModeError)
        assert "latest" in str(raised.value)


@pytest.mark.parametrize("target", ["grp", "grp/val"])
def test_assigning_a_group_or_dataset_view_is_value_error(tmp_ds_path: Path, target: str) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["grp/val"] = 123
        with pytest.raises(ValueError) as raised:
            ds["a/b/c"] = ds[target]
        assert isinstance(raised.value, UnsupportedValueError)
        assert "hard links" in str(raised.value)
        assert "a" not in ds
        ds.copy(target, "a/b/c")  # what to do instead
        assert "a/b/c" in ds


@pytest.mark.parametrize(
    ("link", "word"),
    [(h5py.SoftLink("/grp"), "symlink"), (h5py.ExternalLink("file.h5", "/grp"), "ExternalLink")],
)
def test_assigning_a_soft_or_external_link_is_value_error(
    tmp_ds_path: Path, link: object, word: str
) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds.create_group("grp")
        with pytest.raises(ValueError) as raised:
            ds["a/b/c"] = link
        assert isinstance(raised.value, UnsupportedValueError)
        assert word in str(raised.value)
        assert "a" not in ds


def test_unknown_create_dataset_keyword_is_value_error(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        foo = ds.create_group("foo")
        foo.create_dataset("bar", data=[1, 2, 3], compression="gzip", compression_opts=9)
        with pytest.raises(ValueError) as raised:
            ds.create_dataset("newdataset", unknown="arg")
        assert isinstance(raised.value, UnknownKeywordError)
        assert isinstance(raised.value, TypeError)  # what h5py raises
        assert "unknown" in str(raised.value)
        assert "newdataset" not in ds


def test_views_of_a_closed_record_are_value_error(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["grp/val"] = np.arange(3)
        ds["grp"].attrs["a"] = 1
        group, value, attrs = as_group(ds["grp"]), as_dataset(ds["grp/val"]), ds["grp"].attrs
    for call in (lambda: group["val"], lambda: value[0], lambda: attrs["a"], lambda: len(group)):
        with pytest.raises(ValueError) as raised:
            call()
        assert isinstance(raised.value, RecordClosedError)
