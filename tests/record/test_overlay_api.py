"""The h5py-like API of a record's overlay: mapping, creation, copies, datasets, attributes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ih5.errors import (
    InvalidKeyError,
    NodeExistsError,
    NodeNotFoundError,
    RecordModeError,
    ReservedValueError,
    UnsupportedValueError,
)
from ih5.record import IH5Dataset, IH5Group, IH5Record
from tests.helpers.nodes import as_dataset, as_group

STORAGE: dict[str, dict[str, Any]] = {
    "plain": {},
    "chunks": {"chunks": (5,)},
    "gzip": {"chunks": (8,), "compression": "gzip", "compression_opts": 6},
    "lzf-shuffle": {"compression": "lzf", "shuffle": True},
    "fletcher32": {"chunks": (4,), "fletcher32": True},
    "fillvalue": {"fillvalue": 42},
    "maxshape": {"chunks": (10,), "maxshape": (None,)},
}
STORAGE_PROPERTIES = ["chunks", "compression", "compression_opts", "fillvalue", "maxshape"]
H5PY_ONLY_PROPERTIES = ["shuffle", "fletcher32"]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A committed base: nested groups, datasets with attributes and storage settings."""
    record = tmp_path / "rec"
    with IH5Record(record, "w") as rec:
        rec.attrs["title"] = "base"
        rec["a/b/c/d/e/ds"] = np.arange(16)
        rec.create_dataset("data", data=np.arange(40, dtype="i2"), chunks=(8,), compression="gzip")
        rec["data"].attrs["unit"] = "s"
        rec["grp/x"] = [1.0, 2.0, 3.0]
        rec["grp/x"].attrs["unit"] = "m"
        rec.create_group("grp/sub").attrs["level"] = 2
        rec["zeta"] = 5
        rec["text"] = np.array(["alpha", "beta"], dtype=h5py.string_dtype())
    return record


@pytest.fixture
def rec(path: Path) -> Iterator[IH5Record]:
    """The base record open with a fresh patch."""
    record = IH5Record(path, "r+")
    yield record
    record.close(commit=False)


def reopen(rec: IH5Record, **kwargs: Any) -> IH5Record:
    """Commit ``rec``'s patch, close it, and open the record again for reading."""
    location = rec.location
    rec.close()
    return IH5Record(location, "r", **kwargs)


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[h5py.File]:
    """A plain h5py file to compare behaviour with."""
    with h5py.File(tmp_path / "plain.h5", "w") as file:
        yield file


# --- paths and mapping --------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "key"),
    [
        ("/", "a/b/c/d/e/ds"),
        ("/", "/a/b/c/d/e/ds"),
        ("/a/b", "c/d/e/ds"),
        ("/a/b", "/a/b/c/d/e/ds"),
        ("/grp", "/a/b/c/d/e/ds"),
        ("/", "a//b/c/d/e/ds/"),
    ],
)
def test_getitem_resolves_relative_and_absolute_paths(rec: IH5Record, start: str, key: str) -> None:
    found = rec[start][key]
    assert isinstance(found, IH5Dataset)
    assert found.name == "/a/b/c/d/e/ds"
    assert found[()].tolist() == list(range(16))


@pytest.mark.parametrize("key", ["missing", "grp/missing", "data/below", "/a/b/c/d/e/ds/x"])
def test_getitem_missing_raises_key_error(rec: IH5Record, key: str) -> None:
    with pytest.raises(KeyError):
        rec[key]
    with pytest.raises(NodeNotFoundError):
        rec[key]


def test_getitem_returns_groups_and_datasets(rec: IH5Record) -> None:
    assert isinstance(rec["grp"], IH5Group)
    assert isinstance(rec["grp/x"], IH5Dataset)
    assert isinstance(rec["/"], IH5Group)
    assert rec["/"].name == "/"


def test_get_returns_default_for_missing(rec: IH5Record) -> None:
    assert rec.get("missing") is None
    assert rec.get("missing", 5) == 5
    assert rec.get("grp/missing") is None
    found = rec.get("grp")
    assert isinstance(found, IH5Group)
    assert found.name == "/grp"


@pytest.mark.parametrize(
    ("start", "key", "expected"),
    [
        ("/", "grp", True),
        ("/", "grp/x", True),
        ("/", "/grp/sub", True),
        ("/a", "/grp/x", True),
        ("/a", "b/c", True),
        ("/", "missing", False),
        ("/", "grp/x/below", False),
        ("/a", "grp", False),
    ],
)
def test_contains_checks_paths(rec: IH5Record, start: str, key: str, expected: bool) -> None:
    assert (key in rec[start]) is expected


def test_contains_non_string_is_false(rec: IH5Record) -> None:
    number: object = 5
    assert number not in rec
    assert None not in rec


NAMES = ["b", "B", "a10", "a2", "_x", "Z", "a", "ü", "1"]


@pytest.mark.parametrize("in_patch", [0, 3, len(NAMES)])
def test_iteration_order_matches_h5py(tmp_path: Path, plain: h5py.File, in_patch: int) -> None:
    path = tmp_path / "order"
    with IH5Record(path, "w") as rec:
        for name in NAMES[in_patch:]:
            rec.create_group(name)
    with IH5Record(path, "r+") as rec:
        for name in NAMES[:in_patch]:
            rec.create_group(name)
        for name in NAMES:
            plain.create_group(name)
        assert list(rec) == list(plain)
        assert list(rec.keys()) == list(plain.keys())


def test_len_counts_current_members(rec: IH5Record) -> None:
    assert len(rec) == 5
    assert len(rec["grp"]) == 2
    del rec["grp/x"]
    rec["grp/y"] = 1
    rec["grp/z"] = 2
    assert len(rec["grp"]) == 3
    assert len(rec) == 5


def test_keys_values_items_agree(rec: IH5Record) -> None:
    keys = list(as_group(rec["grp"]).keys())
    assert keys == ["sub", "x"]
    assert [obj.name for obj in as_group(rec["grp"]).values()] == ["/grp/sub", "/grp/x"]
    items = list(as_group(rec["grp"]).items())
    assert [name for name, _ in items] == keys
    assert [type(obj) for _, obj in items] == [IH5Group, IH5Dataset]


# --- structure changes --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("new", [1, 2, 3]),
        ("grp/new", np.ones((2, 3), dtype="f4")),
        ("deep/er/new", np.int64(7)),
        ("/abs/new", "a string"),
    ],
)
def test_setitem_creates_dataset(rec: IH5Record, plain: h5py.File, key: str, value: Any) -> None:
    rec[key] = value
    plain[key] = value
    expected = plain[key]
    assert np.array_equal(as_dataset(rec[key])[()], expected[()])
    with reopen(rec) as reader:
        dataset = as_dataset(reader[key])
        assert (dataset.shape, dataset.dtype) == (expected.shape, expected.dtype)
        assert np.array_equal(dataset[()], expected[()])


def test_setitem_with_object_refused_copy_copies_it(rec: IH5Record) -> None:
    with pytest.raises(UnsupportedValueError, match="hard links"):
        rec["copy"] = rec["grp/x"]
    assert "copy" not in rec
    rec.copy("grp/x", "copy")
    assert as_dataset(rec["copy"])[()].tolist() == [1.0, 2.0, 3.0]
    assert rec["copy"].attrs["unit"] == "m"
    assert "grp/x" in rec


@pytest.mark.parametrize("key", ["data", "grp", "grp/x", "a/b"])
def test_setitem_existing_refused(rec: IH5Record, key: str) -> None:
    with pytest.raises(NodeExistsError):
        rec[key] = 1


@pytest.mark.parametrize("key", ["data", "grp", "grp/x", "a/b/c/d/e/ds", "a", "fresh", "fresh/y"])
def test_delitem_removes_member(rec: IH5Record, key: str) -> None:
    rec["fresh/y"] = 1
    parent = key.rsplit("/", 1)[0] if "/" in key else "/"
    siblings = set(rec[parent]) - {key.rsplit("/", 1)[-1]}
    del rec[key]
    assert key not in rec
    assert set(rec[parent]) == siblings
    with reopen(rec) as reader:
        assert key not in reader
        assert set(reader[parent]) == siblings


def test_delitem_then_recreate(rec: IH5Record) -> None:
    del rec["grp"]
    rec["grp/new"] = [5]
    with reopen(rec) as reader:
        assert list(reader["grp"]) == ["new"]
        assert as_dataset(reader["grp/new"])[()].tolist() == [5]


@pytest.mark.parametrize("key", ["missing", "grp/missing", "data/below"])
def test_delitem_missing_raises_key_error(rec: IH5Record, key: str) -> None:
    with pytest.raises(KeyError):
        del rec[key]


def test_delitem_root_refused(rec: IH5Record) -> None:
    with pytest.raises(RecordModeError):
        del rec["/"]


def test_create_group_makes_parents(rec: IH5Record) -> None:
    group = as_group(rec["grp"]).create_group("n1/n2")
    assert group.name == "/grp/n1/n2"
    assert isinstance(rec["grp/n1"], IH5Group)
    with reopen(rec) as reader:
        assert list(reader["grp/n1"]) == ["n2"]
        assert set(reader["grp"]) == {"n1", "sub", "x"}


@pytest.mark.parametrize("key", ["grp", "grp/sub", "data", "/a/b"])
def test_create_group_existing_refused(rec: IH5Record, key: str) -> None:
    with pytest.raises(NodeExistsError):
        rec.create_group(key)


def test_create_group_below_dataset_refused(rec: IH5Record) -> None:
    with pytest.raises(NodeExistsError):
        rec.create_group("data/inner")
    assert isinstance(rec["data"], IH5Dataset)


@pytest.mark.parametrize("storage", STORAGE.values(), ids=STORAGE.keys())
def test_create_dataset_applies_storage_keywords(
    rec: IH5Record, plain: h5py.File, storage: dict[str, Any]
) -> None:
    made = rec.create_dataset("made", shape=(20,), dtype="i4", **storage)
    expected = plain.create_dataset("made", shape=(20,), dtype="i4", **storage)
    for prop in ["shape", "dtype", *STORAGE_PROPERTIES]:
        assert getattr(made, prop) == getattr(expected, prop), prop
    with reopen(rec) as reader:
        for prop in ["shape", "dtype", *STORAGE_PROPERTIES]:
            assert getattr(reader["made"], prop) == getattr(expected, prop), prop
        assert as_dataset(reader["made"])[()].tolist() == expected[()].tolist()
        patch_file = reader.containers[-1]
    with h5py.File(patch_file, "r") as file:
        for prop in H5PY_ONLY_PROPERTIES:
            assert getattr(file["made"], prop) == getattr(expected, prop), prop


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": [[1, 2], [3, 4]]},
        {"shape": (2, 2), "dtype": "u1"},
        {"shape": (4,), "data": [[1, 2], [3, 4]]},
        {"data": np.arange(6, dtype=">f8").reshape(3, 2), "dtype": "<f4"},
        {"shape": (), "dtype": "f8"},
        {"data": b"bytes"},
        {"data": np.array([(1, 2.5)], dtype=[("i", "i4"), ("f", "f8")])},
        {"shape": None, "dtype": "f8"},
    ],
)
def test_create_dataset_like_h5py(rec: IH5Record, plain: h5py.File, kwargs: dict[str, Any]) -> None:
    expected = plain.create_dataset("made", **kwargs)
    made = rec.create_dataset("made", **kwargs)
    assert (made.shape, made.dtype) == (expected.shape, expected.dtype)
    if expected.shape is not None:
        assert np.array_equal(made[()], expected[()])


def test_create_dataset_failure_leaves_nothing(rec: IH5Record) -> None:
    with pytest.raises((TypeError, ValueError)):
        rec.create_dataset("bad", shape=(3,), data=[1, 2])
    assert "bad" not in rec
    rec.create_dataset("bad", data=[1, 2])
    assert as_dataset(rec["bad"])[()].tolist() == [1, 2]


# --- require_group / require_dataset ------------------------------------------


def test_require_group_returns_existing_or_creates(rec: IH5Record) -> None:
    assert rec.require_group("grp") == rec["grp"]
    made = rec.require_group("made/deep")
    assert made.name == "/made/deep"
    assert "made/deep" in rec


REQUIRE_CASES = {
    "same": ((3,), "f8", {}),
    "castable dtype": ((3,), "f4", {}),
    "int as shape": (3, "f8", {}),
    "exact same": ((3,), "f8", {"exact": True}),
    "exact other dtype": ((3,), "f4", {"exact": True}),
    "other shape": ((4,), "f8", {}),
    "uncastable dtype": ((3,), "c16", {}),
    "other rank": ((3, 1), "f8", {}),
}


@pytest.mark.parametrize("case", REQUIRE_CASES.values(), ids=REQUIRE_CASES.keys())
def test_require_dataset_checks_like_h5py(
    rec: IH5Record, plain: h5py.File, case: tuple[Any, str, dict[str, Any]]
) -> None:
    shape, dtype, kwargs = case
    plain["grp/x"] = [1.0, 2.0, 3.0]
    try:
        plain.require_dataset("grp/x", shape, dtype, **kwargs)
    except TypeError:
        with pytest.raises(TypeError):
            rec.require_dataset("grp/x", shape, dtype, **kwargs)
    else:
        assert rec.require_dataset("grp/x", shape, dtype, **kwargs) == rec["grp/x"]


def test_require_dataset_creates_missing(rec: IH5Record) -> None:
    made = rec.require_dataset("made", (6,), "i2", chunks=(2,), fillvalue=3)
    assert (made.shape, made.dtype, made.chunks, made.fillvalue) == ((6,), np.dtype("i2"), (2,), 3)


@pytest.mark.parametrize(
    ("require", "key"),
    [("require_group", "data"), ("require_dataset", "grp")],
)
def test_require_incompatible_object_raises_type_error(
    rec: IH5Record, plain: h5py.File, require: str, key: str
) -> None:
    plain["data"] = 1
    plain.create_group("grp")
    args = () if require == "require_group" else ((), "i8")
    with pytest.raises(TypeError):
        getattr(plain, require)(key, *args)
    with pytest.raises(TypeError):
        getattr(rec, require)(key, *args)


# --- copy and move ------------------------------------------------------------


def test_copy_dataset_keeps_values_attributes_and_storage(rec: IH5Record) -> None:
    rec.copy("data", "copied")
    copied, source = rec["copied"], rec["data"]
    assert isinstance(copied, IH5Dataset)
    assert isinstance(source, IH5Dataset)
    assert copied[()].tolist() == source[()].tolist()
    assert dict(copied.attrs) == {"unit": "s"}
    assert (copied.chunks, copied.compression, copied.dtype) == ((8,), "gzip", np.dtype("i2"))
    with reopen(rec) as reader:
        assert as_dataset(reader["copied"]).chunks == (8,)
        assert reader["copied"].attrs["unit"] == "s"
        assert as_dataset(reader["data"])[()].tolist() == list(range(40))


@pytest.mark.parametrize(
    ("dest", "name", "expected"),
    [
        ("grp/copied", None, "/grp/copied"),
        ("/a/x", None, "/a/x"),
        ("group:a", None, "/a/x"),
        ("group:a", "renamed", "/a/renamed"),
    ],
)
def test_copy_destinations(rec: IH5Record, dest: str, name: str | None, expected: str) -> None:
    target: str | IH5Group = dest
    if dest.startswith("group:"):
        group = rec[dest.removeprefix("group:")]
        assert isinstance(group, IH5Group)
        target = group
    rec.copy("grp/x", target, name=name)
    assert rec[expected].attrs["unit"] == "m"
    assert as_dataset(rec[expected])[()].tolist() == [1.0, 2.0, 3.0]


def test_copy_without_attrs(rec: IH5Record) -> None:
    rec.copy("grp", "bare", without_attrs=True)
    assert len(rec["bare/x"].attrs) == 0
    assert len(rec["bare/sub"].attrs) == 0


def test_copy_group_recursively(rec: IH5Record) -> None:
    rec["grp/x"].attrs["extra"] = 1
    rec.copy(rec["grp"], "grp2")
    with reopen(rec) as reader:
        assert list(reader["grp2"]) == ["sub", "x"]
        assert dict(reader["grp2/sub"].attrs) == {"level": 2}
        assert dict(reader["grp2/x"].attrs) == {"extra": 1, "unit": "m"}


def test_copy_from_other_record(rec: IH5Record, tmp_path: Path) -> None:
    other_path = tmp_path / "other"
    with IH5Record(other_path, "w") as other:
        other.create_dataset("blob", data=np.arange(30), chunks=(10,), compression="gzip")
        other["blob"].attrs["origin"] = "other"
    with IH5Record(other_path) as other:
        rec.copy(other["blob"], "imported")
    assert rec["imported"].attrs["origin"] == "other"
    assert as_dataset(rec["imported"]).chunks == (10,)
    assert as_dataset(rec["imported"])[()].tolist() == list(range(30))


@pytest.mark.parametrize(("source", "dest"), [("grp/x", "moved/x"), ("grp", "g2"), ("data", "d")])
def test_move_relocates_object(rec: IH5Record, source: str, dest: str) -> None:
    before = rec[source]
    attrs = dict(before.attrs)
    rec.move(source, dest)
    assert source not in rec
    assert dict(rec[dest].attrs) == attrs
    with reopen(rec) as reader:
        assert source not in reader
        assert dict(reader[dest].attrs) == attrs
        if isinstance(reader[dest], IH5Dataset) and dest == "d":
            assert as_dataset(reader["d"]).compression == "gzip"


# --- visiting ---------------------------------------------------------------


def build_same_tree(rec: IH5Record, plain: h5py.File) -> None:
    del rec["a"]
    for group in (rec, plain):
        for name in ["b/x", "a/z/q", "a/y", "a10", "a2", "B"]:
            group.create_group(name)
        group["a/d"] = 1


@pytest.mark.parametrize("start", ["/", "/a", "/a/z"])
def test_visit_order_matches_h5py(rec: IH5Record, plain: h5py.File, start: str) -> None:
    build_same_tree(rec, plain)
    del rec["data"], rec["grp"], rec["zeta"], rec["text"]
    seen: list[str] = []
    expected: list[str] = []
    as_group(rec[start]).visit(seen.append)
    plain[start].visit(expected.append)
    assert seen == expected


def test_visititems_passes_objects(rec: IH5Record) -> None:
    seen: list[tuple[str, str, str]] = []
    as_group(rec["grp"]).visititems(
        lambda name, obj: seen.append((name, obj.name, type(obj).__name__))
    )
    assert seen == [("sub", "/grp/sub", "IH5Group"), ("x", "/grp/x", "IH5Dataset")]


@pytest.mark.parametrize("visit", ["visit", "visititems"])
def test_visit_stops_at_first_non_none(rec: IH5Record, visit: str) -> None:
    calls: list[str] = []

    def find(name: str, *_obj: Any) -> str | None:
        calls.append(name)
        return name.upper() if name.endswith("c") else None

    assert getattr(rec, visit)(find) == "A/B/C"
    assert calls == ["a", "a/b", "a/b/c"]


def test_visit_returns_none_when_nothing_found(rec: IH5Record) -> None:
    assert rec.visit(lambda name: None) is None


# --- object identity ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "parent"),
    [("/", "/"), ("a", "/"), ("a/b/c/d/e/ds", "/a/b/c/d/e"), ("grp/x", "/grp")],
)
def test_name_file_parent(rec: IH5Record, key: str, parent: str) -> None:
    obj = rec[key]
    assert obj.name == "/" + key.strip("/") if key != "/" else obj.name == "/"
    assert obj.file is rec
    assert obj.parent.name == parent
    assert obj.parent.file is rec


# --- datasets ---------------------------------------------------------------


DATASETS = {
    "1d": {"data": np.arange(12, dtype="i8")},
    "2d-chunked": {"data": np.arange(12.0).reshape(3, 4), "chunks": (1, 4)},
    "gzip": {"data": np.arange(50, dtype="u2"), "compression": "gzip"},
    "scalar": {"data": 3.5},
    "strings": {"data": np.array(["x", "yz"], dtype=h5py.string_dtype())},
    "fixed-bytes": {"data": np.array([b"ab", b"c"], dtype="S2")},
    "empty": {"shape": None, "dtype": "f8"},
}


@pytest.mark.parametrize("kwargs", DATASETS.values(), ids=DATASETS.keys())
def test_dataset_properties_match_h5py(
    rec: IH5Record, plain: h5py.File, kwargs: dict[str, Any]
) -> None:
    rec.create_dataset("ds", **kwargs)
    expected = plain.create_dataset("ds", **kwargs)
    with reopen(rec) as reader:
        made = reader["ds"]
        assert isinstance(made, IH5Dataset)
        for prop in ["shape", "dtype", "ndim", "size", "chunks", "compression", "maxshape"]:
            assert getattr(made, prop) == getattr(expected, prop), prop
        if expected.shape:
            assert len(made) == len(expected)
        if expected.shape is None:
            assert made[()] == expected[()]
        else:
            assert np.array_equal(np.asarray(made), np.asarray(expected))
            assert np.asarray(made, dtype=object).dtype == np.dtype(object)
            assert np.array_equal(made[...], expected[...])


def test_dataset_asstr_decodes_strings(rec: IH5Record) -> None:
    assert as_dataset(rec["text"]).asstr()[()].tolist() == ["alpha", "beta"]
    assert as_dataset(rec["text"]).asstr()[1] == "beta"
    assert as_dataset(rec["text"])[0] == b"alpha"


@pytest.mark.parametrize(
    "selection",
    [np.s_[3], np.s_[2:9], np.s_[::3], np.s_[-4:], np.s_[[1, 5, 7]], np.s_[...]],
)
def test_dataset_slicing_like_numpy(rec: IH5Record, selection: Any) -> None:
    expected = np.arange(40, dtype="i2")[selection]
    assert np.array_equal(as_dataset(rec["data"])[selection], expected)


def test_dataset_slicing_reads_only_requested_part(tmp_path: Path) -> None:
    path = tmp_path / "big"
    with IH5Record(path, "w") as rec:
        rec.create_dataset("big", data=np.arange(200_000.0), chunks=(1000,), fletcher32=True)
        info = rec.chain.writer.file["big"].id.get_chunk_info(150) if rec.chain.writer else None
    assert info is not None
    damaged = bytearray((tmp_path / "big.ih5").read_bytes())
    damaged[1024 + info.byte_offset + 17] ^= 0xFF
    (tmp_path / "big.ih5").write_bytes(bytes(damaged))
    with IH5Record(path, "r", verify=False) as rec:
        assert as_dataset(rec["big"])[10:20].tolist() == list(range(10, 20))
        assert as_dataset(rec["big"])[151_000:151_005].tolist() == list(range(151_000, 151_005))
        assert as_dataset(rec["big"]).shape == (200_000,)
        with pytest.raises(OSError):
            as_dataset(rec["big"])[150_000:150_010]
        with pytest.raises(OSError):
            np.asarray(rec["big"])


def test_dataset_write_in_current_patch(rec: IH5Record) -> None:
    made = rec.create_dataset("made", shape=(4,), dtype="i4")
    made[1:3] = [7, 8]
    assert made[()].tolist() == [0, 7, 8, 0]
    rec["made2"] = np.zeros((2, 2))
    as_dataset(rec["made2"])[1] = 5.0
    with reopen(rec) as reader:
        assert as_dataset(reader["made"])[()].tolist() == [0, 7, 8, 0]
        assert as_dataset(reader["made2"])[()].tolist() == [[0.0, 0.0], [5.0, 5.0]]


@pytest.mark.parametrize("key", ["grp/x", "a/b/c/d/e/ds"])
def test_dataset_write_to_older_contiguous_dataset_needs_copy_into_patch(
    rec: IH5Record, key: str
) -> None:
    dataset = rec[key]
    assert isinstance(dataset, IH5Dataset)
    before = dataset[()]
    with pytest.raises(RecordModeError, match="copy_into_patch"):
        dataset[0] = 9
    assert np.array_equal(dataset[()], before)
    storage = (dataset.chunks, dataset.compression, dataset.dtype, dict(dataset.attrs))
    dataset.copy_into_patch()[0] = 9
    assert dataset[0] == 9
    assert (dataset.chunks, dataset.compression, dataset.dtype, dict(dataset.attrs)) == storage
    with reopen(rec) as reader:
        assert as_dataset(reader[key])[0] == 9
        assert np.array_equal(as_dataset(reader[key])[1:], before[1:])
        assert dict(reader[key].attrs) == storage[3]
    with IH5Record(reader.location, "r", at=0) as past:
        assert np.array_equal(as_dataset(past[key])[()], before)


def test_dataset_copy_into_patch_twice_refused_keeping_values(rec: IH5Record) -> None:
    as_dataset(rec["data"]).copy_into_patch()[0] = 100
    with pytest.raises(RecordModeError, match="already in the latest"):
        as_dataset(rec["data"]).copy_into_patch()
    assert as_dataset(rec["data"])[0] == 100
    rec["made"] = [1, 2]
    with pytest.raises(RecordModeError, match="already in the latest"):
        as_dataset(rec["made"]).copy_into_patch()
    assert as_dataset(rec["made"])[()].tolist() == [1, 2]


def test_dataset_view_of_deleted_object_fails(rec: IH5Record) -> None:
    dataset = as_dataset(rec["grp/x"])
    del rec["grp"]
    with pytest.raises(NodeNotFoundError):
        dataset[()]


# --- attributes -------------------------------------------------------------


ATTRIBUTE_VALUES: dict[str, Any] = {
    "int": 42,
    "negative": -7,
    "big-uint": np.uint64(2**63 + 1),
    "int8": np.int8(-3),
    "float": 3.25,
    "float32": np.float32(0.5),
    "complex": 1 + 2j,
    "bool": True,
    "np-bool": np.bool_(False),
    "str": "héllo wörld",
    "empty-str": "",
    "bytes": b"raw bytes",
    "np-bytes": np.bytes_(b"fixed"),
    "int-array": np.arange(6).reshape(2, 3),
    "float-list": [1.0, 2.5],
    "str-list": ["a", "bc"],
    "bool-array": np.array([True, False]),
    "fixed-bytes-array": np.array([b"ab", b"c"], dtype="S2"),
    "void": np.void(b"\x01\x02\x03"),
    "void-1-byte": np.void(b"\x00"),
    "void-array": np.array([b"\x7f\x7f", b"\x00\x01"], dtype="V2"),
    "compound": np.array((1, 2.5), dtype=[("a", "i4"), ("b", "f8")])[()],
    "empty-f8": h5py.Empty("f8"),
    "empty-i4": h5py.Empty("i4"),
    "empty-array": np.zeros((0,), dtype="f4"),
}


def assert_same_value(seen: Any, expected: Any) -> None:
    assert type(seen) is type(expected)
    if isinstance(expected, h5py.Empty):
        assert seen.dtype == expected.dtype
    elif isinstance(expected, np.ndarray):
        assert (seen.dtype, seen.shape) == (expected.dtype, expected.shape)
        assert seen.tolist() == expected.tolist()
    else:
        assert seen == expected
        assert getattr(seen, "dtype", None) == getattr(expected, "dtype", None)


@pytest.mark.parametrize("value", ATTRIBUTE_VALUES.values(), ids=ATTRIBUTE_VALUES.keys())
@pytest.mark.parametrize("key", ["/", "grp", "grp/x", "fresh"])
def test_attrs_store_every_h5py_type(
    rec: IH5Record, plain: h5py.File, key: str, value: Any
) -> None:
    plain.attrs["v"] = value
    expected = plain.attrs["v"]
    rec["fresh"] = [0]
    rec[key].attrs["v"] = value
    assert_same_value(rec[key].attrs["v"], expected)
    with reopen(rec) as reader:
        assert_same_value(reader[key].attrs["v"], expected)


def test_attrs_mapping(rec: IH5Record) -> None:
    attrs = rec["grp/x"].attrs
    attrs["b"] = 1
    attrs.create("a", [1, 2], dtype="i2")
    attrs.modify("unit", "km")
    assert list(attrs) == ["a", "b", "unit"]
    assert len(attrs) == 3
    assert "a" in attrs
    assert "missing" not in attrs
    assert attrs["a"].dtype == np.dtype("i2")
    assert dict(attrs.items())["unit"] == "km"
    with pytest.raises(KeyError):
        attrs["missing"]


@pytest.mark.parametrize("key", ["/", "grp/sub", "grp/x", "data"])
def test_attrs_delete(rec: IH5Record, key: str) -> None:
    obj = rec[key]
    name = next(iter(obj.attrs))
    del obj.attrs[name]
    assert name not in obj.attrs
    with pytest.raises(KeyError):
        del obj.attrs[name]
    with reopen(rec) as reader:
        assert name not in reader[key].attrs


def test_attrs_hide_substitution_marker(rec: IH5Record) -> None:
    del rec["grp"]
    rec.create_group("grp")
    rec["grp"].attrs["new"] = 1
    with reopen(rec) as reader:
        assert list(reader["grp"].attrs) == ["new"]


# --- reserved values and keys -------------------------------------------------

MARKER = np.void(b"\x7f")

RESERVED_WRITES: dict[str, Callable[[IH5Record], Any]] = {
    "dataset data": lambda rec: rec.create_dataset("bad", data=MARKER),
    "setitem": lambda rec: rec.__setitem__("bad", MARKER),
    "group attribute": lambda rec: rec["grp"].attrs.__setitem__("bad", MARKER),
    "dataset attribute": lambda rec: rec["grp/x"].attrs.__setitem__("bad", MARKER),
    "attrs.create": lambda rec: rec.attrs.create("bad", MARKER),
    "dataset write": lambda rec: rec.create_dataset("bad", shape=(), dtype="V1").__setitem__(
        (), MARKER
    ),
    "fill value": lambda rec: rec.create_dataset("bad", shape=(), dtype="V1", fillvalue=MARKER),
    "bytes as V1": lambda rec: rec.create_dataset("bad", data=b"\x7f", dtype="V1"),
    "bytes written": lambda rec: rec.create_dataset("bad", shape=(), dtype="V1").__setitem__(
        (), b"\x7f"
    ),
}


@pytest.mark.parametrize("write", RESERVED_WRITES.values(), ids=RESERVED_WRITES.keys())
def test_reserved_deletion_value_refused(rec: IH5Record, write: Callable[[IH5Record], Any]) -> None:
    with pytest.raises(ReservedValueError):
        write(rec)
    with reopen(rec) as reader:
        assert "bad" not in reader["grp"].attrs
        assert "bad" not in reader["grp/x"].attrs
        assert "bad" not in reader.attrs
        assert "bad" not in reader or as_dataset(reader["bad"])[()] != MARKER


@pytest.mark.parametrize("key", ["/", "grp", "grp/x"])
def test_reserved_attribute_name_refused(rec: IH5Record, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        rec[key].attrs["\x1a"] = 1
    assert "\x1a" not in rec[key].attrs


BAD_KEYS = [".", "..", "grp/.", "grp/..", "/../grp", "a/./b", "x\x00y", "grp/\x00"]
KEY_USES: dict[str, Callable[[IH5Record, str], Any]] = {
    "getitem": lambda rec, key: rec[key],
    "get": lambda rec, key: rec.get(key),
    "setitem": lambda rec, key: rec.__setitem__(key, 1),
    "delitem": lambda rec, key: rec.__delitem__(key),
    "create_group": lambda rec, key: rec.create_group(key),
    "create_dataset": lambda rec, key: rec.create_dataset(key, data=[1]),
    "require_group": lambda rec, key: rec.require_group(key),
    "copy target": lambda rec, key: rec.copy("grp/x", key),
}


@pytest.mark.parametrize("use", KEY_USES.values(), ids=KEY_USES.keys())
@pytest.mark.parametrize("key", BAD_KEYS)
def test_key_validation_refuses_names(
    rec: IH5Record, key: str, use: Callable[[IH5Record, str], Any]
) -> None:
    before = list(rec)
    with pytest.raises(InvalidKeyError):
        use(rec, key)
    assert list(rec) == before


@pytest.mark.parametrize("key", [5, None, b"grp"])
def test_key_validation_refuses_non_strings(rec: IH5Record, key: Any) -> None:
    with pytest.raises(InvalidKeyError):
        rec[key]


def test_repr_of_a_deleted_object_says_so(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec["gone"] = 1
        view = rec["gone"]
        group = rec.create_group("grp")
        del rec["gone"]
        del rec["grp"]
        assert repr(view) == '<IH5 dataset "/gone": deleted>'
        assert repr(group) == '<IH5 group "/grp": deleted>'
