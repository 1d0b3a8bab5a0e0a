"""One switch for the long versions of every suite: ``--long`` (or ``IH5_LONG=1``)."""

from __future__ import annotations

import os

import pytest


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
