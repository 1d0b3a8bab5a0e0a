"""``ih5 push`` of several records or a directory of records: one task per record, the summary,
exit codes, and a rerun that pushes only what is left."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ih5 import pack_many, push
from tests.remote.servers import S3Server

from .conftest import edit_plates, make_plates

pytestmark = pytest.mark.timeout(240)


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str


def ih5(*args: Any) -> Run:
    from ih5.cli import cli

    result = CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def archive(tmp_path: Path, count: int = 3) -> Path:
    root = make_plates(tmp_path / "plates", count=count, images=3)
    out = tmp_path / "archive"
    pack_many(root, out)
    edit_plates(root, seed=1)
    pack_many(root, out)
    return out


def test_pushing_a_directory_puts_each_record_below_the_url_and_a_rerun_is_up_to_date(
    tmp_path: Path, bucket: str, s3_env: S3Server
) -> None:
    """The workers of the local pool reach the server through the caller's AWS_* environment."""
    out = archive(tmp_path)
    run = ih5("push", out, f"{bucket}/plates", "--jobs", 2, "--json")
    assert run.exit_code == 0, run.stderr
    pushed = json.loads(run.stdout)
    assert [(row["url"], row["present"], row["error"]) for row in pushed] == [
        (f"{bucket}/plates/plate-{plate:03d}", 0, None) for plate in range(3)
    ]
    assert pushed[0]["copied"] == [
        "plate-000.ih5",
        "plate-000.ih5mf.json",
        "plate-000.p1.ih5",
        "plate-000.p1.ih5mf.json",
    ]
    assert "3 records: 3 pushed, 0 up to date, 0 failed" in run.stderr
    again = ih5("push", out / "plate-000", out / "plate-002", f"{bucket}/plates", "--jobs", 2)
    assert again.exit_code == 0, again.stderr
    assert f"{bucket}/plates/plate-002: up to date" in again.stderr
    assert "2 records: 0 pushed, 2 up to date, 0 failed" in again.stderr


def test_a_record_with_another_history_there_fails_alone_and_exits_1(
    tmp_path: Path, bucket: str, s3_env: S3Server
) -> None:
    out = archive(tmp_path / "one")
    other = archive(tmp_path / "two", count=1)
    push(other / "plate-000", f"{bucket}/plates/plate-000")
    run = ih5("push", out, f"{bucket}/plates", "--jobs", 2)
    assert run.exit_code == 1
    assert "3 records: 2 pushed, 0 up to date, 1 failed" in run.stderr
    assert "failed (the other records are pushed; run the same command again" in run.stderr
    failure = run.stderr.split(f"  {out / 'plate-000'} -> {bucket}/plates/plate-000: ")[1]
    assert "different histories" in failure.splitlines()[0]


def test_one_record_with_engine_options_goes_to_the_url_as_given(
    tmp_path: Path, bucket: str, s3_env: S3Server
) -> None:
    out = archive(tmp_path, count=1)
    run = ih5("push", out / "plate-000", f"{bucket}/elsewhere/rec", "--jobs", 1, "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)[0]["url"] == f"{bucket}/elsewhere/rec"


def test_two_records_of_one_name_or_an_empty_directory_are_usage_errors(
    tmp_path: Path, bucket: str, s3_env: S3Server
) -> None:
    one = archive(tmp_path / "one", count=1)
    two = archive(tmp_path / "two", count=1)
    run = ih5("push", one / "plate-000", two / "plate-000", f"{bucket}/plates")
    assert run.exit_code == 2
    assert "would both be pushed to" in run.stderr
    (tmp_path / "empty").mkdir()
    run = ih5("push", tmp_path / "empty", f"{bucket}/plates")
    assert run.exit_code == 2
    assert "is a directory without records" in run.stderr
