"""Hashsums as qualified strings: bytes, files (after a skipped prefix), streams, parsing."""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ih5 import HashsumFormatError, hashsum_bytes, hashsum_file
from ih5.fs import HASH_ALGORITHMS, HashingReader, HashingWriter, hashsum_stream, parse_hashsum

HELLO = b"hello world!"
HELLO_SHA256 = "sha256:7509e5bda0c762d2bac7f90d758b5b2263fa01ccbc542ab5e3df163be08e6ca9"
HELLO_SHA512 = "sha512:" + hashlib.sha512(HELLO).hexdigest()


def test_hashsum_bytes_matches_the_known_vector() -> None:
    assert hashsum_bytes(HELLO) == HELLO_SHA256


def test_hashsum_bytes_supports_sha512() -> None:
    assert hashsum_bytes(HELLO, "sha512") == HELLO_SHA512


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "SHA256", "blake2b", ""])
def test_hashsum_bytes_refuses_unknown_algorithms(algorithm: str) -> None:
    with pytest.raises(HashsumFormatError, match="unknown hash algorithm"):
        hashsum_bytes(HELLO, algorithm)


def test_hashsum_file_matches_hashsum_bytes(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(HELLO)
    assert hashsum_file(path) == HELLO_SHA256
    assert hashsum_file(path, "sha512") == HELLO_SHA512


def test_hashsum_file_skips_a_prefix(tmp_path: Path) -> None:
    path = tmp_path / "container.ih5"
    path.write_bytes(b"\0" * 512 + HELLO)
    assert hashsum_file(path, skip=512) == HELLO_SHA256


def test_hashsum_file_reports_progress_in_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 10_000)  # several read chunks
    seen: list[int] = []
    hashsum_file(path, skip=100, progress=seen.append)
    assert sum(seen) == 2_560_000 - 100
    assert len(seen) > 1


def test_hashsum_file_refuses_unknown_algorithms_before_reading(tmp_path: Path) -> None:
    with pytest.raises(HashsumFormatError):
        hashsum_file(tmp_path / "missing.bin", "md5")


@given(data=st.binary(max_size=4096), skip=st.integers(min_value=0, max_value=5000))
def test_hashsum_file_equals_hashlib_over_the_bytes_after_skip(data: bytes, skip: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.bin"
        path.write_bytes(data)
        expected = "sha256:" + hashlib.sha256(data[skip:]).hexdigest()
        assert hashsum_file(path, skip=skip) == expected


def test_hashsum_stream_hashes_from_the_current_position() -> None:
    stream = io.BytesIO(b"user block|" + HELLO)
    stream.seek(len(b"user block|"))
    assert hashsum_stream(stream) == HELLO_SHA256


@pytest.mark.parametrize("value", [HELLO_SHA256, HELLO_SHA512])
def test_parse_hashsum_splits_algorithm_and_digest(value: str) -> None:
    algorithm, digest = parse_hashsum(value)
    assert f"{algorithm}:{digest}" == value
    assert len(digest) == HASH_ALGORITHMS[algorithm]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sha256",
        "sha256:",
        HELLO_SHA256[:-1],
        HELLO_SHA256 + "0",
        HELLO_SHA256.upper(),
        HELLO_SHA256.replace("sha256", "sha512"),
        "md5:" + hashlib.md5(HELLO).hexdigest(),
        HELLO_SHA256.replace("7", "g"),
        " " + HELLO_SHA256,
        HELLO_SHA256 + " ",
        HELLO_SHA256 + "\n",
        HELLO_SHA256.replace(":", "-"),
    ],
)
def test_parse_hashsum_refuses_malformed_strings(value: str) -> None:
    with pytest.raises(HashsumFormatError):
        parse_hashsum(value)


@pytest.mark.parametrize("value", [None, 42, HELLO_SHA256.encode()])
def test_parse_hashsum_refuses_non_strings(value: object) -> None:
    with pytest.raises(HashsumFormatError):
        parse_hashsum(value)  # type: ignore[arg-type]


# --- streams hashed on their way -------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "expected"), [("sha256", HELLO_SHA256), ("sha512", HELLO_SHA512)]
)
def test_hashing_writer_passes_every_byte_on_and_hashes_them(algorithm: str, expected: str) -> None:
    out = io.BytesIO()
    writer = HashingWriter(out, algorithm)
    assert writer.write(HELLO[:5]) == 5
    assert writer.write(memoryview(bytearray(HELLO[5:]))) == len(HELLO) - 5
    assert (out.getvalue(), writer.size, writer.hashsum()) == (HELLO, len(HELLO), expected)


def test_hashing_reader_hashes_only_up_to_its_limit() -> None:
    reader = HashingReader(io.BytesIO(HELLO + b" appended later"), limit=len(HELLO))
    assert reader.read(5) == HELLO[:5]
    assert reader.hashsum() == HELLO_SHA256
    assert reader.count == len(HELLO)
