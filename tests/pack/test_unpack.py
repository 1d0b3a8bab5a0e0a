"""``unpack_record``: the packed tree comes back byte for byte, or not at all for a file."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from ih5 import IntegrityError, PackError
from ih5.fs import is_temp_name
from ih5.pack import pack_directory, unpack_record
from ih5.record import IH5Record
from tests.helpers.trees import snapshot

from .helpers import Link, make_tree, npy_bytes

MIB = 1 << 20

TREE = {
    "big.bin": np.random.default_rng(1).bytes(2 * MIB + 123),
    "empty.bin": b"",
    "a/b/c/deep.txt": b"deep\n",
    "a/b/empty": None,
    "a/array.npy": npy_bytes(np.arange(20.0).reshape(4, 5), fortran=True),
    "a/link-to-file": Link("b/c/deep.txt"),
    "a/link-up": Link("../big.bin"),
    "link-to-dir": Link("a/b"),
    "dangling": Link("nowhere/at/all"),
    "ünïcödé name.txt": "naïve ☃\n".encode(),
    "spaces and (parens)/f": b"f",
    ".hidden": b"dot",
}


@pytest.fixture
def record(tmp_path: Path) -> Path:
    source = make_tree(tmp_path / "src", TREE)
    target = tmp_path / "out" / "rec"
    pack_directory(source, target)
    return target


def test_unpack_record_restores_bytes_dirs_and_links(tmp_path: Path, record: Path) -> None:
    result = unpack_record(record, tmp_path / "back")
    restored = snapshot(tmp_path / "back")
    assert restored == snapshot(tmp_path / "src")
    assert restored["a/link-up"] == ("link", "../big.bin")
    assert (result.files, result.symlinks) == (7, 4)
    assert result.directories == len([v for v in restored.values() if v[0] == "dir"])
    assert result.bytes_written == sum(len(v) for v in TREE.values() if isinstance(v, bytes))


def test_unpack_record_fills_an_existing_empty_directory(tmp_path: Path, record: Path) -> None:
    (tmp_path / "back").mkdir()
    unpack_record(record, tmp_path / "back")
    assert snapshot(tmp_path / "back") == snapshot(tmp_path / "src")


@pytest.mark.parametrize("occupant", ["file-inside", "dir-inside", "is-a-file"])
def test_unpack_record_refuses_an_occupied_destination(
    tmp_path: Path, record: Path, occupant: str
) -> None:
    destination = tmp_path / "back"
    if occupant == "is-a-file":
        destination.write_bytes(b"x")
    elif occupant == "dir-inside":
        (destination / "thing").mkdir(parents=True)
    else:
        destination.mkdir()
        (destination / "thing").write_bytes(b"x")
    before = snapshot(tmp_path)
    with pytest.raises(PackError, match="back"):
        unpack_record(record, destination)
    assert snapshot(tmp_path) == before


def forge_hashsum(record: Path, path: str) -> None:
    """Commit a patch that claims a wrong hashsum for the file at ``path``."""
    with IH5Record(record, "r+") as rec:
        rec[path].attrs["hashsum"] = "sha256:" + "0" * 64


def test_unpack_record_refuses_a_file_whose_hashsum_does_not_match(
    tmp_path: Path, record: Path
) -> None:
    forge_hashsum(record, "a/b/c/deep.txt")
    destination = tmp_path / "back"
    with pytest.raises(IntegrityError, match=r"deep\.txt"):
        unpack_record(record, destination)
    leftovers = [name for _, _, names in os.walk(destination) for name in names]
    assert not [name for name in leftovers if is_temp_name(name)]
    assert not (destination / "a" / "b" / "c" / "deep.txt").exists()


def test_unpack_record_refuses_a_damaged_container_before_writing(
    tmp_path: Path, record: Path
) -> None:
    container = record.parent / "rec.ih5"
    with h5py.File(container, "r+") as file:
        file["a/b/c/deep.txt"][0] = ord("D")
    with pytest.raises(IntegrityError):
        unpack_record(record, tmp_path / "back")
    assert not (tmp_path / "back").exists()


def test_unpack_record_refuses_an_unknown_record(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        unpack_record(tmp_path / "nothing" / "rec", tmp_path / "back")
