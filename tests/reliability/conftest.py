"""Options and reporting of the reliability suites: ``--long`` and its closing summary.

The CI-sized run samples injection points and runs short stress tests; the
full sweep runs with ``--long`` (registered in tests/conftest.py)::

    .venv/bin/python -m pytest tests/reliability --long
"""

from __future__ import annotations

import os
import time

import pytest

from .stats import REPORT

_started = time.monotonic()


def is_long(config: pytest.Config) -> bool:
    """True for ``--long`` or ``IH5_LONG=1`` (the option is registered in tests/conftest.py)."""
    return bool(config.getoption("--long")) or os.environ.get("IH5_LONG") == "1"


def pytest_configure(config: pytest.Config) -> None:
    REPORT.long = is_long(config)


@pytest.fixture(scope="session")
def long_run(pytestconfig: pytest.Config) -> bool:
    """True under ``--long``: the full sweep instead of the CI-sized sample."""
    return is_long(pytestconfig)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """The figures of the run, with each column explained once; only under ``--long``."""
    if not is_long(config):
        return
    lines = list(REPORT.lines())
    if not lines:
        return
    terminalreporter.section("ih5 reliability summary")
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"session wall time: {time.monotonic() - _started:.1f} s")


@pytest.fixture(autouse=True)
def no_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-user cache off: fault sweeps count file operations, and a cache hit in one
    trial would skip the operations a miss in the counting run did."""
    monkeypatch.setenv("IH5_CACHE_DIR", "")
