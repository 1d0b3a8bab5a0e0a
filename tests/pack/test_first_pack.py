"""The first run of ``pack_directory``: a manifest-backed record mirroring the source tree."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ih5.manifest import IH5MFRecord
from ih5.pack import PackOptions, pack_directory
from ih5.pack._codecs import raw_chunk_length
from ih5.record import IH5Dataset, IH5Group, IH5Record
from tests.helpers.nodes import as_dataset
from tests.helpers.trees import snapshot

from .helpers import make_tree, npy_bytes, unpacked

MIB = 1 << 20

TREE = {
    "top.txt": b"hello\n",
    "a/b/deep.bin": bytes(range(256)) * 3,
    "a/empty.dat": b"",
    "a/nested/empty/dir": None,
    "lonely": None,
    "table.csv": b"x,y\n1,2\n",
}


def pack(tmp_path: Path, spec: dict[str, Any], **kwargs: Any) -> Path:
    """Pack ``spec`` as record ``rec`` and return the record path."""
    source = make_tree(tmp_path / "src", spec)
    record = tmp_path / "out" / "rec"
    pack_directory(source, record, **kwargs)
    return record


def test_pack_directory_makes_every_directory_a_group_and_every_file_a_dataset(
    tmp_path: Path,
) -> None:
    record = pack(tmp_path, TREE)
    kinds: dict[str, str] = {}
    with IH5Record(record) as rec:
        rec.visititems(
            lambda path, obj: kinds.update({path: "dir" if isinstance(obj, IH5Group) else "file"})
        )
    expected = {path: kind for path, (kind, _) in snapshot(tmp_path / "src").items()}
    assert kinds == expected


def test_pack_directory_reports_created_with_every_path_added(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", TREE)
    result = pack_directory(source, tmp_path / "out" / "rec")
    assert result.action == "created"
    assert result.patch_index == 0
    assert result.added == tuple(sorted(snapshot(source)))
    assert (result.changed, result.removed) == ((), ())
    assert result.file_count == 4
    assert result.total_bytes == sum(len(v) for v in TREE.values() if isinstance(v, bytes))
    assert {path.name for path in result.written} == {"rec.ih5", "rec.ih5mf.json"}


@pytest.mark.parametrize("size", [1, 1000, MIB, 2 * MIB + 7])
@pytest.mark.parametrize("compression", [None, "gzip"])
def test_pack_directory_stores_raw_files_as_chunked_bytes(
    tmp_path: Path, size: int, compression: str | None
) -> None:
    data = np.random.default_rng(size).integers(0, 4, size, dtype=np.uint8).tobytes()
    record = pack(tmp_path, {"blob.bin": data}, options=PackOptions(compression=compression))
    with IH5Record(record) as rec:
        dataset = rec["blob.bin"]
        assert isinstance(dataset, IH5Dataset)
        assert (dataset.dtype, dataset.shape) == (np.dtype("u1"), (size,))
        assert dataset.chunks == (raw_chunk_length(size),)
        assert dataset.compression == compression
        assert dataset.attrs["codec"] == "raw"
        assert dataset[()].tobytes() == data


def test_pack_directory_stores_an_empty_file_as_an_empty_dataset(tmp_path: Path) -> None:
    record = pack(tmp_path, {"void": b""}, options=PackOptions(compression="gzip"))
    with IH5Record(record) as rec:
        assert as_dataset(rec["void"]).shape == (0,)
        assert rec["void"].attrs["size"] == 0
    assert unpacked(record, tmp_path / "back") == {"void": ("file", b"")}


ARRAYS = {
    "c-order": (np.arange(12.0).reshape(3, 4), False),
    "fortran-order": (np.arange(24, dtype=np.int32).reshape(2, 3, 4), True),
    "big-endian": (np.arange(6, dtype=">i4").reshape(2, 3), False),
    "big-endian-fortran": (np.arange(6, dtype=">f8").reshape(3, 2), True),
    "zero-d": (np.array(3.25), False),
    "empty": (np.zeros((0, 3)), False),
    "empty-1d": (np.zeros(0, dtype=np.uint16), False),
    "bool": (np.array([True, False, True]), False),
    "complex": (np.array([1 + 2j, -3j]), False),
    "float16": (np.array([0.5, 1.5], dtype=np.float16), False),
    "bytes": (np.array([b"ab", b"c", b""]), False),
}


@pytest.mark.parametrize("compression", [None, "gzip"])
@pytest.mark.parametrize("case", sorted(ARRAYS))
def test_pack_directory_stores_npy_as_typed_arrays(
    tmp_path: Path, case: str, compression: str | None
) -> None:
    array, fortran = ARRAYS[case]
    raw = npy_bytes(array, fortran=fortran)
    record = pack(tmp_path, {"array.npy": raw}, options=PackOptions(compression=compression))
    with IH5Record(record) as rec:
        dataset = rec["array.npy"]
        assert isinstance(dataset, IH5Dataset)
        assert dataset.attrs["codec"] == "npy"
        assert dataset.dtype == array.dtype
        assert dataset.shape == array.shape
        np.testing.assert_array_equal(dataset[()], array)
    assert unpacked(record, tmp_path / "back") == {"array.npy": ("file", raw)}


RAW_NPY = {
    "unicode": npy_bytes(np.array(["alpha", "beta"])),
    "object": npy_bytes(np.array([1, "two", None], dtype=object)),
    "structured": npy_bytes(np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])),
    "datetime": npy_bytes(np.array(["2024-01-01"], dtype="datetime64[D]")),
    "truncated": npy_bytes(np.arange(100.0))[:-8],
    "trailing-bytes": npy_bytes(np.arange(4.0)) + b"\x00",
    "header-only": npy_bytes(np.arange(4.0))[:20],
    "not-npy": b"\x93NUMPY but not really",
}


@pytest.mark.parametrize("case", sorted(RAW_NPY))
def test_pack_directory_stores_unsupported_npy_as_raw_bytes(tmp_path: Path, case: str) -> None:
    raw = RAW_NPY[case]
    record = pack(tmp_path, {"odd.npy": raw})
    with IH5Record(record) as rec:
        assert rec["odd.npy"].attrs["codec"] == "raw"
        assert as_dataset(rec["odd.npy"]).dtype == np.dtype("u1")
    assert unpacked(record, tmp_path / "back") == {"odd.npy": ("file", raw)}


def test_pack_directory_stores_npy_bytes_without_the_suffix_as_raw(tmp_path: Path) -> None:
    record = pack(tmp_path, {"array.bin": npy_bytes(np.arange(3))})
    with IH5Record(record) as rec:
        assert rec["array.bin"].attrs["codec"] == "raw"


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("notes.txt", "text/plain"),
        ("table.csv", "text/csv"),
        ("page.html", "text/html"),
        ("photo.png", "image/png"),
        ("blob.unknownsuffix", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_pack_directory_sets_file_attributes(tmp_path: Path, name: str, media_type: str) -> None:
    data = f"content of {name}\n".encode()
    record = pack(tmp_path, {f"d/{name}": data})
    source = (tmp_path / "src" / "d" / name).stat()
    with IH5Record(record) as rec:
        attrs = dict(rec[f"d/{name}"].attrs)
    assert attrs == {
        "size": len(data),
        "hashsum": "sha256:" + hashlib.sha256(data).hexdigest(),
        "media_type": media_type,
        "codec": "raw",
        "mode": stat.S_IMODE(source.st_mode),
        "mtime_ns": source.st_mtime_ns,
    }


def test_pack_directory_keeps_the_source_state_in_the_manifest(tmp_path: Path) -> None:
    record = pack(tmp_path, TREE)
    with IH5MFRecord(record) as rec:
        state = rec.manifest_exts["ih5_pack"]
    entries = state["entries"]
    assert list(entries) == sorted(snapshot(tmp_path / "src"))
    for path, content in TREE.items():
        if content is None:
            assert entries[path]["kind"] == "dir"
        else:
            assert entries[path]["kind"] == "file"
            assert entries[path]["size"] == len(content)
            assert entries[path]["hashsum"] == "sha256:" + hashlib.sha256(content).hexdigest()
    assert entries["a"] == {"kind": "dir", "size": 0, "mtime_ns": 0}


def test_pack_directory_round_trips_the_tree(tmp_path: Path) -> None:
    record = pack(tmp_path, TREE)
    assert unpacked(record, tmp_path / "back") == snapshot(tmp_path / "src")
