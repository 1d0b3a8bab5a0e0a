"""Real servers for the remote suites: moto's S3 server and nginx, on 127.0.0.1.

Each runs as a child process on a free port and is stopped (by its own pid)
when the session ends. A missing server binary fails the suite: ``.ci/run``
installs both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up in {STARTUP_TIMEOUT} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server: its endpoint and the credentials it accepts."""

    endpoint: str
    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    region: str = "us-east-1"

    def environment(self) -> dict[str, str]:
        """The AWS_* variables a client needs to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (through boto3, which moto depends on)."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        client.create_bucket(Bucket=name)


ATOMIC_MOTO = Path(__file__).with_name("atomic_moto.py")


@contextlib.contextmanager
def run_moto(workdir: Path, environment: dict[str, str] | None = None) -> Iterator[S3Server]:
    """moto's S3 server on a free port for the ``with`` block, its writes atomic as S3's
    are (see ``atomic_moto.py``)."""
    port = free_port()
    log = workdir / f"moto-{port}.log"
    env = {**os.environ, **(environment or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ATOMIC_MOTO), "127.0.0.1", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_up(endpoint + "/moto-api/", process, log)
        yield S3Server(endpoint)
    finally:
        _stop(process)


NGINX_CONF = """
worker_processes 1;
daemon off;
{user}
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {docs};
        location / {{ }}
    }}
}}
"""


@dataclass(frozen=True)
class HTTPServer:
    """nginx serving ``docs`` at ``url`` (static files with byte ranges)."""

    url: str
    docs: Path


def nginx_binary() -> str:
    """The nginx executable; fails (never skips) when it is not installed."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(path)),
        None,
    )
    if found is None:
        raise RuntimeError(
            "nginx is not installed: the HTTP suites need it (apt-get install nginx-light; "
            ".ci/run installs it)"
        )
    return found


@contextlib.contextmanager
def run_nginx(workdir: Path) -> Iterator[HTTPServer]:
    """nginx on a free port serving ``workdir/docs`` for the ``with`` block."""
    port = free_port()
    root, docs = workdir / "nginx", workdir / "docs"
    root.mkdir(parents=True)
    docs.mkdir(parents=True)
    user = "user root;" if os.geteuid() == 0 else ""
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, root=root, port=port, docs=docs))
    log = root / "stdout.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [nginx_binary(), "-c", str(conf), "-p", str(root)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url + "/", process, root / "error.log")
        yield HTTPServer(url, docs)
    finally:
        _stop(process)
