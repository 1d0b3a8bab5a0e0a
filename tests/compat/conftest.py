"""Fixtures of the drop-in tests: record paths as metador-core's own suite names them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def tmp_ds_path(tmp_path: Path) -> Path:
    """``DIR/NAME`` of a record that does not exist yet."""
    return tmp_path / "record"


@pytest.fixture
def tmp_ds_path_factory(tmp_path: Path) -> Callable[[], Path]:
    """Fresh ``DIR/NAME`` paths, one per call."""
    count = iter(range(1_000_000))
    return lambda: tmp_path / f"record-{next(count)}"
