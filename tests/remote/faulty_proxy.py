"""An HTTP proxy in front of the S3 server that injects faults on request.

It forwards every request to the real server, except where its plan says to
answer with an error status (throttling, server errors, refused preconditions),
to drop the connection half-way through a response body, or to drop it
half-way through reading an upload. Used to show what clients see on a flaky
network, with real sockets and real retries.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    "<Message>injected by the test proxy</Message></Error>"
)


@dataclass
class FaultPlan:
    """What to do to the next requests; counters say what was done."""

    error_status: int | None = None
    """Answer with this status instead of forwarding ..."""
    errors_left: int = 0
    """... this many times (-1: always)."""
    refuse_conditional_puts: bool = False
    """Answer 412 to every PUT with If-None-Match (another writer always wins)."""
    drop_get_bodies: bool = False
    """Send half of every GET body with data, then close the connection."""
    drop_uploads: bool = False
    """Read half of every PUT/POST body, then close the connection without answering."""
    forwarded: int = 0
    injected: int = 0
    response_bytes: int = 0
    """Bytes of every response sent back (status line, headers and body)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_error(self) -> int | None:
        with self.lock:
            if self.error_status is None or self.errors_left == 0:
                return None
            if self.errors_left > 0:
                self.errors_left -= 1
            self.injected += 1
            return self.error_status


def _handler(upstream: str, plan: FaultPlan) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)
    if target.hostname is None:
        raise ValueError(f"no host in the upstream URL {upstream!r}")
    host: str = target.hostname

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            plan.response_bytes += sum(map(len, getattr(self, "_headers_buffer", []))) + 2
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
                plan.response_bytes += len(body)

        def _handle(self) -> None:
            if plan.drop_uploads and self.command in ("PUT", "POST"):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length // 2)
                plan.injected += 1
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            body = self._body()
            status = plan.take_error()
            conditional = self.command == "PUT" and self.headers.get("If-None-Match") == "*"
            if status is None and plan.refuse_conditional_puts and conditional:
                status = 412
                plan.injected += 1
            if status is not None:
                code = {503: "SlowDown", 412: "PreconditionFailed"}.get(status, "InternalError")
                self._answer(status, ERROR_BODY.format(code=code).encode(), [])
                return
            connection = http.client.HTTPConnection(host, target.port, timeout=30)
            try:
                headers = {key: value for key, value in self.headers.items()}
                headers.pop("Transfer-Encoding", None)
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                plan.forwarded += 1
                if plan.drop_get_bodies and self.command == "GET" and len(data) > 64:
                    plan.injected += 1
                    self.send_response(response.status)
                    for key, value in response.getheaders():
                        if key.lower() not in ("transfer-encoding", "connection"):
                            self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self._answer(response.status, data, response.getheaders())
            finally:
                connection.close()

        # http.server's names for the handlers of each method.
        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815

    return Handler


@contextmanager
def faulty_proxy(upstream: str) -> Iterator[tuple[str, FaultPlan]]:
    """A proxy to ``upstream`` on a free port: its endpoint URL and its (mutable) plan."""
    plan = FaultPlan()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, plan))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", plan
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
