"""The store floor: where a record's containers and sidecars live.

Every container and sidecar is listed, read, staged, published and removed
through a :class:`Store`. Publishing is create-if-absent: two writers can never
both publish one name, with or without a lock. Backends: the local
directory (hard links), S3-compatible object storage (conditional PUT and
conditional multipart copy) and read-only HTTP(S) servers, chosen by URL
(:func:`open_store`).

Names are imported on first use (PEP 562), so that a local record loads no
object-storage client (obstore).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ih5._lazy import lazy_names

if TYPE_CHECKING:
    from ih5.store._local import LocalStore
    from ih5.store._object import ObjectStore, TransferStats, UploadProgress
    from ih5.store._reader import RangeReader
    from ih5.store._seam import Store
    from ih5.store._url import (
        RemoteOptions,
        is_remote,
        is_url,
        local_path,
        open_store,
        split_record_url,
    )

__all__ = [
    "LocalStore",
    "ObjectStore",
    "RangeReader",
    "RemoteOptions",
    "Store",
    "TransferStats",
    "UploadProgress",
    "is_remote",
    "is_url",
    "local_path",
    "open_store",
    "split_record_url",
]

_SOURCES = {
    "LocalStore": "ih5.store._local",
    "ObjectStore": "ih5.store._object",
    "TransferStats": "ih5.store._object",
    "UploadProgress": "ih5.store._object",
    "RangeReader": "ih5.store._reader",
    "Store": "ih5.store._seam",
    "RemoteOptions": "ih5.store._url",
    "is_remote": "ih5.store._url",
    "is_url": "ih5.store._url",
    "local_path": "ih5.store._url",
    "open_store": "ih5.store._url",
    "split_record_url": "ih5.store._url",
}


__getattr__, __dir__ = lazy_names(__name__, _SOURCES, __all__, globals())
