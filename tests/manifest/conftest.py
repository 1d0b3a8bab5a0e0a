"""Fixtures of the manifest tests: writable copies of the metador-core 0.1.1 files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(os.environ.get("IH5_FIXTURES", "/work/shared/fixtures")) / "metador-0.1.1"


@pytest.fixture
def metador(tmp_path: Path) -> Path:
    """A directory holding copies of every metador-core fixture file (originals stay untouched)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"metador-core fixtures not found at {FIXTURES}")
    target = tmp_path / "metador"
    target.mkdir()
    for source in FIXTURES.iterdir():
        if source.suffix in (".ih5", ".json"):
            shutil.copyfile(source, target / source.name)
    return target
