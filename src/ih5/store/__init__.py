"""The store floor: where a record's containers and sidecars live.

Every container and sidecar is listed, read, staged, published and removed
through a :class:`Store`. Publishing is create-if-absent: two writers can never
both publish one name, with or without a lock. Backends: the local
directory (hard links), S3-compatible object storage (conditional PUT and
conditional multipart copy) and read-only HTTP(S) servers, chosen by URL
(:func:`open_store`).
"""

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
