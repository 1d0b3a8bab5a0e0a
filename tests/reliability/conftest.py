"""Options and reporting of the reliability suites: ``--long`` and the closing summary.

The CI-sized run samples injection points and runs short stress tests; the
full sweep needs the option, which pytest knows only when this directory is
named on the command line::

    .venv/bin/python -m pytest tests/reliability --long
"""

from __future__ import annotations

import time

import pytest

from .stats import REPORT

_started = time.monotonic()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="reliability suites: fault every injection point, run more trials and processes",
    )


def is_long(config: pytest.Config) -> bool:
    # The option exists only when pytest loaded this conftest at startup (its directory
    # was named on the command line); a whole-suite run gets the CI-sized default.
    return bool(config.getoption("--long", default=False))


def pytest_configure(config: pytest.Config) -> None:
    REPORT.long = is_long(config)


@pytest.fixture(scope="session")
def long_run(pytestconfig: pytest.Config) -> bool:
    """True under ``--long``: the full sweep instead of the CI-sized sample."""
    return is_long(pytestconfig)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = list(REPORT.lines())
    if not lines:
        return
    terminalreporter.section("ih5 reliability summary")
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"session wall time: {time.monotonic() - _started:.1f} s")
