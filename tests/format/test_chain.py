"""Chain rules of FORMAT.md section 3, each with its error type, and payload integrity."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import pytest

from ih5.errors import (
    ChainError,
    IntegrityError,
    MixedRecordsError,
    NotAnIH5ContainerError,
    RecordNotFoundError,
)
from ih5.format import (
    ContainerRef,
    IH5UserBlock,
    hashsum_container,
    load_refs,
    split_uncommitted,
    validate_chain,
    write_user_block,
)

HASH = "sha256:" + "0" * 64


def _chain(length: int, uncommitted_last: bool = False) -> list[ContainerRef]:
    """A structurally valid chain of refs (fake paths: hashsums are not verified)."""
    refs: list[ContainerRef] = []
    prev: IH5UserBlock | None = None
    for index in range(length):
        ub = IH5UserBlock.create(prev).model_copy(update={"hdf5_hashsum": HASH})
        refs.append(ContainerRef(Path(f"rec.p{index}.ih5"), ub, 1024))
        prev = ub
    if uncommitted_last:
        refs[-1] = _replace(refs[-1], hdf5_hashsum=None)
    return refs


def _replace(ref: ContainerRef, **fields: object) -> ContainerRef:
    return ContainerRef(ref.path, ref.user_block.model_copy(update=fields), ref.block_size)


def _validate(refs: list[ContainerRef]) -> list[ContainerRef]:
    return validate_chain(refs, verify_hashsums=False)


FIXTURE_CHAINS = {
    "plain": ["plain.ih5", "plain.p1.ih5"],
    "mfrec": ["mfrec.ih5", "mfrec.p1.ih5"],
    "mfrec + patch made on stub": ["mfrec.ih5", "mfrec.p1.ih5", "stub.p2.ih5"],
    "stub + patch": ["stub.ih5", "stub.p2.ih5"],
    "merged": ["merged.ih5"],
    "merged + patch made on stub": ["merged.ih5", "stub.p2.ih5"],
}


@pytest.mark.parametrize("names", FIXTURE_CHAINS.values(), ids=FIXTURE_CHAINS.keys())
def test_validate_chain_accepts_fixture_chains(
    names: list[str], fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    fixture_copy(*names)
    chain = validate_chain(load_refs(tmp_path / name for name in reversed(names)))
    assert [ref.path.name for ref in chain] == names


@pytest.mark.parametrize("seed", range(3))
def test_validate_chain_sorts_by_patch_index(seed: int) -> None:
    refs = _chain(6)
    shuffled = random.Random(seed).sample(refs, len(refs))
    assert _validate(shuffled) == refs


def test_validate_chain_refuses_empty_list() -> None:
    with pytest.raises(RecordNotFoundError, match="no IH5 containers"):
        validate_chain([])


def test_validate_chain_refuses_missing_base() -> None:
    with pytest.raises(ChainError, match=r"rec\.p1\.ih5 .* not given"):
        _validate(_chain(3)[1:])


def test_validate_chain_refuses_second_base() -> None:
    refs = _chain(3)
    refs[2] = _replace(refs[2], prev_patch=None)
    with pytest.raises(ChainError, match=r"rec\.p2\.ih5 is a base container"):
        _validate(refs)


def test_validate_chain_refuses_mixed_records() -> None:
    refs = _chain(3)
    stranger = uuid4()
    refs[1] = _replace(refs[1], record_uuid=stranger)
    with pytest.raises(MixedRecordsError) as info:
        _validate(refs)
    message = str(info.value)
    assert "rec.p1.ih5" in message
    assert str(stranger) in message
    assert str(refs[0].user_block.record_uuid) in message
    assert info.value.path == "rec.p1.ih5"


def test_validate_chain_refuses_broken_link() -> None:
    refs = _chain(3)
    refs[2] = _replace(refs[2], prev_patch=uuid4())
    with pytest.raises(ChainError, match=r"rec\.p2\.ih5 follows .* predecessor rec\.p1\.ih5"):
        _validate(refs)


def test_validate_chain_refuses_index_gap() -> None:
    refs = _chain(3)
    refs[2] = _replace(refs[2], patch_index=3)
    with pytest.raises(ChainError, match="patch_index 2 is missing"):
        _validate(refs)


def test_validate_chain_refuses_duplicate_index() -> None:
    refs = _chain(2)
    twin = ContainerRef(Path("twin.ih5"), IH5UserBlock.create(refs[0].user_block), 1024)
    with pytest.raises(ChainError, match="both have patch_index 1"):
        _validate([*refs, twin])


def test_validate_chain_refuses_duplicate_patch_uuid() -> None:
    refs = _chain(2)
    copy = ContainerRef(Path("copy.ih5"), refs[1].user_block, 1024)
    with pytest.raises(ChainError, match="share patch_uuid"):
        _validate([*refs, copy])


def test_validate_chain_refuses_merged_next_to_its_sources(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    names = ["mfrec.ih5", "mfrec.p1.ih5", "merged.ih5"]
    fixture_copy(*names)
    with pytest.raises(ChainError):
        validate_chain(load_refs(tmp_path / name for name in names))


def test_validate_chain_refuses_uncommitted_before_newest() -> None:
    refs = _chain(3)
    refs[1] = _replace(refs[1], hdf5_hashsum=None)
    with pytest.raises(ChainError, match=r"rec\.p1\.ih5 is uncommitted"):
        _validate(refs)


@pytest.mark.parametrize("length", [1, 3])
def test_validate_chain_accepts_uncommitted_newest(length: int) -> None:
    refs = _chain(length, uncommitted_last=True)
    assert _validate(refs) == refs


def test_validate_chain_detects_flipped_payload_byte(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    fixture_copy("plain.ih5", "plain.p1.ih5")
    damaged = tmp_path / "plain.p1.ih5"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(data)
    refs = load_refs([tmp_path / "plain.ih5", damaged])
    with pytest.raises(IntegrityError) as info:
        validate_chain(refs)
    expected = refs[1].user_block.hdf5_hashsum
    assert expected is not None
    assert str(damaged) in str(info.value)
    assert expected in str(info.value)
    assert hashsum_container(damaged) in str(info.value)


def test_validate_chain_skips_hashsums_when_told(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    damaged = fixture_copy("plain.ih5")
    damaged.write_bytes(damaged.read_bytes() + b"tail")
    assert len(validate_chain(load_refs([damaged]), verify_hashsums=False)) == 1


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_validate_chain_verifies_hashsum_with_its_algorithm(
    make_container: Callable[..., Path], algorithm: str
) -> None:
    path = make_container()
    committed = hashsum_container(path, algorithm)
    write_user_block(path, IH5UserBlock.create().model_copy(update={"hdf5_hashsum": committed}))
    assert validate_chain(load_refs([path]))[0].user_block.hdf5_hashsum == committed


def test_validate_chain_reports_hashing_progress(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    names = ["plain.ih5", "plain.p1.ih5"]
    fixture_copy(*names)
    seen: list[int] = []
    validate_chain(load_refs(tmp_path / name for name in names), progress=seen.append)
    assert sum(seen) == sum((tmp_path / name).stat().st_size - 1024 for name in names)


@pytest.mark.parametrize(
    ("uncommitted_last", "committed_count"), [(False, 3), (True, 2)], ids=["all", "trailing"]
)
def test_split_uncommitted_separates_trailing_container(
    uncommitted_last: bool, committed_count: int
) -> None:
    refs = _chain(3, uncommitted_last)
    committed, pending = split_uncommitted(refs)
    assert committed == refs[:committed_count]
    assert pending == (refs[-1] if uncommitted_last else None)


def test_split_uncommitted_handles_lone_uncommitted_base() -> None:
    refs = _chain(1, uncommitted_last=True)
    assert split_uncommitted(refs) == ([], refs[0])


def test_load_refs_reads_block_and_size(make_container: Callable[..., Path]) -> None:
    ub = IH5UserBlock.create()
    path = make_container(ub=ub, userblock_size=4096)
    assert load_refs([str(path)]) == [ContainerRef(path, ub, 4096)]


def test_load_refs_propagates_not_ih5(tmp_path: Path) -> None:
    (tmp_path / "junk.ih5").write_bytes(b"junk")
    with pytest.raises(NotAnIH5ContainerError, match=r"junk\.ih5"):
        load_refs([tmp_path / "junk.ih5"])


def test_container_ref_is_hashable() -> None:
    refs = _chain(2)
    assert len({*refs, *_chain(2), refs[0]}) == 4
