"""The ih5mf_v01 extension as chains see it: stubs come first, patches do not inherit it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ih5.errors import ChainError
from ih5.format import ContainerRef, IH5UserBlock, validate_chain
from ih5.format._extensions import MANIFEST_EXT, inheritable_exts, is_stub_container

HASH = "sha256:" + "0" * 64


def _ext(is_stub: bool) -> dict[str, object]:
    return {"is_stub_container": is_stub, "manifest_uuid": "x", "manifest_hashsum": HASH}


@pytest.mark.parametrize(
    ("exts", "expected"),
    [
        ({}, False),
        ({MANIFEST_EXT: _ext(False)}, False),
        ({MANIFEST_EXT: _ext(True)}, True),
        ({MANIFEST_EXT: "garbage"}, False),
    ],
)
def test_is_stub_container_reads_the_manifest_extension(
    exts: dict[str, object], expected: bool
) -> None:
    assert is_stub_container(exts) is expected


def test_inheritable_exts_drops_only_the_per_container_manifest_section() -> None:
    exts = {MANIFEST_EXT: _ext(False), "other": {"k": 1}}
    assert inheritable_exts(exts) == {"other": {"k": 1}}


def test_user_block_create_does_not_inherit_the_manifest_section() -> None:
    base = IH5UserBlock.create().model_copy(
        update={"ub_exts": {MANIFEST_EXT: _ext(False), "other": 1}}
    )
    assert IH5UserBlock.create(base).ub_exts == {"other": 1}


def _committed(prev: IH5UserBlock | None, exts: dict[str, object]) -> IH5UserBlock:
    return IH5UserBlock.create(prev).model_copy(update={"hdf5_hashsum": HASH, "ub_exts": exts})


def test_validate_chain_accepts_a_stub_as_first_container() -> None:
    stub = _committed(None, {MANIFEST_EXT: _ext(True)})
    patch = _committed(stub, {})
    refs = [ContainerRef(Path("s.ih5"), stub, 1024), ContainerRef(Path("s.p1.ih5"), patch, 1024)]
    assert validate_chain(refs, verify_hashsums=False) == refs


def test_validate_chain_refuses_a_stub_after_the_first_container() -> None:
    base = _committed(None, {})
    stub = _committed(base, {MANIFEST_EXT: _ext(True)})
    refs = [ContainerRef(Path("r.ih5"), base, 1024), ContainerRef(Path("r.p1.ih5"), stub, 1024)]
    with pytest.raises(ChainError, match=r"r\.p1\.ih5 is a stub"):
        validate_chain(refs, verify_hashsums=False)
