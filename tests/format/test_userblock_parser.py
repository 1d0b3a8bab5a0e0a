"""The user-block parser: damaged input is refused with one error type, valid input round-trips."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ih5.errors import NotAnIH5ContainerError, UserBlockTooLargeError
from ih5.format import (
    HDF5_SIGNATURE,
    IH5UserBlock,
    encode_user_block,
    read_user_block,
    read_user_block_from,
    read_user_block_with_size,
)

UB = IH5UserBlock(
    record_uuid=UUID("310ef790-e578-11f1-9804-02fc00000001"),
    patch_index=1,
    patch_uuid=UUID("31102c46-e578-11f1-9804-02fc00000001"),
    prev_patch=UUID("310ef6dc-e578-11f1-9804-02fc00000001"),
    hdf5_hashsum="sha256:" + "0" * 64,
    ub_exts={"ext": {"k": [1, 2.5, None, True, "é"]}},
)
PAYLOAD = HDF5_SIGNATURE + b"\0" * 64
VALID = encode_user_block(UB) + PAYLOAD
JSON = UB.to_text().encode("ascii")


def _container(text: bytes, block_size: int = 1024) -> bytes:
    """A user block holding ``text`` (padded with zeros) followed by an HDF5 signature."""
    return text.ljust(block_size, b"\0") + PAYLOAD


def _with_fields(**changes: object) -> bytes:
    doc = {**json.loads(JSON), **changes}
    return _container(b"ih5_v01\n1024\n" + json.dumps(doc).encode() + b"\0")


DAMAGED = {
    "plain HDF5": (HDF5_SIGNATURE + b"\0" * 2048, "plain HDF5 file"),
    "empty": (b"", "empty"),
    "garbage": (b"hello world\n" * 200, "magic line"),
    "truncated in magic": (b"ih5_v0", "ends inside the magic line"),
    "other version": (_container(b"ih5_v02\n1024\n{}\0"), "unsupported format version"),
    "no size": (_container(b"ih5_v01\n{}\0"), "decimal user-block size"),
    "non-numeric size": (_container(b"ih5_v01\n1k\n{}\0"), "decimal user-block size"),
    "size without newline": (_container(b"ih5_v01\n1024" + JSON + b"\0"), "decimal"),
    "huge size digits": (_container(b"ih5_v01\n123456789\n{}\0"), "decimal"),
    "size not power of two": (_container(b"ih5_v01\n1000\n" + JSON + b"\0"), "power of two"),
    "size too small": (_container(b"ih5_v01\n256\n" + JSON + b"\0"), "power of two"),
    "size too large": (_container(b"ih5_v01\n2097152\n" + JSON + b"\0"), "power of two"),
    "size larger than file": (_container(b"ih5_v01\n4096\n" + JSON + b"\0"), "ends before"),
    "truncated in block": (VALID[:700], "ends before"),
    "truncated after block": (VALID[:1024], "ends before"),
    "truncated signature": (VALID[:1028], "ends before"),
    "superblock elsewhere": (
        encode_user_block(UB, 512) + b"\0" * 512 + PAYLOAD,
        "no HDF5 superblock at offset 512",
    ),
    "no NUL": (b"ih5_v01\n1024\n" + JSON.ljust(1011, b" ") + PAYLOAD, "NUL"),
    "invalid JSON": (_container(b"ih5_v01\n1024\n{not json}\0"), "not valid UTF-8 JSON"),
    "empty JSON": (_container(b"ih5_v01\n1024\n\0"), "not valid UTF-8 JSON"),
    "invalid UTF-8": (_container(b'ih5_v01\n1024\n{"a": "\xff"}\0'), "UTF-8"),
    "deep nesting": (_container(b"ih5_v01\n8192\n" + b"[" * 8000 + b"\0", 8192), "JSON"),
    "JSON array": (_container(b"ih5_v01\n1024\n[1, 2]\0"), "not an object"),
    "no fields": (_container(b"ih5_v01\n1024\n{}\0"), "record_uuid"),
    "negative index": (_with_fields(patch_index=-1), "patch_index"),
    "float index": (_with_fields(patch_index=1.0), "patch_index"),
    "bad uuid": (_with_fields(patch_uuid="xyz"), "patch_uuid"),
    "bad hashsum": (_with_fields(hdf5_hashsum="sha256:00"), "hdf5_hashsum"),
    "ub_exts not object": (_with_fields(ub_exts=[1]), "ub_exts"),
}


@pytest.mark.parametrize(("data", "problem"), DAMAGED.values(), ids=DAMAGED.keys())
def test_read_user_block_refuses_damaged_file(data: bytes, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.ih5"
    path.write_bytes(data)
    with pytest.raises(NotAnIH5ContainerError, match="not an IH5 container") as info:
        read_user_block(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)
    assert info.value.path == str(path)


@pytest.mark.parametrize("block_size", [512, 2048, 4096, 1 << 20])
def test_read_user_block_accepts_larger_claimed_block_size(block_size: int) -> None:
    data = encode_user_block(UB, block_size) + PAYLOAD
    assert read_user_block_with_size(io.BytesIO(data)) == (UB, block_size)


def test_read_user_block_ignores_bytes_after_nul() -> None:
    data = _container(b"ih5_v01\n1024\n" + JSON + b"\0\xff\xfe\x80 not utf-8")
    assert read_user_block_from(io.BytesIO(data), "x.ih5") == UB


def test_read_user_block_ignores_unknown_top_level_keys() -> None:
    assert read_user_block_from(io.BytesIO(_with_fields(future_key={"a": 1})), "x.ih5") == UB


def test_read_user_block_defaults_missing_optional_fields() -> None:
    doc = {key: json.loads(JSON)[key] for key in ("record_uuid", "patch_index", "patch_uuid")}
    data = _container(b"ih5_v01\n1024\n" + json.dumps(doc).encode() + b"\0")
    ub = read_user_block_from(io.BytesIO(data), "x.ih5")
    assert (ub.prev_patch, ub.hdf5_hashsum, ub.ub_exts) == (None, None, {})


def test_read_user_block_survives_nesting_near_recursion_limit() -> None:
    # Parsing and validating recurse at different stack depths: probe the band between.
    for depth in range(800, 1100):
        exts = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
        doc = JSON[: JSON.index(b'"ub_exts"')] + b'"ub_exts": ' + exts + b"}"
        data = _container(b"ih5_v01\n4096\n" + doc + b"\0", 4096)
        with contextlib.suppress(NotAnIH5ContainerError):
            read_user_block_from(io.BytesIO(data), "deep.ih5")


class _TrickleStream:
    """A stream that hands out one byte per read, like a slow network body."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, size: int, /) -> bytes:
        return self._inner.read(min(size, 1))


def test_read_user_block_from_handles_short_reads() -> None:
    assert read_user_block_with_size(_TrickleStream(VALID), "remote") == (UB, 1024)


def test_read_user_block_from_names_stream_in_error() -> None:
    with pytest.raises(NotAnIH5ContainerError, match=r"s3://bucket/rec\.ih5"):
        read_user_block_from(io.BytesIO(b"junk"), "s3://bucket/rec.ih5")


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
_HASHSUMS = st.one_of(
    st.none(),
    st.binary(min_size=32, max_size=32).map(lambda digest: f"sha256:{digest.hex()}"),
    st.binary(min_size=64, max_size=64).map(lambda digest: f"sha512:{digest.hex()}"),
)
_BLOCKS = st.builds(
    IH5UserBlock,
    record_uuid=st.uuids(),
    patch_index=st.integers(0, 2**40),
    patch_uuid=st.uuids(),
    prev_patch=st.none() | st.uuids(),
    hdf5_hashsum=_HASHSUMS,
    ub_exts=st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=3),
)


@given(ub=_BLOCKS, block_size=st.sampled_from([1024, 4096]))
def test_encode_user_block_round_trips_random_blocks(ub: IH5UserBlock, block_size: int) -> None:
    try:
        data = encode_user_block(ub, block_size)
    except UserBlockTooLargeError:
        assume(False)
        raise
    parsed, size = read_user_block_with_size(io.BytesIO(data + PAYLOAD), "x.ih5")
    assert (parsed, size) == (ub, block_size)
    assert parsed.to_text() == ub.to_text()


def _parse_or_refuse(data: bytes) -> None:
    with contextlib.suppress(NotAnIH5ContainerError):
        read_user_block_from(io.BytesIO(data), "fuzz.ih5")


@given(
    st.binary(max_size=1100)
    | st.binary(max_size=1100).map(lambda tail: b"ih5_v01\n1024\n" + tail)
    | st.binary(max_size=600).map(lambda tail: _container(b"ih5_v01\n512\n" + tail, 512)[:520])
)
def test_read_user_block_from_random_bytes_raises_only_not_ih5(data: bytes) -> None:
    _parse_or_refuse(data)


@given(
    edits=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, len(VALID)),
)
def test_read_user_block_from_mutated_block_raises_only_not_ih5(
    edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(VALID)
    for position, value in edits:
        data[position] = value
    _parse_or_refuse(bytes(data[:cut]))
