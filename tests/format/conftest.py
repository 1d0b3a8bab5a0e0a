"""Shared fixtures for the format floor: copies of metador-core files and fresh containers."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from ih5.format import IH5UserBlock, write_user_block

FIXTURES = Path(os.environ.get("IH5_FIXTURES", "/work/shared/fixtures")) / "metador-0.1.1"


@pytest.fixture(scope="session")
def userblocks() -> dict[str, str]:
    """The user-block texts metador-core 0.1.1 wrote, by file name."""
    if not FIXTURES.is_dir():
        pytest.skip(f"metador-core fixtures not found at {FIXTURES}")
    texts: dict[str, str] = json.loads((FIXTURES / "userblocks.json").read_text("utf-8"))
    return texts


@pytest.fixture
def fixture_copy(tmp_path: Path, userblocks: dict[str, str]) -> Callable[..., Path]:
    """Copy fixture files into a temp directory (never touch the originals); return the copy."""

    def copy(*names: str) -> Path:
        for name in names:
            shutil.copyfile(FIXTURES / name, tmp_path / name)
        return tmp_path / names[0]

    return copy


@pytest.fixture
def make_container(tmp_path: Path) -> Callable[..., Path]:
    """Create a small HDF5 file with a user block, optionally holding ``ub``."""

    def make(
        name: str = "rec.ih5",
        ub: IH5UserBlock | None = None,
        *,
        userblock_size: int = 1024,
        data: object = (1, 2, 3),
    ) -> Path:
        path = tmp_path / name
        with h5py.File(path, "w", userblock_size=userblock_size) as file:
            file["data"] = np.asarray(data)
        if ub is not None:
            write_user_block(path, ub)
        return path

    return make
