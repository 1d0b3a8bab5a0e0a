"""Where a remote record's newest manifest is, found by name from a remembered index.

A listing of an object-storage prefix grows with every file there (about 0.4 KB
per patch, and every other record's files too). A packer therefore remembers,
per user (``fs/_usercache.py``), the newest file index it saw for a record's URL
and checks it by name: container K present, manifest K fetched, the container
after it absent (a few steps forward when other packers went on). That costs the same
few small requests however long the history is. Anything else -- no entry, a
damaged one, one ahead of the record (deleted and packed again), a missing
manifest (a packer killed before publishing it) -- answers "unsure", and the
caller lists the prefix as before: the cache can only save work, never change
which manifest a patch is built on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from ih5.format import container_name, manifest_name
from ih5.fs import read_entry, write_entry
from ih5.store import ObjectStore

KIND = "remote-newest"
PROBE_AHEAD = 4
"""Patches published by others since the remembered index that are stepped over by name;
a record further ahead is listed."""


@dataclass(frozen=True)
class Newest:
    """The newest container's file index and its manifest's bytes; index -1: no base yet."""

    index: int
    manifest: bytes | None


def _key(store: ObjectStore, name: str) -> tuple[str, bytes]:
    """The cache entry's file name and the identity it must carry (URL and endpoint)."""
    config = getattr(store.inner, "config", None)
    endpoint = config.get("endpoint") if isinstance(config, dict) else None
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL", "")
    identity = f"{store.describe(name)}\n{endpoint}".encode()
    return hashlib.sha256(identity).hexdigest()[:40], identity


def remembered(store: ObjectStore, name: str) -> int | None:
    """The newest file index this user saw for record ``name`` of ``store``, if any."""
    entry, identity = _key(store, name)
    raw = read_entry(KIND, entry)
    if raw is None:
        return None
    head, _, index = raw.rpartition(b"\n")
    return int(index) if head == identity and index.isdigit() else None


def remember(store: ObjectStore, name: str, index: int) -> None:
    """Note that record ``name`` of ``store`` reached file index ``index``."""
    entry, identity = _key(store, name)
    write_entry(KIND, entry, identity + b"\n" + str(index).encode())


def _patch_index(raw: bytes) -> int | None:
    """The patch index of the container a manifest describes (None: not a manifest)."""
    try:
        index = json.loads(raw)["user_block"]["patch_index"]
    except (ValueError, TypeError, KeyError):
        return None
    return index if isinstance(index, int) and index >= 0 else None


def find_newest(store: ObjectStore, name: str) -> Newest | None:
    """The newest container and its manifest, found by name; None when unsure (list then).

    The container after file index K has file index ``patch_index + 1`` of K (a base
    may be a stub that starts late). Without a remembered index, a missing base
    answers at once that the record is new (one request).
    """
    known = remembered(store, name)
    if known is None:
        return None if store.exists(container_name(name, 0)) else Newest(-1, None)
    if not store.exists(container_name(name, known)):
        return None  # the record is shorter than remembered: it was packed anew
    index = known
    for _ in range(PROBE_AHEAD + 1):
        try:
            raw = store.read_bytes(manifest_name(container_name(name, index)))
        except FileNotFoundError:
            return None  # a parked manifest: the listing path completes it
        patch_index = _patch_index(raw)
        if patch_index is None:
            return None
        if not store.exists(container_name(name, patch_index + 1)):
            return Newest(index, raw)
        index = patch_index + 1
    return None
