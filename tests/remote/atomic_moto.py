"""moto's S3 server with each write request handled whole before the next begins.

S3 decides a conditional write (``If-None-Match: *``) atomically: of two creates
of one key, exactly one succeeds. moto checks the condition and then stores the
object in two steps, so two concurrent creates can both succeed and the second
silently replaces the first, which S3 never allows. Tests of racing publishers
need S3's rule, so writes (PUT, POST, DELETE) run one at a time here; reads stay
concurrent. Run as ``python -m tests.remote.atomic_moto HOST PORT``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def one_write_at_a_time(app: WSGIApp) -> WSGIApp:
    """``app`` with its write requests serialised (the whole response made under a lock)."""
    writing = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
            return app(environ, start_response)
        with writing:
            return list(app(environ, start_response))

    return serialised


def main(host: str, port: int) -> None:
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto's own server does
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        one_write_at_a_time(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
