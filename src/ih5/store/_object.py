"""Object storage (S3-compatible) and plain HTTP(S) servers as stores, through obstore.

obstore is imported by the methods that call it: a process with only local records
never loads it.

Publishing is create-if-absent on the server: a small file is one conditional
``PUT`` (``If-None-Match: *``); a large one is uploaded in parts under a hidden
name only its writer uses, then copied to its final name by a multipart copy
that the server completes only if the name is still free, then the hidden
upload is removed. Either way a reader sees the whole file under its final
name or nothing. HTTP(S) locations are read-only and cannot be listed: their
containers are found by name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ih5.errors import (
    RemoteAuthError,
    RemoteError,
    RemoteNotFoundError,
    RemoteReadOnlyError,
    RemoteUnavailableError,
)
from ih5.store._reader import DEFAULT_BLOCK_SIZE, BlockCache, RangeReader

if TYPE_CHECKING:
    from obstore import GetOptions

DEFAULT_PART_SIZE = 8 << 20
"""Bytes per uploaded part; files larger than this are uploaded in parts."""

FETCH_PART = 256 << 20
"""A large read is fetched in parts of this many bytes, several at once, each streamed into
the reader's buffer as it arrives. Measured against moto and nginx on 127.0.0.1
(``benchmarks/bench_remote.py``): a 64 MiB read in 8/16/32 MiB parts took 3.3x/2.3x/1.6x
as long as in one request on moto (whose every ranged GET costs the whole object) and
no less on nginx; a 256 MiB read was fastest in one request on both."""
FETCH_THREADS = 8
STREAM_CHUNK = 1 << 20
"""A streamed part is copied into the reader's buffer in pieces of at least this size."""

UploadProgress = Callable[[str, int, int], None]
"""Called with (name, bytes sent so far, total bytes) while a file is uploaded."""


@dataclass
class TransferStats:
    """What a store did on the network: requests made and bytes moved."""

    requests: int = 0
    bytes_downloaded: int = 0
    bytes_uploaded: int = 0
    listings: int = 0
    """Requests that listed the prefix (their size grows with the files there)."""
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __getstate__(self) -> dict[str, int]:
        """The counts (a result carrying them crosses process boundaries); no lock."""
        return {
            "requests": self.requests,
            "bytes_downloaded": self.bytes_downloaded,
            "bytes_uploaded": self.bytes_uploaded,
            "listings": self.listings,
        }

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__dict__.update(state, _mutex=threading.Lock())

    def count(self, down: int = 0, up: int = 0, listing: bool = False) -> None:
        """One more request, moving ``down`` and ``up`` bytes (``listing``: it listed)."""
        with self._mutex:
            self.requests += 1
            self.listings += listing
            self.bytes_downloaded += down
            self.bytes_uploaded += up


def _status(text: str) -> int | None:
    marker = "status code: "
    at = text.find(marker)
    if at < 0:
        return None
    digits = text[at + len(marker) : at + len(marker) + 3]
    return int(digits) if digits.isdigit() else None


class ObjectStore:
    """The files below one URL prefix of an S3-compatible bucket or an HTTP(S) server."""

    def __init__(
        self,
        url: str,
        inner: Any,
        *,
        writable: bool,
        listable: bool,
        block_size: int = DEFAULT_BLOCK_SIZE,
        part_size: int = DEFAULT_PART_SIZE,
        progress: UploadProgress | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.inner = inner
        self.writable = writable
        self.listable = listable
        self.block_size = block_size
        self.part_size = part_size
        self.progress = progress
        self.stats = TransferStats()
        self.listed: list[str] | None = None
        """The names of the latest listing (opening reuses it instead of listing again)."""
        self._caches: dict[str, BlockCache] = {}
        self._mutex = threading.Lock()
        self._staging: tempfile.TemporaryDirectory[str] | None = None

    # --- the Store seam -----------------------------------------------------------

    @property
    def location(self) -> str:
        """The URL of the prefix."""
        return self.url

    @property
    def staging_dir(self) -> Path:
        """A private local directory: writers stage files here before uploading them."""
        if self._staging is None:
            self._staging = tempfile.TemporaryDirectory(prefix="ih5-remote-")
        return Path(self._staging.name)

    def describe(self, name: str) -> str:
        """The URL of ``name``."""
        return f"{self.url}/{name}"

    def names(self) -> list[str]:
        """Every file name directly below the prefix (an HTTP server lists none)."""
        import obstore

        if not self.listable:
            return []
        listing = self._guard("list", "", lambda: obstore.list_with_delimiter(self.inner, None))
        self.stats.count(listing=True)
        self.listed = sorted(str(entry["path"]).rsplit("/", 1)[-1] for entry in listing["objects"])
        return list(self.listed)

    def exists(self, name: str) -> bool:
        """Tell whether ``name`` exists (one HEAD request)."""
        try:
            self.size(name)
        except FileNotFoundError:
            return False
        return True

    def local_path(self, name: str) -> Path:
        """Remote files have no local path: use :meth:`open_binary` or :meth:`read_bytes`."""
        raise RemoteError(
            f"{self.describe(name)} is not a local file; read it through the store "
            "(or 'ih5 pull' the record first)",
            self.describe(name),
        )

    def read_bytes(self, name: str) -> bytes:
        """The whole content of ``name`` (FileNotFoundError when absent)."""
        import obstore

        result = self._guard("read", name, lambda: obstore.get(self.inner, name))
        data = bytes(self._guard("read", name, result.bytes))
        self.stats.count(down=len(data))
        return data

    def size(self, name: str) -> int:
        """The size of ``name`` in bytes (FileNotFoundError when absent)."""
        import obstore

        with self._mutex:
            cache = self._caches.get(name)
        if cache is not None:
            return cache.size
        meta = self._guard("read", name, lambda: obstore.head(self.inner, name))
        self.stats.count()
        return int(meta["size"])

    def open_binary(self, name: str) -> BinaryIO:
        """A seekable reader of ``name`` that fetches only the bytes read (block cache)."""
        return cast(BinaryIO, RangeReader(self._cache(name), self.describe(name)))

    def publish(self, staged: Path, name: str) -> bool:
        """Upload ``staged`` as ``name`` if ``name`` is absent; drop ``staged`` once published."""
        import obstore

        self._require_writable(name)
        total = staged.stat().st_size
        if total <= self.part_size:
            data = staged.read_bytes()
            try:
                self._guard(
                    "publish", name, lambda: obstore.put(self.inner, name, data, mode="create")
                )
            except FileExistsError:
                return False
            finally:
                self.stats.count(up=len(data))
            self._report(name, total, total)
        elif not self._publish_in_parts(staged, name, total):
            return False
        with contextlib.suppress(OSError):
            staged.unlink()
        return True

    def remove(self, name: str) -> None:
        """Delete ``name`` if present."""
        import obstore

        self._require_writable(name)
        with contextlib.suppress(FileNotFoundError):
            self._guard("remove", name, lambda: obstore.delete(self.inner, name))
        self.stats.count()
        with self._mutex:
            self._caches.pop(name, None)

    def sync(self) -> None:
        """Nothing to do: a request the server acknowledged is durable."""

    # --- beyond the seam ------------------------------------------------------------

    def first_block(self, name: str) -> bytes:
        """The first block of ``name`` in one request (also how HTTP discovery probes names)."""
        import obstore

        cache = self._cached(name)
        if cache is not None:
            return bytes(cache.read(0, self.block_size))
        options: GetOptions = {"range": (0, self.block_size)}
        try:
            result = self._guard(
                "read", name, lambda: obstore.get(self.inner, name, options=options)
            )
            data = bytes(self._guard("read", name, result.bytes))
        except FileNotFoundError:
            self.stats.count()
            raise
        self.stats.count(down=len(data))
        cache = self._remember(name, int(result.meta["size"]))
        cache.prime(0, data)
        return data

    def download(
        self, name: str, target: Path, progress: Callable[[int], None] | None = None
    ) -> int:
        """Stream ``name`` into the new local file ``target``; return the bytes written."""
        import obstore

        result = self._guard("read", name, lambda: obstore.get(self.inner, name))
        written = 0
        with open(target, "xb") as out:
            stream = result.stream(min_chunk_size=self.part_size)
            while True:
                chunk = self._guard("read", name, lambda: next(stream, None))
                if chunk is None:
                    break
                out.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        self.stats.count(down=written)
        return written

    def upload_bytes(self, name: str, data: bytes) -> None:
        """Write ``name`` (overwriting): for names only this writer uses (staged manifests)."""
        import obstore

        self._require_writable(name)
        self._guard("upload", name, lambda: obstore.put(self.inner, name, data))
        self.stats.count(up=len(data))

    def close(self) -> None:
        """Remove the local staging directory."""
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None

    # --- internals ------------------------------------------------------------------

    def _cached(self, name: str) -> BlockCache | None:
        with self._mutex:
            return self._caches.get(name)

    def _remember(self, name: str, size: int) -> BlockCache:
        with self._mutex:
            cache = self._caches.get(name)
            if cache is None:
                cache = self._caches[name] = BlockCache(
                    lambda start, end: self._fetch(name, start, end),
                    size,
                    self.block_size,
                    fetch_into=lambda start, view: self._fetch_into(name, start, view),
                    stream=lambda start, end: self._stream(name, start, end),
                )
            return cache

    def _cache(self, name: str) -> BlockCache:
        cache = self._cached(name)
        return cache if cache is not None else self._remember(name, self.size(name))

    def _fetch(self, name: str, start: int, end: int) -> list[tuple[int, memoryview]]:
        """The bytes ``[start, end)`` of ``name``; a large range in parts fetched at once."""
        parts = [(low, min(low + FETCH_PART, end)) for low in range(start, end, FETCH_PART)]
        if len(parts) == 1:
            return [(start, self._fetch_part(name, start, end))]
        with ThreadPoolExecutor(min(len(parts), FETCH_THREADS)) as pool:
            pieces = list(pool.map(lambda part: self._fetch_part(name, *part), parts))
        return [(low, piece) for (low, _), piece in zip(parts, pieces, strict=True)]

    def _fetch_into(self, name: str, start: int, view: memoryview) -> None:
        """Fill ``view`` with the bytes of ``name`` from ``start`` on: in parts fetched at
        once, each copied in as it arrives."""
        end = start + len(view)
        parts = [(low, min(low + FETCH_PART, end)) for low in range(start, end, FETCH_PART)]
        if len(parts) == 1:
            self._stream_part(name, start, view)
            return
        with ThreadPoolExecutor(min(len(parts), FETCH_THREADS)) as pool:
            list(
                pool.map(
                    lambda part: self._stream_part(
                        name, part[0], view[part[0] - start : part[1] - start]
                    ),
                    parts,
                )
            )

    def _stream_part(self, name: str, start: int, view: memoryview) -> None:
        done = 0
        for piece in self._stream(name, start, start + len(view)):
            view[done : done + len(piece)] = piece
            done += len(piece)

    def _stream(self, name: str, start: int, end: int) -> Iterator[memoryview]:
        """The bytes ``[start, end)`` of ``name`` from one request, in pieces as they arrive;
        RemoteUnavailableError when the connection drops before the last."""
        import obstore

        options: GetOptions = {"range": (start, end)}
        result = self._guard("read", name, lambda: obstore.get(self.inner, name, options=options))
        stream = result.stream(min_chunk_size=STREAM_CHUNK)
        done = 0
        try:
            while done < end - start:
                chunk = self._guard("read", name, lambda: next(stream, None))
                if chunk is None:
                    break
                piece = memoryview(chunk)[: end - start - done]
                done += len(piece)
                yield piece
        finally:
            self.stats.count(down=done)
        if done != end - start:
            raise RemoteUnavailableError(
                f"{self.describe(name)}: asked for bytes {start}-{end} but got "
                f"{done}; the connection dropped or the object changed: retry",
                self.describe(name),
            )

    def _fetch_part(self, name: str, start: int, end: int) -> memoryview:
        import obstore

        data = memoryview(
            self._guard(
                "read", name, lambda: obstore.get_range(self.inner, name, start=start, end=end)
            )
        )
        self.stats.count(down=len(data))
        if len(data) != end - start:
            raise RemoteUnavailableError(
                f"{self.describe(name)}: asked for bytes {start}-{end} but got {len(data)}; "
                "the connection dropped or the object changed: retry",
                self.describe(name),
            )
        return data

    def _publish_in_parts(self, staged: Path, name: str, total: int) -> bool:
        import obstore

        hidden = f".{name}.{secrets.token_hex(4)}.upload"
        sent = 0

        def chunks() -> Iterator[bytes]:
            nonlocal sent
            with open(staged, "rb") as stream:
                while chunk := stream.read(self.part_size):
                    yield chunk
                    sent += len(chunk)
                    self.stats.count(up=len(chunk))
                    self._report(name, sent, total)

        try:
            self._guard(
                "upload",
                name,
                lambda: obstore.put(
                    self.inner, hidden, chunks(), chunk_size=self.part_size, max_concurrency=4
                ),
            )
            try:
                self._guard(
                    "publish",
                    name,
                    lambda: obstore.copy(self.inner, hidden, name, overwrite=False),
                )
            except FileExistsError:
                return False
            finally:
                self.stats.count()
        finally:
            with contextlib.suppress(Exception):
                obstore.delete(self.inner, hidden)
                self.stats.count()
        return True

    def _report(self, name: str, sent: int, total: int) -> None:
        if self.progress is not None:
            self.progress(name, sent, total)

    def _require_writable(self, name: str) -> None:
        if not self.writable:
            raise RemoteReadOnlyError(
                f"{self.describe(name)}: an HTTP(S) location is read-only; publish to "
                "object storage (s3://...) or a local directory instead",
                self.describe(name),
            )

    def _guard(self, action: str, name: str, call: Callable[[], Any]) -> Any:
        """Run one obstore call; turn its errors into ih5's (FileNotFoundError, FileExistsError
        and typed RemoteErrors naming the URL)."""
        from obstore.exceptions import (
            AlreadyExistsError,
            BaseError,
            NotFoundError,
            PermissionDeniedError,
            PreconditionError,
            UnauthenticatedError,
        )

        where = self.describe(name) if name else self.url
        try:
            return call()
        except (AlreadyExistsError, PreconditionError) as exc:
            raise FileExistsError(f"{where} exists") from exc
        except (NotFoundError, FileNotFoundError) as exc:
            raise FileNotFoundError(f"{where} does not exist") from exc
        except (PermissionDeniedError, UnauthenticatedError, PermissionError) as exc:
            raise _auth_error(where, action, exc) from exc
        except (BaseError, OSError, RuntimeError, ValueError) as exc:
            raise _classify(where, action, exc) from exc


def _auth_error(where: str, action: str, exc: BaseException) -> RemoteAuthError:
    return RemoteAuthError(
        f"the server refused to {action} {where} with the credentials given ({_first_line(exc)}); "
        "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN and the "
        "rights of that key on the bucket",
        where,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _classify(where: str, action: str, exc: BaseException) -> RemoteError:
    text = str(exc)
    status = _status(text)
    after = (
        "retry"
        if action in ("read", "list")
        else "nothing partial was published: retry (the next run goes on)"
    )
    if "NoSuchBucket" in text:
        bucket = where.split("/")[2] if where.startswith("s3://") else where
        return RemoteNotFoundError(
            f"bucket {bucket} does not exist ({where}); create it, or check the URL and "
            "AWS_ENDPOINT_URL",
            where,
        )
    if status in (401, 403) or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return _auth_error(where, action, exc)
    if status == 404:
        return RemoteNotFoundError(f"{where} does not exist; check the URL", where)
    if status is not None and (status >= 500 or status == 429):
        return RemoteUnavailableError(
            f"the server kept failing to {action} {where} (HTTP {status}, retried with "
            f"backoff); {after}",
            where,
        )
    if status is None:
        return RemoteUnavailableError(
            f"could not {action} {where}: the connection failed or dropped "
            f"({_first_line(exc)}); check the endpoint and network; {after}",
            where,
        )
    return RemoteError(f"could not {action} {where} ({_first_line(exc)})", where)
