"""The source state a pack keeps in its manifest: written and read back without pydantic,
in the layout earlier ih5 versions wrote, and refused when damaged."""

from __future__ import annotations

from typing import Any

import pytest

import ih5
from ih5.pack import EntryState, TreeState

STATE = TreeState(
    entries={
        "a": EntryState(kind="dir"),
        "a/f": EntryState(
            kind="file", size=3, mtime_ns=7, hashsum="sha256:" + "0" * 64, mode=0o644
        ),
        "a/l": EntryState(kind="symlink", target="f"),
    }
)


def test_a_state_is_kept_in_the_layout_ih5_always_wrote() -> None:
    assert STATE.to_ext() == {
        "ih5_pack": {
            "version": 1,
            "entries": {
                "a": {"kind": "dir", "size": 0, "mtime_ns": 0},
                "a/f": {
                    "kind": "file",
                    "size": 3,
                    "mtime_ns": 7,
                    "hashsum": "sha256:" + "0" * 64,
                    "mode": 0o644,
                },
                "a/l": {"kind": "symlink", "size": 0, "mtime_ns": 0, "target": "f"},
            },
        }
    }


def test_a_state_reads_back_equal() -> None:
    assert TreeState.from_exts(STATE.to_ext(), "rec") == STATE


def test_a_state_written_before_modes_were_kept_reads_with_no_mode() -> None:
    exts = {"ih5_pack": {"version": 1, "entries": {"f": {"kind": "file", "size": 1}}}}
    assert TreeState.from_exts(exts, "rec").entries["f"] == EntryState(kind="file", size=1)


@pytest.mark.parametrize(
    "section",
    [
        [],
        {"version": "1", "entries": {}},
        {"entries": []},
        {"entries": {"f": {"kind": "pipe"}}},
        {"entries": {"f": {"kind": "file", "size": "3"}}},
        {"entries": {"f": {"kind": "file", "hashsum": 3}}},
        {"entries": {"f": {"kind": "file", "mode": True}}},
        {"entries": {"f": "file"}},
    ],
)
def test_a_damaged_state_is_refused_naming_the_section(section: Any) -> None:
    with pytest.raises(ih5.PackError, match="'ih5_pack' section in the manifest of rec"):
        TreeState.from_exts({"ih5_pack": section}, "rec")
