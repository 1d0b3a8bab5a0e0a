"""Completing a remote container whose manifest is only parked.

A remote packer parks its manifest under its own staging name
(``.NAME.pK.ih5mf.json.HOST-PID-TOKEN.staged``), publishes the container, then
the manifest. One killed in between leaves a published container without its
manifest. As for a local record (``record/_commit.py``, ``complete_manifest``),
the next reader or writer that can write publishes the parked copy -- only if
it hashes to what the container's user block names, and create-if-absent, so
that two completing at once publish the same bytes once. Parked manifests that
nothing needs any more (their manifest is published) are removed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from ih5.errors import RemoteAuthError, RemoteReadOnlyError
from ih5.format import MANIFEST_SUFFIX, manifest_name, named_manifest_hashsum, parse_container_name
from ih5.fs import hashsum_bytes, parse_hashsum
from ih5.record._commit import parse_staged_name
from ih5.record._opening import remote_ref
from ih5.store import ObjectStore


def remote_names(listing: Sequence[str], name: str) -> tuple[dict[int, str], dict[int, str]]:
    """Containers and manifests of record ``name`` in a store's ``listing``, by file index."""
    containers: dict[int, str] = {}
    manifests: dict[int, str] = {}
    for entry in listing:
        is_manifest = entry.endswith(MANIFEST_SUFFIX)
        parsed = parse_container_name(entry.removesuffix(MANIFEST_SUFFIX))
        if parsed is None or parsed[0] != name:
            continue
        (manifests if is_manifest else containers)[parsed[1]] = entry
    return containers, manifests


def lacking_manifests(listing: Sequence[str], name: str) -> bool:
    """Tell whether some container of record ``name`` in ``listing`` has no manifest."""
    containers, manifests = remote_names(listing, name)
    return bool(set(containers) - set(manifests))


def complete_parked(
    store: ObjectStore, name: str, listing: Sequence[str]
) -> tuple[dict[int, str], dict[int, str]]:
    """Publish the parked manifest of each container of record ``name`` in ``listing`` that
    lacks its manifest; drop parked manifests no container needs any more. Return the
    containers and manifests as they are then (RemoteAuthError without write rights)."""
    containers, manifests = remote_names(listing, name)
    staged = [found for found in map(parse_staged_name, listing) if found is not None]
    newest = max(containers, default=-1)
    for index, container in sorted(containers.items()):
        if index in manifests:
            continue
        expected = named_manifest_hashsum(remote_ref(store, container).user_block.ub_exts)
        if expected is None:
            continue  # a plain container: it names no manifest
        for found in staged:
            if found.target != manifest_name(container):
                continue
            try:
                raw = store.read_bytes(found.name)
            except FileNotFoundError:
                continue  # its writer finished meanwhile (or gave up)
            if hashsum_bytes(raw, parse_hashsum(expected)[0]) == expected:
                # A temporary copy of its own: a reader's store keeps no staging directory.
                with tempfile.TemporaryDirectory(prefix="ih5-parked-") as temp:
                    local = Path(temp) / found.name
                    local.write_bytes(raw)
                    store.publish(local, manifest_name(container))
                manifests[index] = manifest_name(container)
                break
    for found in staged:
        parsed = parse_container_name(found.target.removesuffix(MANIFEST_SUFFIX))
        if parsed is None or parsed[0] != name:
            continue  # another record's
        if parsed[1] in manifests and parsed[1] <= newest:
            store.remove(found.name)
    return containers, manifests


def complete_remote(store: ObjectStore, name: str) -> None:
    """What a remote reader does on opening: complete parked manifests if it may write.

    It reuses the listing the opening made (no request when nothing lacks a manifest).
    A reader without write rights (or of a read-only HTTP server, which cannot list)
    leaves them to the next packer; a manifest-backed opening then says what is missing.
    """
    listing = store.listed
    if listing is None or not store.writable or not lacking_manifests(listing, name):
        return
    try:
        complete_parked(store, name, listing)
    except (RemoteAuthError, RemoteReadOnlyError):
        return
