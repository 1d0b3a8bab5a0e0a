"""Start-up stays light: ``ih5 --help`` and ``import ih5`` load no h5py, numpy or pydantic."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ih5

HEAVY = ("h5py", "numpy", "pydantic", "rich")

PROBE = """
import sys
from ih5.cli import cli
try:
    cli(sys.argv[1:], prog_name="ih5")
except SystemExit:
    pass
print(" ".join(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["meta", "--help"], ["pack", "--help"]])
def test_command_help_loads_no_heavy_module(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "Usage: ih5" in done.stdout
    assert done.stderr.strip().splitlines()[-1:] in ([], [""])


def test_import_ih5_loads_no_heavy_module() -> None:
    probe = f"import sys, ih5; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_every_public_name_of_ih5_resolves_on_first_use() -> None:
    for name in ih5.__all__:
        assert getattr(ih5, name) is not None, name
    assert set(ih5.__all__) <= set(dir(ih5))


def test_an_unknown_name_of_ih5_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        ih5.no_such_name  # noqa: B018
