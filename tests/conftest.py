"""One switch for the long versions of every suite: ``--long`` (or ``IH5_LONG=1``)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE_DIR = tempfile.mkdtemp(prefix="ih5-test-cache-")
# Tests never touch the user's own cache directory (~/.cache/ih5).
os.environ.setdefault("IH5_CACHE_DIR", _CACHE_DIR)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the long versions: slow stress tests, bigger property runs, every fault point",
    )


def pytest_configure(config: pytest.Config) -> None:
    # The floors' suites read the environment, so that a single test file run by hand
    # honours IH5_LONG=1 too.
    if config.getoption("--long"):
        os.environ["IH5_LONG"] = "1"


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)
