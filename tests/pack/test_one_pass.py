"""Packing in one pass: bytes hashed beside their write, one create per small file, write-back
started while packing; what is packed comes back byte for byte and carries its true hashsum."""

from __future__ import annotations

import gc
import hashlib
import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest

import ih5.pack
import ih5.pack._packer
from ih5.fs import HashingReader, hashsum_bytes
from ih5.pack import pack_directory
from ih5.pack._codecs import RAW_CHUNK, raw_chunk_length
from tests.helpers.trees import snapshot

from .helpers import make_tree, npy_bytes, unpacked

SIZES = (0, 1, RAW_CHUNK - 1, RAW_CHUNK, RAW_CHUNK + 1, 3 * RAW_CHUNK + 17)


def test_background_hashing_with_one_reused_buffer_gives_the_bytes_hashsum() -> None:
    data = os.urandom(3 * RAW_CHUNK + 123)
    buffer = bytearray(RAW_CHUNK)
    with ThreadPoolExecutor(1) as pool:
        reader = HashingReader(io.BytesIO(data), background=pool)
        while reader.readinto(buffer):
            pass
        assert reader.hashsum() == hashsum_bytes(data)


def test_background_hashing_of_reads_gives_the_bytes_hashsum() -> None:
    data = os.urandom(2 * RAW_CHUNK + 5)
    with ThreadPoolExecutor(1) as pool:
        reader = HashingReader(io.BytesIO(data), limit=RAW_CHUNK + 1, background=pool)
        assert reader.read() == data[: RAW_CHUNK + 1]
        assert reader.hashsum() == hashsum_bytes(data[: RAW_CHUNK + 1])


@pytest.mark.parametrize("size", SIZES)
def test_raw_files_around_the_chunk_length_keep_bytes_chunks_and_hashsum(
    tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    source = make_tree(tmp_path / "src", {"d/file.bin": data})
    pack_directory(source, tmp_path / "out" / "rec")
    with h5py.File(tmp_path / "out" / "rec.ih5", "r") as file:
        dataset = file["d/file.bin"]
        assert dataset.chunks == ((raw_chunk_length(size),) if size else None)
        assert dataset.attrs["hashsum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert dataset.attrs["size"] == size
        assert dataset.attrs["codec"] == "raw"
    assert unpacked(tmp_path / "out" / "rec", tmp_path / "back") == snapshot(source)


def test_packing_with_a_write_back_after_every_file_keeps_every_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ih5.pack._packer, "WRITE_BACK", 1)
    spec: dict[str, bytes | None] = {
        f"p{i % 3}/f{i:02d}.bin": os.urandom(50_000) for i in range(24)
    }
    source = make_tree(tmp_path / "src", spec)
    pack_directory(source, tmp_path / "out" / "rec")
    (tmp_path / "src" / "p0" / "f00.bin").write_bytes(os.urandom(70_000))
    result = pack_directory(source, tmp_path / "out" / "rec")
    assert result.changed == ("p0/f00.bin",)
    assert unpacked(tmp_path / "out" / "rec", tmp_path / "back") == snapshot(source)


@pytest.mark.parametrize("core_free", [True, False])
def test_files_hashed_in_a_second_thread_or_not_carry_their_true_hashsums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, core_free: bool
) -> None:
    monkeypatch.setattr(ih5.pack._packer, "_core_free", lambda: core_free)
    spec: dict[str, bytes | None] = {
        f"d/f{i}.bin": os.urandom(size) for i, size in enumerate((*SIZES, 5_000, 70_000))
    }
    spec["d/array.npy"] = npy_bytes(np.arange(300_000, dtype="<i4").reshape(600, 500))
    source = make_tree(tmp_path / "src", spec)
    pack_directory(source, tmp_path / "out" / "rec")
    with h5py.File(tmp_path / "out" / "rec.ih5", "r") as file:
        for relative, data in spec.items():
            assert data is not None
            expected = "sha256:" + hashlib.sha256(data).hexdigest()
            assert file[relative].attrs["hashsum"] == expected
    assert unpacked(tmp_path / "out" / "rec", tmp_path / "back") == snapshot(source)


@pytest.mark.parametrize("enabled", [True, False])
def test_a_pack_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path, enabled: bool) -> None:
    source = make_tree(tmp_path / "src", {"a.bin": b"a", "b/c.bin": b"c"})
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        pack_directory(source, tmp_path / "out" / "rec")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_importing_the_pack_floor_loads_only_the_modules_a_name_needs() -> None:
    probe = (
        "import sys; from ih5.pack import pack_directory; "
        "print(sorted(m for m in sys.modules if m.startswith('ih5.pack.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = done.stdout.strip()
    for module in ("audit", "many", "tasks", "unpacker"):
        assert f"'ih5.pack.{module}'" not in loaded


def test_every_public_name_of_the_pack_floor_resolves_on_first_use() -> None:
    for name in ih5.pack.__all__:
        assert getattr(ih5.pack, name) is not None, name
    assert set(ih5.pack.__all__) <= set(dir(ih5.pack))


@pytest.mark.parametrize("size", [RAW_CHUNK + 2, 3 * RAW_CHUNK + 17, 5 * RAW_CHUNK - 1])
def test_a_raw_file_just_over_a_chunk_takes_its_own_size_on_disk(tmp_path: Path, size: int) -> None:
    source = make_tree(tmp_path / "src", {"file.bin": os.urandom(size)})
    pack_directory(source, tmp_path / "out" / "rec")
    with h5py.File(tmp_path / "out" / "rec.ih5", "r") as file:
        dataset = file["file.bin"]
        assert dataset.chunks is not None and dataset.chunks[0] <= RAW_CHUNK
        assert size <= dataset.id.get_storage_size() < size + 64
