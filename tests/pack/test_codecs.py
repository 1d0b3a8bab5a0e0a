"""Codec plug-ins from the ``ih5.codecs`` entry points: preferred, verified, required to unpack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import numpy as np
import pytest

import ih5.pack._codecs
from ih5 import PackError
from ih5.pack import (
    ENTRY_POINT_GROUP,
    PackOptions,
    installed_codecs,
    pack_directory,
    unpack_record,
)
from ih5.record import IH5Dataset, IH5Group, IH5Record
from tests.helpers.nodes import as_dataset
from tests.helpers.trees import snapshot

from .helpers import make_tree, npy_bytes, unpacked


class LinesCodec:
    """Text files as a string dataset with one element per line (line ends kept)."""

    def __init__(self, name: str = "lines") -> None:
        self.name = name

    def accepts(self, filename: str, head: bytes, size: int) -> bool:
        return filename.endswith(".csv")

    def write(
        self, group: IH5Group, name: str, source: BinaryIO, size: int, options: PackOptions
    ) -> IH5Dataset:
        lines = source.read().decode("latin-1").splitlines(keepends=True)
        data = np.array(lines, dtype=h5py.string_dtype("utf-8"))
        return group.create_dataset(name, data=data, shape=(len(lines),))

    def read(self, dataset: IH5Dataset, out: BinaryIO) -> None:
        lines = dataset.asstr()[()] if dataset.shape != (0,) else []
        out.write("".join(lines).encode("latin-1"))


class LossyCodec(LinesCodec):
    """Forgets the final line end: must not be trusted with the bytes."""

    def read(self, dataset: IH5Dataset, out: BinaryIO) -> None:
        lines = dataset.asstr()[()] if dataset.shape != (0,) else []
        out.write("".join(lines).rstrip("\n").encode("latin-1"))


class WholeCodec:
    """Any file as one contiguous (unchunked) byte array."""

    name = "whole"

    def accepts(self, filename: str, head: bytes, size: int) -> bool:
        return True

    def write(
        self, group: IH5Group, name: str, source: BinaryIO, size: int, options: PackOptions
    ) -> IH5Dataset:
        return group.create_dataset(name, data=np.frombuffer(source.read(), np.uint8))

    def read(self, dataset: IH5Dataset, out: BinaryIO) -> None:
        out.write(dataset[()].tobytes())


@dataclass(frozen=True)
class FakeEntryPoint:
    """What ``installed_codecs`` uses of an importlib entry point."""

    name: str
    value: Any

    def load(self) -> Any:
        return self.value


def install(monkeypatch: pytest.MonkeyPatch, **codecs: Any) -> None:
    """Make ``codecs`` the entry points of the ``ih5.codecs`` group."""
    points = [FakeEntryPoint(name, codec) for name, codec in codecs.items()]

    def entry_points(*, group: str) -> list[FakeEntryPoint]:
        return points if group == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(ih5.pack._codecs, "entry_points", entry_points)


CSV = b"a,b\r\n1,2\n\n3,\xe9\n"
TREE = {
    "table.csv": CSV,
    "empty.csv": b"",
    "no-newline.csv": b"x,y",
    "array.npy": npy_bytes(np.arange(5)),
    "other.bin": b"\x00\xff",
}


def pack(tmp_path: Path) -> Path:
    source = make_tree(tmp_path / "src", TREE)
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    return record


def codecs_of(record: Path) -> dict[str, str]:
    with IH5Record(record) as rec:
        return {name: str(rec[name].attrs["codec"]) for name in rec}


def test_installed_codecs_lists_plugins_by_name_then_builtins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch, zeta=LinesCodec("z"), alpha=LinesCodec("a"))
    assert [codec.name for codec in installed_codecs()] == ["a", "z", "npy", "raw"]


def test_pack_directory_uses_a_plugin_codec_and_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, lines=LinesCodec())
    record = pack(tmp_path)
    assert codecs_of(record) == {
        "table.csv": "lines",
        "empty.csv": "lines",
        "no-newline.csv": "lines",
        "array.npy": "npy",
        "other.bin": "raw",
    }
    with IH5Record(record) as rec:
        table = as_dataset(rec["table.csv"])
        assert table.asstr()[()].tolist() == ["a,b\r\n", "1,2\n", "\n", "3,é\n"]
    assert unpacked(record, tmp_path / "back") == snapshot(tmp_path / "src")


def test_pack_directory_prefers_plugins_over_builtin_codecs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, whole=WholeCodec())
    record = pack(tmp_path)
    assert set(codecs_of(record).values()) == {"whole"}
    assert unpacked(record, tmp_path / "back") == snapshot(tmp_path / "src")


def test_pack_directory_tries_plugins_in_entry_point_name_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, b_second=LinesCodec("second"), a_first=LinesCodec("first"))
    assert codecs_of(pack(tmp_path))["table.csv"] == "first"


def test_pack_directory_falls_back_to_raw_when_a_codec_loses_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, lossy=LossyCodec("lossy"))
    record = pack(tmp_path)
    codecs = codecs_of(record)
    assert codecs["table.csv"] == "raw"
    assert codecs["no-newline.csv"] == "lossy"  # nothing to lose here, so kept
    with IH5Record(record) as rec:
        assert as_dataset(rec["table.csv"]).dtype == np.dtype("u1")
        assert rec["table.csv"].attrs["size"] == len(CSV)
    assert unpacked(record, tmp_path / "back") == snapshot(tmp_path / "src")


def test_unpack_record_refuses_a_codec_that_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, lines=LinesCodec())
    record = pack(tmp_path)
    install(monkeypatch)
    with pytest.raises(PackError, match=r"'lines'.*not installed"):
        unpacked(record, tmp_path / "back")


def test_unpack_record_uses_explicitly_given_codecs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, lines=LinesCodec())
    record = pack(tmp_path)
    install(monkeypatch)
    unpack_record(record, tmp_path / "back", codecs=[LinesCodec(), *installed_codecs()])
    assert snapshot(tmp_path / "back") == snapshot(tmp_path / "src")
