"""The user-block parser on bad bytes: NotAnIH5ContainerError or a block that round-trips.

A "correct read" here is a parsed block that encodes and parses back to itself: a
damaged block that still parses is another valid block (no hashsum covers the user
block, FORMAT.md section 2), never a half-read one. The bytes come from the
metador-core fixtures: flipped byte by byte, cut at every length, and mutated as JSON.
"""

from __future__ import annotations

import io
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ih5
from ih5.format import (
    HDF5_SIGNATURE,
    MAX_USER_BLOCK_SIZE,
    encode_user_block,
    read_user_block,
    read_user_block_from,
    read_user_block_with_size,
)

from .fuzzing import FIXTURES, Tally, flipped, mutated_json, report, typed_or_result, wants_long

CONTAINERS = ["plain.ih5", "plain.p1.ih5", "mfrec.ih5", "mfrec.p1.ih5", "stub.ih5", "merged.ih5"]


@pytest.fixture(scope="module")
def heads() -> dict[str, bytes]:
    """Each fixture container's user block and superblock signature (its first 1032 bytes)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"metador-core fixtures not found at {FIXTURES}")
    return {
        name: (FIXTURES / name).read_bytes()[: 1024 + len(HDF5_SIGNATURE)] for name in CONTAINERS
    }


def parse(data: bytes) -> tuple[bool, Any]:
    """(True, error) for a refused block, else (False, (block, size)); other errors raise."""
    result = typed_or_result(lambda: read_user_block_with_size(io.BytesIO(data), "fuzz.ih5"))
    if result[0]:
        assert isinstance(result[1], ih5.NotAnIH5ContainerError), result[1]
    return result


def round_trips(block: ih5.IH5UserBlock, size: int) -> bool:
    """The block encodes and parses back to itself (in a larger block if it grew)."""
    try:
        data = encode_user_block(block, size)
    except ih5.UserBlockTooLargeError:
        # ASCII escaping can lengthen a text that held raw UTF-8.
        size = MAX_USER_BLOCK_SIZE
        data = encode_user_block(block, size)
    again, again_size = read_user_block_with_size(io.BytesIO(data + HDF5_SIGNATURE), "again")
    # Compared as text: NaN, which Python's json reads, is not == NaN.
    return (again.to_text(), again_size) == (block.to_text(), size)


def count(tally: Tally, data: bytes) -> None:
    typed, result = parse(data)
    if typed:
        tally.count("typed")
    elif round_trips(*result):
        tally.count("correct")
    else:
        tally.count("failure", f"{data[:200]!r} parsed to {result} but does not round-trip")


def test_read_user_block_from_flipped_fixture_bytes_is_typed_or_valid(
    heads: dict[str, bytes], request: pytest.FixtureRequest, capsys: Any
) -> None:
    """Every byte of every fixture's block (and the superblock signature), flipped."""
    long = wants_long(request.config)
    masks = (0x01, 0x02, 0x20, 0x40, 0x80, 0xFF) if long else (0x01, 0xFF)
    tally = Tally("read_user_block byte flips")
    for head in heads.values():
        text_end = head.index(b"\0")
        for data in flipped(head[: text_end + 1], masks):
            count(tally, data + head[text_end + 1 :])
        for data in flipped(head, (0xFF,), 1 if long else 61):
            count(tally, data)
    report(tally, capsys)


def test_read_user_block_from_truncated_fixtures_is_typed(
    heads: dict[str, bytes], capsys: Any
) -> None:
    tally = Tally("read_user_block truncations")
    for head in heads.values():
        for cut in range(len(head)):
            typed, result = parse(head[:cut])
            tally.count("typed" if typed else "failure", f"cut at {cut} parsed to {result}")
    report(tally, capsys)


def frame(text: bytes) -> bytes:
    """``text`` as a user block (the smallest block size that holds it) + HDF5 signature."""
    size = 1024
    while size < len(text) + 64 and size < MAX_USER_BLOCK_SIZE:
        size *= 2
    head = f"ih5_v01\n{size}\n".encode() + text + b"\0"
    return head[:size].ljust(size, b"\0") + HDF5_SIGNATURE


def test_read_user_block_from_mutated_json_is_typed_or_valid(
    request: pytest.FixtureRequest, capsys: Any
) -> None:
    """Wrong types, missing keys, huge numbers, deep nesting, bytes that are not UTF-8."""
    if not FIXTURES.is_dir():
        pytest.skip(f"metador-core fixtures not found at {FIXTURES}")
    texts = json.loads((FIXTURES / "userblocks.json").read_text("utf-8"))
    docs = [json.loads(text.split("\n", 2)[2].rstrip("\0")) for text in texts.values()]
    tally = Tally("read_user_block JSON mutations")

    @settings(
        max_examples=3000 if wants_long(request.config) else 300,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.sampled_from(docs).flatmap(mutated_json))
    def run(data: bytes) -> None:
        count(tally, frame(data))

    run()
    report(tally, capsys)


def test_read_user_block_from_random_text_in_a_valid_frame_is_typed_or_valid(
    request: pytest.FixtureRequest, capsys: Any
) -> None:
    """Random bytes where the JSON goes: the parser always gets to the text."""
    tally = Tally("read_user_block random text")

    @settings(max_examples=3000 if wants_long(request.config) else 300, deadline=None)
    @given(text=st.binary(max_size=1500) | st.text(max_size=300).map(str.encode))
    def run(text: bytes) -> None:
        count(tally, frame(text))

    run()
    report(tally, capsys)


def test_read_user_block_reads_the_same_from_a_file_and_a_stream(
    heads: dict[str, bytes], tmp_path: Path
) -> None:
    """The path reader and the stream reader agree, on intact and flipped fixtures."""
    for name, head in heads.items():
        for data in [head, *flipped(head[:400], (0x01,), 37)]:
            path = tmp_path / name
            path.write_bytes(data)
            from_file = typed_or_result(partial(read_user_block, path))
            from_stream = typed_or_result(partial(read_user_block_from, io.BytesIO(data), "s"))
            assert from_file[0] == from_stream[0]
            if not from_file[0]:
                assert from_file[1] == from_stream[1]
