"""Large reads of a remote object stream into the reader's buffer: one request, exact bytes."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ih5.store import ObjectStore, open_store


def test_a_large_read_from_s3_is_one_request_with_exactly_its_bytes(
    bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(6 << 20)
    staged = tmp_path / "blob"
    staged.write_bytes(data)
    store = open_store(f"{bucket}/p")
    assert isinstance(store, ObjectStore)
    assert store.publish(staged, "blob.bin")
    reader = store.open_binary("blob.bin")
    assert isinstance(reader, io.RawIOBase)  # what h5py calls readinto on
    before = store.stats.requests
    reader.seek(1_234_567)
    out = bytearray(4 << 20)
    assert reader.readinto(out) == len(out)
    assert out == data[1_234_567 : 1_234_567 + len(out)]
    assert store.stats.requests - before == 1
    reader.seek(len(data) - 100)
    assert reader.read(2 << 20) == data[-100:]  # clipped at the end
