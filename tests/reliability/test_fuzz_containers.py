"""Opening damaged containers ends in an ih5 error or a correct read, never anything else.

Byte flips and cut files run in a worker process (``fuzzing.OpenWorker``), where a
crash or a loop inside libhdf5 cannot take the test run down; damage made of whole
files (swapped, duplicated, foreign) runs in process under a time bound. Every case
also checks that opening changed none of its input files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import ih5
from ih5 import IH5MFRecord, IH5Record
from ih5.format import read_user_block, write_user_block
from ih5.fs import hashsum_bytes
from ih5.record import _opening as opening
from ih5.record._facts import FactsCache

from .fuzzing import (
    FIXTURES,
    Damage,
    Sweeper,
    Tally,
    Target,
    fingerprint,
    open_and_read,
    record_content,
    report,
    seal,
    wants_long,
    within,
)

TARGETS = {
    "plain": Target("IH5Record", ("plain.ih5", "plain.p1.ih5")),
    "mfrec": Target("IH5MFRecord", ("mfrec.ih5", "mfrec.p1.ih5")),
    "stub-chain": Target("IH5MFRecord", ("mfrec.ih5", "mfrec.p1.ih5", "stub.p2.ih5")),
    "stub": Target("IH5MFRecord", ("stub.ih5", "stub.p2.ih5")),
    "merged": Target("IH5MFRecord", ("merged.ih5",)),
}
DAMAGED = {"stub-chain": ("stub.p2.ih5",)}
"""Files to damage where not all of the target's (the others are swept in another target)."""

TEXT_END = 400
"""Every fixture's user-block text ends before this offset; flips there reach the parser."""

BOUND = 30.0
"""Seconds an in-process open may take."""


@pytest.fixture(autouse=True)
def fresh_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Facts are cached by (patch uuid, claimed hashsum): with verify=False a damaged copy
    would be served the intact file's facts, read by an earlier test."""
    monkeypatch.setattr(opening, "FACTS_CACHE", FactsCache())


@pytest.fixture(scope="module")
def sweeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweeper]:
    if not FIXTURES.is_dir():
        pytest.skip(f"metador-core fixtures not found at {FIXTURES}")
    with Sweeper(tmp_path_factory.mktemp("sweep")) as sweeper:
        yield sweeper


def flips(size: int, name: str, long: bool, verify: bool) -> list[Damage]:
    """Byte flips for one file: its user-block text densely, its payload by a stride.

    A 0x01 flip keeps text mostly ASCII (a uuid digit, a quote turned '#'), reaching the
    JSON and field checks; 0xFF mostly breaks UTF-8 and HDF5 structures outright.
    """
    if name.endswith(".json"):
        return [Damage(name, offset, 0x01) for offset in range(0, size, 1 if long else 23)]
    text = range(min(size, TEXT_END))
    if long:
        head = [Damage(name, offset, mask) for offset in text for mask in (0x01, 0x20)]
        # With verify=True every payload byte meets the same hash check: a stride suffices.
        return head + [Damage(name, offset) for offset in range(0, size, 7 if verify else 1)]
    return [Damage(name, offset, 0x01) for offset in text[::11]] + [
        Damage(name, offset) for offset in range(5, size, 97)
    ]


def cuts(size: int, name: str, long: bool) -> list[Damage]:
    """Truncations: at the edges of the user block and superblock, then by a stride."""
    edges = {0, 1, 7, 8, 512, 1023, 1024, 1025, 1032, size // 2, size - 1}
    stride = 13 if long else 257
    return [
        Damage(name, offset, truncate=True) for offset in sorted(edges | {*range(0, size, stride)})
    ]


def damages(sweeper: Sweeper, name: str, long: bool, verify: bool) -> list[Damage]:
    target = TARGETS[name]
    files = list(DAMAGED.get(name, target.files))
    files += [f"{files[-1]}mf.json"] if target.cls == "IH5MFRecord" else []
    found: list[Damage] = []
    for file in files:
        size = sweeper.size(file)
        found += flips(size, file, long, verify) + cuts(size, file, long)
    return found


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "trusted"])
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_record_open_of_damaged_copies_ends_typed_or_correct(
    sweeper: Sweeper, request: pytest.FixtureRequest, capsys: Any, name: str, verify: bool
) -> None:
    """Flipped bytes and cut files: an ih5 error, or a read equal to the intact record.

    With verify=True every payload byte is hashed before libhdf5 sees it, so anything
    but a typed error or the intact content fails. Only the user block is not hashed
    (FORMAT.md 2): a flip there that still parses is another valid block and is read
    as it says (e.g. "hdg5_hashsum" leaves the newest container uncommitted, so the
    older state shows; counted as altered).

    With verify=False the caller vouched for the bytes. A read may then return other
    values (a flip in raw data; counted as altered), but a damaged HDF5 structure, met
    at open or by a later read of a value or attribute, must raise an ih5 error (on
    lazy reads DamagedPayloadError, also an OSError as h5py raises), never a bare h5py
    error. libhdf5 itself crashes or loops on some damaged structures (variable-length
    data in a damaged global heap, found only when values are read, never at open):
    those cases are counted and named in the summary, not failed, since no Python code
    can stop them and verify=True, the default, rules them out.
    """
    tally = Tally(f"open {name} verify={verify}")
    long = wants_long(request.config)
    sweeper.run(TARGETS[name], damages(sweeper, name, long, verify), verify, tally)
    report(tally, capsys)


# --- whole files mixed up -------------------------------------------------------------


def layout(directory: Path, files: dict[str, str]) -> Path:
    """Copy fixtures into the new ``directory`` under new names (new name -> fixture)."""
    directory.mkdir()
    for new, old in files.items():
        shutil.copyfile(FIXTURES / old, directory / new)
        (directory / new).chmod(0o644)
    return directory


def open_in_process(source: Any, verify: bool, cls: type[IH5Record] = IH5Record) -> Any:
    """Open and read a record in process, bounded in time; return its content or ih5 error."""

    def run() -> Any:
        try:
            with cls(source, verify=verify) as record:
                return record_content(record)
        except ih5.Ih5Error as exc:
            return exc

    return within(BOUND, run)


MIXED_UP: dict[str, tuple[dict[str, str], list[str] | None, type[ih5.Ih5Error]]] = {
    "base-of-another-record": (
        {"plain.ih5": "mfrec.ih5", "plain.p1.ih5": "plain.p1.ih5"},
        None,
        ih5.MixedRecordsError,
    ),
    "patch-swapped-between-records": (
        {"plain.ih5": "plain.ih5", "plain.p1.ih5": "mfrec.p1.ih5"},
        None,
        ih5.MixedRecordsError,
    ),
    "patch-of-another-record-given": (
        {"plain.ih5": "plain.ih5", "mfrec.p1.ih5": "mfrec.p1.ih5"},
        ["plain.ih5", "mfrec.p1.ih5"],
        ih5.MixedRecordsError,
    ),
    "patch-copied-under-a-second-name": (
        {"plain.ih5": "plain.ih5", "plain.p1.ih5": "plain.p1.ih5", "plain.p2.ih5": "plain.p1.ih5"},
        None,
        ih5.ChainError,
    ),
    "patch-given-twice": (
        {"plain.ih5": "plain.ih5", "plain.p1.ih5": "plain.p1.ih5"},
        ["plain.ih5", "plain.p1.ih5", "plain.p1.ih5"],
        ih5.ChainError,
    ),
    "base-given-twice": ({"plain.ih5": "plain.ih5"}, ["plain.ih5", "plain.ih5"], ih5.ChainError),
    "patch-without-its-base": ({"plain.p1.ih5": "plain.p1.ih5"}, None, ih5.ChainError),
    "merged-beside-its-chain": (
        {"mfrec.ih5": "mfrec.ih5", "mfrec.p1.ih5": "mfrec.p1.ih5", "merged.ih5": "merged.ih5"},
        ["mfrec.ih5", "mfrec.p1.ih5", "merged.ih5"],
        ih5.ChainError,
    ),
    "stub-after-a-base": (
        {"mfrec.ih5": "mfrec.ih5", "stub.ih5": "stub.ih5"},
        ["mfrec.ih5", "stub.ih5"],
        ih5.ChainError,
    ),
}


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "trusted"])
@pytest.mark.parametrize("case", sorted(MIXED_UP))
def test_record_open_refuses_mixed_up_files(tmp_path: Path, case: str, verify: bool) -> None:
    files, given, error = MIXED_UP[case]
    directory = layout(tmp_path / "rec", files)
    before = fingerprint(tmp_path)
    name = next(iter(files)).split(".")[0]
    source = [directory / file for file in given] if given else directory / name
    outcome = open_in_process(source, verify)
    assert isinstance(outcome, error), outcome
    assert fingerprint(tmp_path) == before


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "trusted"])
# merged.ih5mf.json is not foreign: a merge keeps the manifest of the state it merged.
@pytest.mark.parametrize("foreign", ["mfrec.ih5mf.json", "stub.ih5mf.json", "stub.p2.ih5mf.json"])
def test_mfrecord_open_refuses_a_manifest_of_another_container(
    tmp_path: Path, foreign: str, verify: bool
) -> None:
    directory = layout(
        tmp_path / "rec",
        {"mfrec.ih5": "mfrec.ih5", "mfrec.p1.ih5": "mfrec.p1.ih5", "mfrec.p1.ih5mf.json": foreign},
    )
    before = fingerprint(tmp_path)
    outcome = open_in_process(directory / "mfrec", verify, IH5MFRecord)
    assert isinstance(outcome, ih5.ManifestError), outcome
    assert fingerprint(tmp_path) == before


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "trusted"])
def test_mfrecord_open_refuses_a_manifest_whose_hashsum_matches_but_uuid_does_not(
    tmp_path: Path, verify: bool
) -> None:
    directory = layout(tmp_path / "rec", {"merged.ih5": "merged.ih5"})
    manifest = json.loads((FIXTURES / "merged.ih5mf.json").read_text("utf-8"))
    manifest["manifest_uuid"] = "00000000-0000-4000-8000-000000000000"
    raw = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    (directory / "merged.ih5mf.json").write_bytes(raw)
    # The user block is outside the container's hashsum: point it at the new bytes.
    block = read_user_block(directory / "merged.ih5")
    section = {**block.ub_exts["ih5mf_v01"], "manifest_hashsum": hashsum_bytes(raw)}
    write_user_block(
        directory / "merged.ih5",
        block.model_copy(update={"ub_exts": {**block.ub_exts, "ih5mf_v01": section}}),
    )
    before = fingerprint(tmp_path)
    outcome = open_in_process(directory / "merged", verify, IH5MFRecord)
    assert isinstance(outcome, ih5.ManifestError), outcome
    assert "uuid" in str(outcome)
    assert fingerprint(tmp_path) == before


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "trusted"])
def test_mfrecord_open_reads_a_patch_made_on_a_stub_beside_the_real_chain(
    tmp_path: Path, verify: bool
) -> None:
    names = ["mfrec.ih5", "mfrec.p1.ih5", "stub.p2.ih5", "stub.p2.ih5mf.json"]
    directory = layout(tmp_path / "rec", {name: name for name in names})
    before = fingerprint(tmp_path)
    content = open_in_process([directory / name for name in names[:3]], verify, IH5MFRecord)
    assert sorted(path for path in content if path.count("/") == 0 and path != "/") == [
        "data",
        "fromstub",
        "grp",
    ]
    assert fingerprint(tmp_path) == before


# --- regressions ------------------------------------------------------------------------


def fixture_copy(tmp_path: Path, *names: str) -> list[Path]:
    """Copy fixtures into ``tmp_path``; return the copies."""
    return [Path(shutil.copyfile(FIXTURES / name, tmp_path / name)) for name in names]


def edit_bytes(path: Path, old: bytes, new: bytes) -> None:
    """Replace the first occurrence of ``old`` in a file by ``new`` (same length)."""
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    path.write_bytes(data.replace(old, new, 1))


@pytest.mark.parametrize("name", [b"new/rp", b"\xff\xfewgrp"], ids=["slash", "not-utf8"])
def test_regression_record_open_refuses_member_names_that_are_no_path_parts(
    tmp_path: Path, name: bytes
) -> None:
    """Was a bare TypeError (bytes names) or AssertionError ('/' in a name) from the overlay."""
    files = fixture_copy(tmp_path, "plain.ih5", "plain.p1.ih5")
    edit_bytes(files[1], b"newgrp", name)
    with pytest.raises(ih5.IntegrityError, match="name"):
        IH5Record(files, verify=False)


def test_regression_record_open_refuses_a_damaged_datatype(tmp_path: Path) -> None:
    """Was a bare TypeError ('Unknown string encoding') from h5py while reading facts."""
    files = fixture_copy(tmp_path, "plain.ih5", "plain.p1.ih5")
    Damage("plain.ih5", 9178).apply(tmp_path)  # found by the sweep: in a string datatype
    with pytest.raises(ih5.IntegrityError, match="encoding"):
        IH5Record(files, verify=False)


def hand_made(tmp_path: Path, link: str) -> Path:
    """A committed base (valid hashsum) whose group /a holds a link of kind ``link``."""
    (tmp_path / "other.h5").unlink(missing_ok=True)
    with h5py.File(tmp_path / "other.h5", "w") as other:
        other["secret"] = np.arange(3)
    path = tmp_path / "crafted.ih5"
    with h5py.File(path, "w", userblock_size=1024) as file:
        group = file.create_group("a")
        group["x"] = 1
        if link == "hard-loop":
            group["loop"] = group
        elif link == "soft-loop":
            group["loop"] = h5py.SoftLink("/a")
        elif link == "external":
            group["ext"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/")
    return seal(path)


@pytest.mark.parametrize("link", ["hard-loop", "soft-loop"])
def test_regression_record_open_refuses_a_link_loop(tmp_path: Path, link: str) -> None:
    """Reading the container's facts walked the loop forever (and without memory bound)."""
    path = hand_made(tmp_path, link)
    outcome = open_in_process([path], verify=True)
    assert isinstance(outcome, ih5.IntegrityError), outcome
    assert "linked at two paths" in str(outcome)


def test_regression_record_open_refuses_links_to_other_files(tmp_path: Path) -> None:
    """An external link made the record show (and unpack) another file's content."""
    path = hand_made(tmp_path, "external")
    outcome = open_in_process([path], verify=True)
    assert isinstance(outcome, ih5.IntegrityError), outcome
    assert "another file" in str(outcome)


def flip_in_heap(path: Path, delta: int) -> None:
    """Flip a byte of the file's first global heap collection (where string values live)."""
    Damage(path.name, path.read_bytes().index(b"GCOL") + delta).apply(path.parent)


def test_regression_dataset_read_of_a_damaged_heap_raises_damaged_payload_error(
    tmp_path: Path,
) -> None:
    """Was a bare OSError from h5py once the record had opened with verify=False."""
    files = fixture_copy(tmp_path, "mfrec.ih5", "mfrec.p1.ih5")
    flip_in_heap(files[1], 11)  # the collection's size
    with IH5Record(files, verify=False) as record:
        dataset = record["grp/added"]
        assert isinstance(dataset, ih5.IH5Dataset)
        with pytest.raises(ih5.DamagedPayloadError) as caught:
            dataset[()]
    assert isinstance(caught.value, OSError)
    assert caught.value.path == str(files[1])


def test_regression_attribute_read_of_a_damaged_heap_raises_damaged_payload_error(
    tmp_path: Path,
) -> None:
    """Was a bare OSError from h5py once the record had opened with verify=False."""
    files = fixture_copy(tmp_path, "merged.ih5")
    flip_in_heap(files[0], 4)  # the collection's version
    with IH5Record(files, verify=False) as record, pytest.raises(ih5.DamagedPayloadError):
        record["data"].attrs["unit"]


def test_regression_mfrecord_open_refuses_a_damaged_manifest_section(tmp_path: Path) -> None:
    """Was a bare pydantic ValidationError from the ih5mf_v01 section of the user block."""
    files = fixture_copy(tmp_path, "merged.ih5", "merged.ih5mf.json")
    block = read_user_block(files[0])
    section = {**block.ub_exts["ih5mf_v01"], "manifest_uuid": "not-a-uuid"}
    write_user_block(
        files[0], block.model_copy(update={"ub_exts": {**block.ub_exts, "ih5mf_v01": section}})
    )
    with pytest.raises(ih5.ManifestError, match="ih5mf_v01"):
        IH5MFRecord(files[:1])


def test_open_and_read_matches_the_fixture_readme(tmp_path: Path) -> None:
    """The sweeps compare with this reading of the intact files: check it against the README."""
    files = fixture_copy(tmp_path, "plain.ih5", "plain.p1.ih5")
    content = open_and_read(IH5Record, files, True)
    assert sorted(content) == [
        "/",
        "data",
        "grp",
        "grp/sub",
        "grp/sub/added",
        "grp/sub/value",
        "newgrp",
    ]
    assert content["grp/sub/value"][1] == ["<i8", [], 42]
