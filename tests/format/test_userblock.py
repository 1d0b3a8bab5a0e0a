"""The user block model, its exact bytes, writing it into a file, and payload hashsums."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from uuid import UUID, uuid4

import h5py
import numpy as np
import pydantic
import pytest

from ih5.errors import NotAnIH5ContainerError, UserBlockTooLargeError
from ih5.format import (
    HDF5_SIGNATURE,
    USER_BLOCK_SIZE,
    IH5UserBlock,
    encode_user_block,
    hashsum_container,
    read_user_block,
    read_user_block_with_size,
    write_user_block,
)
from ih5.fs import hashsum_bytes

FIXTURE_NAMES = [
    "merged.ih5",
    "mfrec.ih5",
    "mfrec.p1.ih5",
    "plain.ih5",
    "plain.p1.ih5",
    "stub.ih5",
    "stub.p2.ih5",
]
HASH_A = "sha256:" + "a" * 64


def _block(**fields: object) -> IH5UserBlock:
    base: dict[str, object] = {
        "record_uuid": UUID("3112726c-e578-11f1-9804-02fc00000001"),
        "patch_index": 0,
        "patch_uuid": UUID("311271b8-e578-11f1-9804-02fc00000001"),
    }
    return IH5UserBlock(**{**base, **fields})


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_read_user_block_matches_fixture_fields(
    name: str, fixture_copy: Callable[..., Path], userblocks: dict[str, str]
) -> None:
    expected = json.loads(userblocks[name].split("\n", 2)[2])
    ub = read_user_block(fixture_copy(name))
    assert ub.model_dump(mode="json") == expected


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_to_text_reproduces_fixture_text(
    name: str, fixture_copy: Callable[..., Path], userblocks: dict[str, str]
) -> None:
    ub = read_user_block(fixture_copy(name))
    assert f"ih5_v01\n1024\n{ub.to_text()}" == userblocks[name]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_encode_user_block_reproduces_fixture_bytes(
    name: str, fixture_copy: Callable[..., Path]
) -> None:
    path = fixture_copy(name)
    assert encode_user_block(read_user_block(path)) == path.read_bytes()[:USER_BLOCK_SIZE]


def test_encode_user_block_starts_with_magic_and_size_line() -> None:
    assert encode_user_block(_block()).startswith(b"ih5_v01\n1024\n{")


@pytest.mark.parametrize("block_size", [512, 1024, 4096])
def test_encode_user_block_ends_text_with_nul_and_zero_padding(block_size: int) -> None:
    ub = _block()
    data = encode_user_block(ub, block_size)
    text = f"ih5_v01\n{block_size}\n{ub.to_text()}".encode("ascii")
    assert len(data) == block_size
    assert data == text + b"\0" * (block_size - len(text))


def test_to_text_uses_old_key_order_and_separators() -> None:
    ub = _block(prev_patch=uuid4(), hdf5_hashsum=HASH_A, ub_exts={"x": {"b": 1, "a": [1, 2]}})
    assert ub.to_text() == (
        f'{{"record_uuid": "{ub.record_uuid}", "patch_index": 0, '
        f'"patch_uuid": "{ub.patch_uuid}", "prev_patch": "{ub.prev_patch}", '
        f'"hdf5_hashsum": "{HASH_A}", "ub_exts": {{"x": {{"b": 1, "a": [1, 2]}}}}}}'
    )


def test_to_text_escapes_non_ascii() -> None:
    assert '"ub_exts": {"k": "\\u00e9\\ud83d\\ude00"}' in _block(ub_exts={"k": "é😀"}).to_text()


def test_to_text_writes_uuids_lowercase_hyphenated() -> None:
    ub = _block(record_uuid="3112726C-E578-11F1-9804-02FC00000001")
    assert '"record_uuid": "3112726c-e578-11f1-9804-02fc00000001"' in ub.to_text()


def test_encode_user_block_refuses_oversize_naming_record() -> None:
    ub = _block(ub_exts={"big": "x" * 1000})
    with pytest.raises(UserBlockTooLargeError, match=str(ub.record_uuid)):
        encode_user_block(ub)


def test_encode_user_block_fits_exactly_full_block() -> None:
    filler = 1024 - len(encode_user_block(_block(ub_exts={"k": ""})).rstrip(b"\0")) - 1
    assert encode_user_block(_block(ub_exts={"k": "x" * filler}))[-1:] == b"\0"
    with pytest.raises(UserBlockTooLargeError):
        encode_user_block(_block(ub_exts={"k": "x" * (filler + 1)}))


@pytest.mark.parametrize("block_size", [0, 256, 1000, 3 * 512])
def test_encode_user_block_refuses_invalid_block_size(block_size: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        encode_user_block(_block(), block_size)


def test_create_makes_new_base() -> None:
    ub = IH5UserBlock.create()
    assert (ub.patch_index, ub.prev_patch, ub.hdf5_hashsum, ub.ub_exts) == (0, None, None, {})


def test_create_uses_given_record_uuid() -> None:
    record = uuid4()
    assert IH5UserBlock.create(record_uuid=record).record_uuid == record


def test_create_follows_prev() -> None:
    prev = _block(patch_index=3, hdf5_hashsum=HASH_A, ub_exts={"e": {"k": [1]}})
    ub = IH5UserBlock.create(prev)
    assert (ub.record_uuid, ub.patch_index, ub.prev_patch) == (prev.record_uuid, 4, prev.patch_uuid)
    assert ub.hdf5_hashsum is None
    assert ub.patch_uuid not in (prev.patch_uuid, prev.record_uuid)


def test_create_copies_ub_exts_deeply() -> None:
    prev = _block(ub_exts={"e": {"k": [1]}})
    IH5UserBlock.create(prev).ub_exts["e"]["k"].append(2)
    assert prev.ub_exts == {"e": {"k": [1]}}


def test_create_refuses_other_record_uuid_for_patch() -> None:
    with pytest.raises(ValueError, match="record_uuid"):
        IH5UserBlock.create(_block(), record_uuid=uuid4())


def test_user_block_is_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        _block().patch_index = 5


def test_user_block_hashes_equal_blocks_alike() -> None:
    assert hash(_block(ub_exts={"a": 1})) == hash(_block(ub_exts={"a": 1}))


@pytest.mark.parametrize(
    "fields",
    [
        {"patch_index": -1},
        {"patch_index": True},
        {"patch_index": "1"},
        {"hdf5_hashsum": "sha256:abc"},
        {"hdf5_hashsum": "md5:" + "0" * 32},
        {"ub_exts": {"k": object()}},
        {"record_uuid": "not-a-uuid"},
    ],
)
def test_user_block_refuses_invalid_fields(fields: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        _block(**fields)


def test_write_user_block_keeps_superblock_at_1024(make_container: Callable[..., Path]) -> None:
    ub = _block()
    path = make_container(ub=ub)
    data = path.read_bytes()
    assert data[:USER_BLOCK_SIZE] == encode_user_block(ub)
    assert data[USER_BLOCK_SIZE : USER_BLOCK_SIZE + 8] == HDF5_SIGNATURE


def test_write_user_block_keeps_hdf5_readable(make_container: Callable[..., Path]) -> None:
    path = make_container(ub=_block())
    with h5py.File(path, "r") as file:
        assert file.userblock_size == USER_BLOCK_SIZE
        np.testing.assert_array_equal(file["data"][()], [1, 2, 3])


def test_write_user_block_round_trips(make_container: Callable[..., Path]) -> None:
    ub = _block(hdf5_hashsum=HASH_A, ub_exts={"k": "é"})
    assert read_user_block(make_container(ub=ub)) == ub


def test_write_user_block_uses_file_block_size(make_container: Callable[..., Path]) -> None:
    path = make_container(ub=_block(), userblock_size=2048)
    assert read_user_block_with_size(path) == (_block(), 2048)


def test_write_user_block_replaces_previous_block(make_container: Callable[..., Path]) -> None:
    path = make_container(ub=_block(ub_exts={"long": "x" * 500}))
    write_user_block(path, _block())
    assert path.read_bytes()[:USER_BLOCK_SIZE] == encode_user_block(_block())


def test_write_user_block_oversize_leaves_file_identical(
    make_container: Callable[..., Path],
) -> None:
    path = make_container(ub=_block())
    before = path.read_bytes()
    with pytest.raises(UserBlockTooLargeError, match=str(path)):
        write_user_block(path, _block(ub_exts={"big": "x" * 2000}))
    assert path.read_bytes() == before


def test_write_user_block_refuses_file_without_user_block(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as file:
        file["x"] = 1
    before = path.read_bytes()
    with pytest.raises(NotAnIH5ContainerError, match="userblock_size=1024"):
        write_user_block(path, _block())
    assert path.read_bytes() == before


def test_hashsum_container_hashes_bytes_after_user_block(
    make_container: Callable[..., Path],
) -> None:
    path = make_container(ub=_block())
    assert hashsum_container(path) == hashsum_bytes(path.read_bytes()[USER_BLOCK_SIZE:])


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_hashsum_container_matches_fixture_hashsum(
    name: str, fixture_copy: Callable[..., Path]
) -> None:
    path = fixture_copy(name)
    assert hashsum_container(path) == read_user_block(path).hdf5_hashsum


def test_hashsum_container_ignores_user_block_contents(
    make_container: Callable[..., Path],
) -> None:
    path = make_container()
    before = hashsum_container(path)
    write_user_block(path, _block(hdf5_hashsum=before))
    assert hashsum_container(path) == before


def test_hashsum_container_supports_sha512_and_progress(
    make_container: Callable[..., Path],
) -> None:
    path = make_container(ub=_block())
    seen: list[int] = []
    payload = path.read_bytes()[USER_BLOCK_SIZE:]
    assert hashsum_container(path, "sha512", seen.append) == hashsum_bytes(payload, "sha512")
    assert sum(seen) == len(payload)
