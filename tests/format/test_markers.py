"""Patch markers: found in metador-core's files, written the same way, refused as user data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from ih5.errors import InvalidKeyError, ReservedValueError
from ih5.format import (
    DEL_VALUE,
    SUBST_ATTR,
    check_attr_name,
    check_user_value,
    is_deletion_marker,
    is_substituting,
    mark_substituting,
    write_attr_deletion_marker,
    write_deletion_marker,
)


@pytest.fixture
def patch(fixture_copy: Callable[..., Path]) -> Iterator[h5py.File]:
    """plain.p1.ih5 from metador-core, opened read-only from a copy."""
    with h5py.File(fixture_copy("plain.p1.ih5"), "r") as file:
        yield file


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[h5py.File]:
    with h5py.File(tmp_path / "scratch.h5", "w") as file:
        yield file


def _type_signature(type_id: h5py.h5t.TypeID) -> tuple[object, ...]:
    return (type(type_id), type_id.get_class(), type_id.get_size(), type_id.get_tag())


def test_is_deletion_marker_finds_fixture_dataset_marker(patch: h5py.File) -> None:
    assert is_deletion_marker(patch["tokill"])


def test_is_deletion_marker_finds_fixture_attribute_marker(patch: h5py.File) -> None:
    assert is_deletion_marker(patch["data"].attrs["unit"])


@pytest.mark.parametrize("path", ["grp/sub/added", "grp@added_attr", "newgrp@\x1a", "data", "grp"])
def test_is_deletion_marker_rejects_fixture_values(patch: h5py.File, path: str) -> None:
    node, _, attr = path.partition("@")
    assert not is_deletion_marker(patch[node].attrs[attr] if attr else patch[node])


@pytest.mark.parametrize(
    "value",
    [
        np.void(b"\x00"),
        np.void(b"\x7f\x7f"),
        np.uint8(0x7F),
        b"\x7f",
        "\x7f",
        np.array([np.void(b"\x7f")]),
        np.zeros((), dtype=[("a", "V1")]),
        None,
        127,
    ],
    ids=repr,
)
def test_is_deletion_marker_rejects_lookalikes(value: object) -> None:
    assert not is_deletion_marker(value)


@pytest.mark.parametrize("value", [DEL_VALUE, np.array(DEL_VALUE), np.void(b"\x7f")], ids=repr)
def test_is_deletion_marker_accepts_marker_values(value: object) -> None:
    assert is_deletion_marker(value)


@pytest.mark.parametrize(
    "data", [np.zeros(10**6), np.full(10**6, DEL_VALUE)], ids=["float64", "opaque"]
)
def test_is_deletion_marker_does_not_read_large_datasets(
    scratch: h5py.File, data: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = scratch.create_dataset("big", data=data)

    def refuse(*args: object) -> None:
        raise AssertionError("the dataset was read")

    monkeypatch.setattr(h5py.Dataset, "__getitem__", refuse)
    assert not is_deletion_marker(dataset)


@pytest.mark.parametrize(("path", "expected"), [("newgrp", True), ("data", False), ("grp", False)])
def test_is_substituting_reads_fixture_groups(patch: h5py.File, path: str, expected: bool) -> None:
    assert is_substituting(patch[path]) is expected


def test_is_substituting_false_for_root_of_patch(patch: h5py.File) -> None:
    assert not is_substituting(patch)


def test_mark_substituting_writes_what_metador_writes(patch: h5py.File, scratch: h5py.File) -> None:
    mark_substituting(scratch.create_group("g"))
    ours, theirs = scratch["g"].attrs.get_id(SUBST_ATTR), patch["newgrp"].attrs.get_id(SUBST_ATTR)
    assert ours.get_space().get_simple_extent_type() == h5py.h5s.NULL
    assert theirs.get_space().get_simple_extent_type() == h5py.h5s.NULL
    assert ours.dtype == theirs.dtype == np.dtype("f8")
    assert is_substituting(scratch["g"])


def test_write_deletion_marker_writes_what_metador_writes(
    patch: h5py.File, scratch: h5py.File
) -> None:
    write_deletion_marker(scratch, "gone")
    assert _type_signature(scratch["gone"].id.get_type()) == _type_signature(
        patch["tokill"].id.get_type()
    )
    assert scratch["gone"].shape == patch["tokill"].shape == ()
    assert is_deletion_marker(scratch["gone"])


@pytest.mark.parametrize("existing", ["dataset", "group"])
def test_write_deletion_marker_replaces_existing_member(scratch: h5py.File, existing: str) -> None:
    if existing == "group":
        scratch.create_group("x/child")
    else:
        scratch["x"] = np.arange(5)
    write_deletion_marker(scratch, "x")
    assert is_deletion_marker(scratch["x"])


def test_write_attr_deletion_marker_writes_what_metador_writes(
    patch: h5py.File, scratch: h5py.File
) -> None:
    scratch.attrs["unit"] = "m"
    write_attr_deletion_marker(scratch.attrs, "unit")
    assert _type_signature(scratch.attrs.get_id("unit").get_type()) == _type_signature(
        patch["data"].attrs.get_id("unit").get_type()
    )
    assert is_deletion_marker(scratch.attrs["unit"])


@pytest.mark.parametrize("value", [DEL_VALUE, np.array(DEL_VALUE)], ids=repr)
def test_check_user_value_refuses_marker(value: object) -> None:
    with pytest.raises(ReservedValueError, match="deletion marker"):
        check_user_value(value, path="/data")


def test_check_user_value_refuses_marker_dataset(patch: h5py.File) -> None:
    with pytest.raises(ValueError, match="/tokill"):
        check_user_value(patch["tokill"], path="/tokill")


@pytest.mark.parametrize(
    "value", [np.uint8(0x7F), np.void(b"\x00"), np.array([DEL_VALUE]), "x", 1.5], ids=repr
)
def test_check_user_value_accepts_other_values(value: object) -> None:
    check_user_value(value)


def test_check_attr_name_refuses_reserved_name() -> None:
    with pytest.raises(InvalidKeyError, match="reserved"):
        check_attr_name(SUBST_ATTR, path="/grp")


@pytest.mark.parametrize("name", ["unit", "\x1aX", "x\x1a", ""])
def test_check_attr_name_accepts_other_names(name: str) -> None:
    check_attr_name(name)
