"""Records written by metador-core 0.1.1 read as their README says, and take our patches.

The fixtures are copied to a temp directory before use: they must never change.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ih5.errors import NodeNotFoundError, StubError
from ih5.format import read_user_block
from ih5.record import IH5Dataset, IH5Record

from .model import Tree, assert_matches, tree_of

FIXTURES = Path(os.environ.get("IH5_FIXTURES", "/work/shared/fixtures")) / "metador-0.1.1"


def group(attrs: dict[str, Any] | None = None, **members: Tree) -> Tree:
    return {"attrs": attrs or {}, "members": members}


def dataset(value: Any, attrs: dict[str, Any] | None = None) -> Tree:
    return {"attrs": attrs or {}, "value": value}


PLAIN_BASE = group(
    {"title": "reference"},
    data=dataset(np.array([1, 2, 3]), {"unit": "m"}),
    grp=group(sub=group({"note": "nested"}, value=dataset(np.int64(42)))),
    tokill=dataset("will be deleted"),
)
PLAIN_PATCH1 = group(
    {"title": "reference"},
    data=dataset(np.array([1, 2, 3])),
    grp=group(
        {"added_attr": 7},
        sub=group(
            {"note": "nested"},
            added=dataset(np.array([0.0, 1.0, 2.0, 3.0])),
            value=dataset(np.int64(42)),
        ),
    ),
    newgrp=group(),
)
MFREC_BASE = group(
    data=dataset(np.array([1, 2, 3]), {"unit": "m"}),
    grp=group(sub=group(value=dataset(np.int64(42)))),
    tokill=dataset("x"),
)
MFREC_PATCH1 = group(
    data=dataset(np.array([1, 2, 3]), {"unit": "m"}),
    grp=group(added=dataset("new"), sub=group(value=dataset(np.int64(42)))),
)
MFREC_WITH_STUB_PATCH = group(
    data=dataset(np.array([1, 2, 3]), {"unit": "m"}),
    fromstub=dataset("patched on stub"),
    grp=group(added=dataset("new"), sub=group(value=dataset(np.int64(42)))),
)

# What our patch on top of `plain` holds, as seen through the overlay and in the raw file.
PLAIN_OUR_PATCH = group(
    data=dataset(np.array([1, 2, 3]), {"unit": "km"}),
    grp=group(
        {"added_attr": 7, "more": "yes"},
        sub=group({"note": "nested"}, added=group()),
    ),
    newer=group(),
    newgrp=group(inner=group()),
)
OUR_PATCH_RAW_PATHS = [
    "/data",
    "/grp",
    "/grp/sub",
    "/grp/sub/added",
    "/grp/sub/value",
    "/newer",
    "/newgrp",
    "/newgrp/inner",
]


Copier = Callable[..., list[Path]]
"""Copies the named fixture files into the test's directory; returns the copies' paths."""


@pytest.fixture
def copied(tmp_path: Path) -> Copier:
    """Copy fixture files into ``tmp_path``; return the copies' paths."""
    if not FIXTURES.is_dir():
        pytest.skip(f"metador-core fixtures not found at {FIXTURES}")

    def copy(*names: str) -> list[Path]:
        for name in names:
            shutil.copyfile(FIXTURES / name, tmp_path / name)
        return [tmp_path / name for name in names]

    return copy


@pytest.fixture
def plain_with_our_patch(copied: Copier) -> Path:
    """A copy of `plain` with patch 2 written by our code; return the record path."""
    base, _ = copied("plain.ih5", "plain.p1.ih5")
    record_path = base.with_suffix("")
    with IH5Record(record_path, "r+") as record:
        del record["grp/sub/value"]
        del record.attrs["title"]
        record.create_group("newer")
        record["grp"].attrs["more"] = "yes"
        record["data"].attrs["unit"] = "km"
        del record["newgrp"]
        record.create_group("newgrp/inner")
        del record["grp/sub/added"]
        record.create_group("grp/sub/added")
    return record_path


@pytest.mark.parametrize(
    ("at", "expected"),
    [(None, PLAIN_PATCH1), (1, PLAIN_PATCH1), (0, PLAIN_BASE)],
    ids=["newest", "at1", "at0"],
)
def test_fixture_plain_reads_as_documented(copied: Copier, at: int | None, expected: Tree) -> None:
    base, _ = copied("plain.ih5", "plain.p1.ih5")
    with IH5Record(base.with_suffix(""), "r", at=at) as record:
        assert_matches(record, expected, f"plain at={at}")


def test_fixture_plain_deleted_dataset_is_gone(copied: Copier) -> None:
    base, _ = copied("plain.ih5", "plain.p1.ih5")
    with IH5Record(base.with_suffix("")) as record:
        assert "tokill" not in record
        with pytest.raises(NodeNotFoundError):
            record["tokill"]


def test_fixture_plain_deleted_attribute_is_gone(copied: Copier) -> None:
    base, _ = copied("plain.ih5", "plain.p1.ih5")
    with IH5Record(base.with_suffix("")) as record:
        assert "unit" not in record["data"].attrs
        with pytest.raises(KeyError):
            record["data"].attrs["unit"]


@pytest.mark.parametrize(
    ("at", "expected"), [(None, MFREC_PATCH1), (0, MFREC_BASE)], ids=["newest", "at0"]
)
def test_fixture_mfrec_reads_as_documented(copied: Copier, at: int | None, expected: Tree) -> None:
    base, _ = copied("mfrec.ih5", "mfrec.p1.ih5")
    with IH5Record(base.with_suffix(""), "r", at=at) as record:
        assert_matches(record, expected, f"mfrec at={at}")


def test_fixture_mfrec_added_string_reads_as_str(copied: Copier) -> None:
    base, _ = copied("mfrec.ih5", "mfrec.p1.ih5")
    with IH5Record(base.with_suffix("")) as record:
        added = record["grp/added"]
        assert isinstance(added, IH5Dataset)
        assert added.asstr()[()] == "new"
        assert added[()] == b"new"


def test_fixture_stub_alone_opens_with_structure(copied: Copier) -> None:
    with IH5Record(copied("stub.ih5")) as record:
        assert list(record) == ["data", "grp"]
        assert list(record["grp"]) == ["added", "sub"]
        assert list(record["grp/sub"]) == ["value"]
        assert list(record["data"].attrs) == ["unit"]


@pytest.mark.parametrize(
    "read",
    [lambda record: record["data"][()], lambda record: record["data"].attrs["unit"]],
    ids=["value", "attribute"],
)
def test_fixture_stub_placeholder_is_refused(copied: Copier, read: Any) -> None:
    with IH5Record(copied("stub.ih5")) as record, pytest.raises(StubError):
        read(record)


def test_fixture_stub_patch_applies_to_real_chain(copied: Copier) -> None:
    files = copied("mfrec.ih5", "mfrec.p1.ih5", "stub.p2.ih5")
    with IH5Record(files) as record:
        assert_matches(record, MFREC_WITH_STUB_PATCH, "mfrec + stub.p2")


def test_fixture_stub_patch_applies_to_merged(copied: Copier) -> None:
    with IH5Record(copied("merged.ih5", "stub.p2.ih5")) as record:
        assert_matches(record, MFREC_WITH_STUB_PATCH, "merged + stub.p2")


def test_fixture_merged_equals_mfrec_overlay(copied: Copier) -> None:
    base, _, merged = copied("mfrec.ih5", "mfrec.p1.ih5", "merged.ih5")
    with IH5Record(base.with_suffix("")) as record:
        expected = tree_of(record)
    with IH5Record([merged]) as record:
        assert_matches(record, expected, "merged.ih5")


def test_fixture_plain_our_patch_reads_back(plain_with_our_patch: Path) -> None:
    with IH5Record(plain_with_our_patch) as record:
        assert_matches(record, PLAIN_OUR_PATCH, "plain + our patch")


def test_fixture_plain_our_patch_keeps_older_state(plain_with_our_patch: Path) -> None:
    with IH5Record(plain_with_our_patch, "r", at=1) as record:
        assert_matches(record, PLAIN_PATCH1, "plain at=1 after our patch")


def test_fixture_plain_our_patch_merges(plain_with_our_patch: Path) -> None:
    with IH5Record(plain_with_our_patch) as record:
        merged = record.merge_files(plain_with_our_patch.parent / "merged-ours.ih5")
    with IH5Record([merged]) as record:
        assert_matches(record, PLAIN_OUR_PATCH, "merged plain + our patch")


def test_fixture_plain_our_patch_links_to_chain(plain_with_our_patch: Path) -> None:
    directory = plain_with_our_patch.parent
    previous = read_user_block(directory / "plain.p1.ih5")
    ours = read_user_block(directory / "plain.p2.ih5")
    assert ours.patch_index == 2
    assert ours.prev_patch == previous.patch_uuid
    assert ours.record_uuid == previous.record_uuid
    assert ours.hdf5_hashsum is not None


def test_fixture_plain_our_patch_holds_only_changes(plain_with_our_patch: Path) -> None:
    paths: list[str] = []
    with h5py.File(plain_with_our_patch.parent / "plain.p2.ih5", "r") as file:
        file.visit(lambda name: paths.append("/" + name))
    assert sorted(paths) == OUR_PATCH_RAW_PATHS


def _is_deletion(value: Any) -> bool:
    return isinstance(value, np.void) and value.tobytes() == b"\x7f"


@pytest.mark.parametrize("path", ["/grp/sub/value"])
def test_fixture_plain_our_patch_marks_deleted_dataset(
    plain_with_our_patch: Path, path: str
) -> None:
    with h5py.File(plain_with_our_patch.parent / "plain.p2.ih5", "r") as file:
        marker = file[path]
        assert isinstance(marker, h5py.Dataset)
        assert marker.shape == ()
        assert _is_deletion(marker[()])


@pytest.mark.parametrize(("path", "name"), [("/", "title")])
def test_fixture_plain_our_patch_marks_deleted_attribute(
    plain_with_our_patch: Path, path: str, name: str
) -> None:
    with h5py.File(plain_with_our_patch.parent / "plain.p2.ih5", "r") as file:
        assert _is_deletion(file[path].attrs[name])


@pytest.mark.parametrize("path", ["/newer", "/newgrp", "/newgrp/inner", "/grp/sub/added"])
def test_fixture_plain_our_patch_marks_new_group_substituting(
    plain_with_our_patch: Path, path: str
) -> None:
    with h5py.File(plain_with_our_patch.parent / "plain.p2.ih5", "r") as file:
        group = file[path]
        assert isinstance(group, h5py.Group)
        marker = group.attrs["\x1a"]
        assert isinstance(marker, h5py.Empty)
        assert marker.dtype == np.dtype("f8")


@pytest.mark.parametrize("path", ["/", "/data", "/grp", "/grp/sub"])
def test_fixture_plain_our_patch_keeps_changed_group_virtual(
    plain_with_our_patch: Path, path: str
) -> None:
    with h5py.File(plain_with_our_patch.parent / "plain.p2.ih5", "r") as file:
        group = file[path]
        assert isinstance(group, h5py.Group)
        assert "\x1a" not in group.attrs
