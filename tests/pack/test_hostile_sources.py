"""Packing trees that others change meanwhile, and unpacking into such trees.

Each case was measured on the old packer: links swapped in after the scan were
followed, growing files gave archives that could not be restored, unpacking
followed a swapped-in link out of the destination, modes were lost, and odd
names raised bare errors. Changes are injected at a fixed moment (right after
the scan, or while a file is read) so every case is deterministic.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest

import ih5
import ih5.pack._codecs
import ih5.pack._packer
import ih5.pack._tree_state
import ih5.pack._unpacker
from ih5 import IH5Record, PackError
from ih5.pack import pack_directory, unpack_record
from ih5.pack._codecs import PackOptions, RawCodec
from ih5.record import IH5Dataset, IH5Group
from tests.helpers.trees import snapshot

from .helpers import make_tree

SECRET = b"SECRET-outside-the-source-7f3a9c"


def archived_bytes(directory: Path) -> bytes:
    """Everything stored in the record's directory, to search for leaked bytes."""
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def after_scan(monkeypatch: pytest.MonkeyPatch, change: Callable[[], object]) -> None:
    """Run ``change`` right after pack_directory scanned the source, before it reads a file."""
    real = ih5.pack._tree_state.scan_directory

    def scan_then_change(root: Path, *args: Any) -> dict[str, os.stat_result | str]:
        listing = real(root, *args)
        change()
        return listing

    monkeypatch.setattr(ih5.pack._packer, "scan_directory", scan_then_change)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def _swap_for_link(path: Path, target: Path) -> None:
    if path.is_dir():
        path.rename(path.with_name(path.name + ".moved"))
    else:
        path.unlink()
    os.symlink(target, path)


@pytest.mark.parametrize("first_run", [True, False])
def test_regression_pack_refuses_a_file_swapped_for_a_symlink_after_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: Path, first_run: bool
) -> None:
    """The packer followed the link and archived the secret outside the source (16 of 16)."""
    source = make_tree(tmp_path / "src", {"a/f.txt": b"plain", "g.txt": b"g"})
    record = tmp_path / "out" / "rec"
    if not first_run:
        pack_directory(source, record)
        (source / "a" / "f.txt").write_bytes(b"changed")
    after_scan(monkeypatch, lambda: _swap_for_link(source / "a" / "f.txt", secret))
    with pytest.raises(PackError, match="retry when it is quiet") as caught:
        pack_directory(source, record)
    assert caught.value.path == str(source / "a" / "f.txt")
    assert SECRET not in archived_bytes(tmp_path / "out")


def test_regression_pack_refuses_a_directory_swapped_for_a_symlink_after_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: Path
) -> None:
    """A directory replaced by a link to a directory outside is never entered."""
    source = make_tree(tmp_path / "src", {"a/secret.txt": b"decoy"})
    after_scan(monkeypatch, lambda: _swap_for_link(source / "a", secret.parent))
    with pytest.raises(PackError, match="retry when it is quiet"):
        pack_directory(source, tmp_path / "out" / "rec")
    assert SECRET not in archived_bytes(tmp_path / "out")


def test_pack_refuses_a_file_that_changed_between_scan_and_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The size and times taken at scan time must still hold when the file is opened."""
    source = make_tree(tmp_path / "src", {"f.bin": b"x" * 100})
    after_scan(monkeypatch, lambda: (source / "f.bin").write_bytes(b"y" * 300))
    with pytest.raises(PackError, match=r"f\.bin.*retry when it is quiet"):
        pack_directory(source, tmp_path / "out" / "rec")


@pytest.mark.parametrize("name", ["grows.bin", "grows.npy"])
def test_regression_pack_refuses_a_file_that_grows_while_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """pack returned normally and the archive failed to unpack (IntegrityError), or TypeError."""
    body = np.arange(1000, dtype="u1").tobytes()
    source = make_tree(tmp_path / "src", {name: body})
    real = ih5.pack._codecs.choose_codec

    def append_then_choose(*args: Any) -> Any:
        with open(source / name, "ab") as handle:
            handle.write(b"appended while packing" * 1000)
        return real(*args)

    monkeypatch.setattr(ih5.pack._packer, "choose_codec", append_then_choose)
    record = tmp_path / "out" / "rec"
    with pytest.raises(PackError, match=rf"{name}.*retry when it is quiet"):
        pack_directory(source, record)
    assert not record.with_name("rec.ih5").exists()


def test_pack_refuses_a_file_that_shrinks_while_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A truncated file would leave a dataset longer than the bytes hashed."""
    source = make_tree(tmp_path / "src", {"f.bin": b"z" * 5000})
    real = ih5.pack._codecs.choose_codec

    def truncate_then_choose(*args: Any) -> Any:
        os.truncate(source / "f.bin", 10)
        return real(*args)

    monkeypatch.setattr(ih5.pack._packer, "choose_codec", truncate_then_choose)
    with pytest.raises(PackError, match="retry when it is quiet"):
        pack_directory(source, tmp_path / "out" / "rec")


def test_regression_unpack_writes_nothing_outside_when_a_directory_becomes_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replacing dest/sub by a link during unpack wrote files outside (3 of 20 runs)."""
    source = make_tree(tmp_path / "src", {"a": b"first", "sub/b": b"b", "sub/c": b"c"})
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    dest = tmp_path / "back"
    real = ih5.pack._unpacker._restore_file
    swapped: list[bool] = []

    def restore_then_swap(dataset: Any, *args: Any) -> int:
        size = real(dataset, *args)
        if not swapped and (dest / "sub").is_dir():
            (dest / "sub").rename(dest / "sub.moved")
            os.symlink(outside, dest / "sub")
            swapped.append(True)
        return size

    monkeypatch.setattr(ih5.pack._unpacker, "_restore_file", restore_then_swap)
    with pytest.raises(PackError, match="changed the destination"):
        unpack_record(record, dest)
    assert swapped
    assert list(outside.iterdir()) == []


def test_regression_unpack_restores_file_and_directory_modes_and_mtimes(tmp_path: Path) -> None:
    """0600 became 0644 and 0755 became 0644; every mtime was the unpack time."""
    source = make_tree(
        tmp_path / "src", {"private": b"p", "tool.sh": b"#!/bin/sh\n", "d/f": b"f", "e": None}
    )
    (source / "private").chmod(0o600)
    (source / "tool.sh").chmod(0o755)
    (source / "d" / "f").chmod(0o444)
    (source / "d").chmod(0o750)
    for index, name in enumerate(["private", "tool.sh", "d/f", "d", "e"]):
        os.utime(source / name, ns=(1_000_000_000 * index, 1_500_000_123_456_789 + index))
    pack_directory(source, tmp_path / "out" / "rec")
    unpack_record(tmp_path / "out" / "rec", tmp_path / "back")
    for name in ["private", "tool.sh", "d/f", "d", "e"]:
        packed, restored = (source / name).stat(), (tmp_path / "back" / name).stat()
        assert stat.S_IMODE(restored.st_mode) == stat.S_IMODE(packed.st_mode), name
        assert restored.st_mtime_ns == packed.st_mtime_ns, name


@pytest.mark.parametrize(("preserve", "expected"), [(False, 0o755), (True, 0o6755)])
def test_unpack_drops_setuid_and_setgid_bits_unless_asked(
    tmp_path: Path, preserve: bool, expected: int
) -> None:
    """As tar -x without -p: an archive must not hand out setuid programs by default."""
    source = make_tree(tmp_path / "src", {"suid": b"#!/bin/sh\n"})
    (source / "suid").chmod(0o6755)
    pack_directory(source, tmp_path / "out" / "rec")
    unpack_record(tmp_path / "out" / "rec", tmp_path / "back", preserve_special_bits=preserve)
    assert stat.S_IMODE((tmp_path / "back" / "suid").stat().st_mode) == expected


def test_unpack_gives_archives_without_modes_the_old_defaults(tmp_path: Path) -> None:
    """Records packed before modes were kept still unpack: files 0644, directories 0755."""
    data = b"old archive"
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec.create_group("d")
        dataset = rec.create_dataset("d/f", data=np.frombuffer(data, "u1"))
        dataset.attrs["size"] = len(data)
        dataset.attrs["hashsum"] = ih5.hashsum_bytes(data)
        dataset.attrs["codec"] = "raw"
    unpack_record(tmp_path / "rec", tmp_path / "back")
    assert (tmp_path / "back" / "d" / "f").read_bytes() == data
    assert stat.S_IMODE((tmp_path / "back" / "d" / "f").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "back" / "d").stat().st_mode) == 0o755


def test_pack_records_a_mode_change_as_a_change(tmp_path: Path) -> None:
    """chmod alone makes the next run repack the file, so unpack restores the new mode."""
    source = make_tree(tmp_path / "src", {"f": b"same bytes"})
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    (source / "f").chmod(0o600)
    assert pack_directory(source, record).changed == ("f",)
    unpack_record(record, tmp_path / "back")
    assert stat.S_IMODE((tmp_path / "back" / "f").stat().st_mode) == 0o600


def test_regression_pack_refuses_a_non_utf8_file_name_naming_it(tmp_path: Path) -> None:
    """Was a bare UnicodeEncodeError from h5py; now refused before anything is written."""
    source = make_tree(tmp_path / "src", {"ok.txt": b"ok"})
    raw_name = os.path.join(os.fsencode(source), b"caf\xe9.txt")
    with open(raw_name, "wb") as handle:
        handle.write(b"latin-1 name")
    with pytest.raises(PackError, match=r"caf\\xe9\.txt.*not valid UTF-8.*rename"):
        pack_directory(source, tmp_path / "out" / "rec")
    assert not (tmp_path / "out").exists()


def _npy_with_header(header: dict[str, Any], body: bytes) -> bytes:
    text = repr(header).encode()
    text += b" " * (117 - len(text)) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + body


@pytest.mark.parametrize(
    "shape", [(-2, -3), (2**62, 4), (0, -1)], ids=["negative", "int64-wrap", "zero-negative"]
)
def test_regression_pack_stores_a_crafted_npy_header_as_raw_bytes(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    """A header numpy reads but no array fits raised a bare ValueError; it is just bytes."""
    count = max(0, int(np.prod(shape, dtype=np.int64)))
    crafted = _npy_with_header(
        {"descr": "<f8", "fortran_order": False, "shape": shape}, b"\0" * 8 * count
    )
    source = make_tree(tmp_path / "src", {"crafted.npy": crafted})
    pack_directory(source, tmp_path / "out" / "rec")
    with IH5Record(tmp_path / "out" / "rec") as rec:
        assert rec["crafted.npy"].attrs["codec"] == "raw"
    unpack_record(tmp_path / "out" / "rec", tmp_path / "back")
    assert (tmp_path / "back" / "crafted.npy").read_bytes() == crafted


class _BrokenCodec:
    """A plug-in that accepts .csv files and then fails on them."""

    name = "broken"

    def accepts(self, filename: str, head: bytes, size: int) -> bool:
        return filename.endswith(".csv")

    def write(
        self, group: IH5Group, name: str, source: BinaryIO, size: int, options: PackOptions
    ) -> IH5Dataset:
        group.create_dataset(name, shape=(1,), dtype="u1")
        raise ValueError("cannot parse row 3")

    def read(self, dataset: IH5Dataset, out: BinaryIO) -> None:  # pragma: no cover
        raise AssertionError("never written")


def test_pack_names_the_file_a_plug_in_codec_fails_on(tmp_path: Path) -> None:
    """A codec's bare exception becomes a PackError naming the file and the codec."""
    source = make_tree(tmp_path / "src", {"t.csv": b"a,b\n"})
    with pytest.raises(PackError, match=r"'broken' failed on .*t\.csv.*ValueError") as caught:
        pack_directory(source, tmp_path / "out" / "rec", codecs=[_BrokenCodec(), RawCodec()])
    assert caught.value.path == str(source / "t.csv")


def test_regression_unpack_refuses_a_member_name_too_long_for_the_filesystem(
    tmp_path: Path,
) -> None:
    """A 300-byte member name raised a bare OSError (ENAMETOOLONG) half-way through."""
    long_name = "n" * 300
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec.create_group(long_name)
    with pytest.raises(PackError, match="300 bytes, longer than") as caught:
        unpack_record(tmp_path / "rec", tmp_path / "back")
    assert caught.value.path == long_name
    assert list((tmp_path / "back").iterdir()) == []


def test_unpack_restores_a_file_whose_name_is_close_to_the_limit(tmp_path: Path) -> None:
    """Temp names do not grow with the file's name, so a 250-byte name still unpacks."""
    name = "x" * 250
    source = make_tree(tmp_path / "src", {name: b"long"})
    pack_directory(source, tmp_path / "out" / "rec")
    unpack_record(tmp_path / "out" / "rec", tmp_path / "back")
    assert snapshot(tmp_path / "back") == snapshot(source)


def test_pack_archives_a_file_that_grows_after_the_run(tmp_path: Path) -> None:
    """Growth after reading is harmless: the archive holds the bytes its hashsum covers."""
    source = make_tree(tmp_path / "src", {"log": b"line 1\n"})
    pack_directory(source, tmp_path / "out" / "rec")
    with open(source / "log", "ab") as handle:
        handle.write(b"line 2\n")
    unpack_record(tmp_path / "out" / "rec", tmp_path / "back")
    assert (tmp_path / "back" / "log").read_bytes() == b"line 1\n"
