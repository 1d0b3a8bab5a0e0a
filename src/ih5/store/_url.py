"""Which store a location names: a local path or ``file://`` URL, ``s3://``, ``http(s)://``.

``s3://BUCKET/PREFIX`` takes credentials, region and endpoint from the standard
``AWS_*`` environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``, ...), which :class:`RemoteOptions`
override. ``http://`` and ``https://`` locations are read-only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ih5.errors import InvalidKeyError
from ih5.store._local import LocalStore
from ih5.store._object import DEFAULT_PART_SIZE, ObjectStore, UploadProgress
from ih5.store._reader import DEFAULT_BLOCK_SIZE
from ih5.store._seam import Store

REMOTE_SCHEMES = ("s3", "http", "https")


@dataclass(frozen=True)
class RemoteOptions:
    """Settings of a remote store; None means the ``AWS_*`` environment (or the default)."""

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    allow_http: bool | None = None
    max_retries: int = 4
    """Retries of a failing request (server errors, throttling, dropped connections)."""
    retry_timeout: float = 300.0
    """Seconds after which a request is no longer retried."""
    timeout: float = 300.0
    """Seconds one request may take (completing a large multipart upload can take long)."""
    block_size: int = DEFAULT_BLOCK_SIZE
    part_size: int = DEFAULT_PART_SIZE
    progress: UploadProgress | None = None


def is_url(location: str | os.PathLike[str]) -> bool:
    """Tell whether ``location`` is a URL (``scheme://``) rather than a local path."""
    return isinstance(location, str) and "://" in location


def is_remote(location: str | os.PathLike[str]) -> bool:
    """Tell whether ``location`` names a remote store (s3, http, https)."""
    return is_url(location) and urlsplit(str(location)).scheme.lower() in REMOTE_SCHEMES


def local_path(location: str | os.PathLike[str]) -> Path:
    """The local path of a plain path or ``file://`` URL."""
    if not is_url(location):
        return Path(location)
    parts = urlsplit(str(location))
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        raise InvalidKeyError(
            f"{location} is not a local path or file:// URL; use s3://BUCKET/PREFIX/NAME, "
            "http(s)://HOST/PATH/NAME or a local DIR/NAME",
            str(location),
        )
    return Path(unquote(parts.path))


def split_record_url(url: str) -> tuple[str, str]:
    """Split ``SCHEME://HOST/PATH/NAME`` into the store URL and the record name."""
    stripped = url.rstrip("/")
    parent, _, name = stripped.rpartition("/")
    if not name or parent.endswith(":/") or "://" not in parent:
        raise InvalidKeyError(
            f"{url} names no record: give the record's name after its location, e.g. "
            "s3://BUCKET/PREFIX/NAME",
            url,
        )
    return parent, name.removesuffix(".ih5")


def _retry(options: RemoteOptions) -> dict[str, Any]:
    return {
        "max_retries": options.max_retries,
        "retry_timeout": timedelta(seconds=options.retry_timeout),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=5),
            "base": 2,
        },
    }


def _s3(url: str, options: RemoteOptions) -> ObjectStore:
    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket:
        raise InvalidKeyError(f"{url} names no bucket; use s3://BUCKET/PREFIX/NAME", url)
    config: dict[str, Any] = {}
    for key, value in (
        ("endpoint", options.endpoint),
        ("region", options.region),
        ("access_key_id", options.access_key_id),
        ("secret_access_key", options.secret_access_key),
        ("token", options.session_token),
    ):
        if value is not None:
            config[key] = value
    from obstore.store import S3Store  # a process with only local records never loads it

    if "region" not in config and "AWS_REGION" not in os.environ:
        config["region"] = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    if "AWS_COPY_IF_NOT_EXISTS" not in os.environ:
        # Large files are published by a multipart copy completed only if the name is free.
        config["copy_if_not_exists"] = "multipart"
    client: dict[str, Any] = {"timeout": timedelta(seconds=options.timeout)}
    if options.allow_http is not None:
        client["allow_http"] = options.allow_http
    elif "AWS_ALLOW_HTTP" in os.environ:
        # Client options given here replace the environment's, so carry this one over.
        client["allow_http"] = os.environ["AWS_ALLOW_HTTP"].strip().lower() in ("1", "true")
    inner = S3Store(
        bucket,
        prefix=prefix or None,
        client_options=client,  # type: ignore[arg-type]
        retry_config=_retry(options),  # type: ignore[arg-type]
        **config,
    )
    return ObjectStore(
        url,
        inner,
        writable=True,
        listable=True,
        block_size=options.block_size,
        part_size=options.part_size,
        progress=options.progress,
    )


def _http(url: str, options: RemoteOptions) -> ObjectStore:
    from obstore.store import HTTPStore  # a process with only local records never loads it

    allow_http = urlsplit(url).scheme.lower() == "http"
    inner = HTTPStore.from_url(
        url.rstrip("/") + "/",
        client_options={"allow_http": allow_http, "timeout": timedelta(seconds=options.timeout)},
        retry_config=_retry(options),  # type: ignore[arg-type]
    )
    return ObjectStore(url, inner, writable=False, listable=False, block_size=options.block_size)


def open_store(location: str | os.PathLike[str], options: RemoteOptions | None = None) -> Store:
    """The store at ``location``: a directory, ``file://``, ``s3://`` or ``http(s)://`` URL."""
    if not is_remote(location):
        return LocalStore(local_path(location))
    url = str(location)
    scheme = urlsplit(url).scheme.lower()
    options = options or RemoteOptions()
    return _s3(url, options) if scheme == "s3" else _http(url, options)
