"""``diff_states``: added, removed and replaced nodes and attributes between two states."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ih5.errors import RecordNotFoundError
from ih5.manifest import IH5MFRecord, manifest_path
from ih5.record import IH5Dataset, IH5Record
from ih5.record._diff import AttrChanges, NodeChange, RecordDiff, diff_states

Change = Callable[[IH5Record], None]


def base(path: Path, record_class: type[IH5Record] = IH5Record) -> Path:
    """A record whose base holds datasets, a nested group and attributes."""
    with record_class(path, "w") as rec:
        rec["data"] = np.arange(10)
        rec["keep"] = np.ones(3)
        rec["keep"].attrs["unit"] = "m"
        rec.create_group("grp/sub").attrs["depth"] = 2
        rec.attrs["title"] = "base"
        rec.attrs["nan"] = np.nan
    return path


def patch(path: Path, change: Change, record_class: type[IH5Record] = IH5Record) -> None:
    """Commit one patch on ``path`` made by ``change``."""
    with record_class(path, "r+") as rec:
        change(rec)


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return base(tmp_path / "rec")


def test_diff_states_same_state_is_empty(record: Path) -> None:
    assert diff_states(record, 0, 0) == RecordDiff(0, 0)
    assert not diff_states(record, 0, 0)


def test_diff_states_attribute_written_again_with_its_value_is_no_change(record: Path) -> None:
    def rewrite(rec: IH5Record) -> None:
        rec.attrs["title"] = "base"
        rec.attrs["nan"] = np.nan
        rec["keep"].attrs["unit"] = "m"

    patch(record, rewrite)
    assert diff_states(record, 0, 1) == RecordDiff(0, 1)


def test_diff_states_lists_added_paths_below_new_groups(record: Path) -> None:
    def add(rec: IH5Record) -> None:
        rec["new"] = np.zeros(2)
        rec.create_group("grp2/child")

    patch(record, add)
    assert diff_states(record, 0, 1) == RecordDiff(0, 1, added=("/grp2", "/grp2/child", "/new"))


def test_diff_states_lists_removed_paths_with_their_children(record: Path) -> None:
    patch(record, lambda rec: rec.__delitem__("grp"))
    assert diff_states(record, 0, 1) == RecordDiff(0, 1, removed=("/grp", "/grp/sub"))


def test_diff_states_backwards_swaps_added_and_removed(record: Path) -> None:
    patch(record, lambda rec: rec.__delitem__("grp"))
    assert diff_states(record, 1, 0) == RecordDiff(1, 0, added=("/grp", "/grp/sub"))


def test_diff_states_rewritten_dataset_is_changed(record: Path) -> None:
    def rewrite(rec: IH5Record) -> None:
        dataset = rec["data"]
        assert isinstance(dataset, IH5Dataset)
        dataset.copy_into_patch()[0] = 99

    patch(record, rewrite)
    changes = diff_states(record, 0, 1)
    assert changes == RecordDiff(0, 1, changed=(NodeChange("/data", "dataset", "dataset"),))


def test_diff_states_dataset_turned_group_changes_kind(record: Path) -> None:
    def regroup(rec: IH5Record) -> None:
        del rec["keep"]
        rec.create_group("keep/inner")

    patch(record, regroup)
    assert diff_states(record, 0, 1) == RecordDiff(
        0,
        1,
        added=("/keep/inner",),
        changed=(NodeChange("/keep", "dataset", "group"),),
        attrs={"/keep": AttrChanges(removed=("unit",))},
    )


def test_diff_states_recreated_group_is_replaced_and_old_children_removed(record: Path) -> None:
    def recreate(rec: IH5Record) -> None:
        del rec["grp"]
        rec.create_group("grp")

    patch(record, recreate)
    assert diff_states(record, 0, 1) == RecordDiff(
        0, 1, removed=("/grp/sub",), changed=(NodeChange("/grp", "group", "group"),)
    )


def test_diff_states_reports_attributes_per_path(record: Path) -> None:
    def retitle(rec: IH5Record) -> None:
        rec.attrs["title"] = "patched"
        rec.attrs["author"] = "me"
        del rec.attrs["nan"]
        rec["keep"].attrs["unit"] = "km"

    patch(record, retitle)
    assert diff_states(record, 0, 1) == RecordDiff(
        0,
        1,
        attrs={
            "/": AttrChanges(added=("author",), removed=("nan",), changed=("title",)),
            "/keep": AttrChanges(changed=("unit",)),
        },
    )


def test_diff_states_spans_several_patches(record: Path) -> None:
    patch(record, lambda rec: rec.__setitem__("one", np.ones(1)))
    patch(record, lambda rec: rec.__delitem__("one"))
    patch(record, lambda rec: rec.__setitem__("two", np.ones(2)))
    assert diff_states(record, 0, 3) == RecordDiff(0, 3, added=("/two",))
    assert diff_states(record, 1, 2) == RecordDiff(1, 2, removed=("/one",))


def test_diff_states_unknown_state_raises_naming_the_known_ones(record: Path) -> None:
    with pytest.raises(RecordNotFoundError, match=r"no committed state 4; known: \[0\]"):
        diff_states(record, 0, 4)


def test_diff_states_attribute_rewritten_over_a_stub_counts_as_changed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "stub").mkdir()
    real = base(tmp_path / "real" / "rec", IH5MFRecord)
    stub = tmp_path / "stub" / "rec"
    IH5MFRecord.create_stub(stub, manifest_path(real.parent / "rec.ih5"))
    patch(stub, lambda rec: rec.attrs.__setitem__("title", "base"), IH5MFRecord)
    assert diff_states(stub, 0, 1) == RecordDiff(0, 1, attrs={"/": AttrChanges(changed=("title",))})
