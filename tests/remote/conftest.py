"""Fixtures of the remote suites: one S3 server and one HTTP server per session, a bucket
per test, and the AWS_* environment pointing at the S3 server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.remote.race_report import REPORT, report_line
from tests.remote.servers import HTTPServer, S3Server, run_moto, run_nginx


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with run_moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HTTPServer]:
    with run_nginx(tmp_path_factory.mktemp("nginx")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The AWS_* environment of the test S3 server (and nothing of the real AWS)."""
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server


@pytest.fixture
def bucket(s3_env: S3Server) -> str:
    """A fresh, empty bucket: its s3:// URL."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_env.create_bucket(name)
    return f"s3://{name}"


@pytest.fixture
def http_docs(http_server: HTTPServer, tmp_path: Path) -> tuple[Path, str]:
    """A fresh directory served over HTTP: (local directory, its URL)."""
    name = uuid.uuid4().hex[:12]
    directory = http_server.docs / name
    directory.mkdir()
    return directory, f"{http_server.url}/{name}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the race suite's trials and outcomes when it ran."""
    if REPORT.trials:
        terminalreporter.write_line(report_line())
