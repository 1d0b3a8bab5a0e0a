"""The CLI's one error boundary: every failure is one line on stderr and one exit code per kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ih5.cli import _exits as exits
from ih5.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_reports_an_ih5_error_in_one_line(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["info", str(tmp_path / "missing")])
    assert result.exit_code == exits.NOT_FOUND
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert result.stdout == ""


def test_cli_reports_an_os_error_in_one_line_naming_the_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    occupied = tmp_path / "occupied"
    occupied.write_text("a file where the record's directory should be")
    result = runner.invoke(cli, ["pack", str(source), str(occupied / "rec")])
    assert result.exit_code == exits.OS_ERROR
    assert result.stderr.count("\n") == 1
    assert "occupied" in result.stderr


def test_cli_debug_shows_the_traceback(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["--debug", "info", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert result.exception is not None


def test_cli_usage_error_exits_with_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["pack"])
    assert result.exit_code == 2


def test_cli_lists_every_command_in_its_help(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    for name in (
        "pack",
        "unpack",
        "pack-many",
        "info",
        "log",
        "tree",
        "cat",
        "diff",
        "verify",
        "merge",
        "manifest",
        "stub",
        "meta",
    ):
        assert name in result.stdout
