"""A manifest file checked at open without building its pydantic models.

Opening a manifest-backed record refuses a manifest that is no manifest or is
another container's, but needs only its uuid and extensions: validating every
skeleton entry through ``IH5Manifest`` costs more than the rest of a small
re-pack. :func:`plain_document` accepts only documents in the plain form ih5 and
metador-core write, whose every field the models take unchanged; anything else
(an odd spelling, a JSON token the two parsers read differently, damage) is left
to ``IH5Manifest.from_bytes``, which accepts it or raises the ManifestError naming
the problem, as before.

What :func:`plain_document` found is kept in the per-user cache under the hashsum of
the bytes it read (``known_document``): a new process opening the same manifest
checks its hashsum, as always, but does not parse its skeleton again.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from ih5.errors import HashsumFormatError
from ih5.fs import parse_hashsum, read_entry, write_entry

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UNSURE = (b"NaN", b"Infinity", b"\\ud", b"\\uD")
"""Tokens Python's JSON parser and pydantic's may read differently (non-finite numbers,
lone surrogates): a document holding one, even inside a string, takes the models' path."""
_NODE_TYPES = ("group", "dataset")


@dataclass(frozen=True)
class ManifestDocument:
    """What opening needs of a manifest: its uuid and its extensions."""

    manifest_uuid: uuid.UUID
    manifest_exts: dict[str, Any]


def plain_document(raw: bytes) -> ManifestDocument | None:
    """The uuid and extensions of a manifest in the plain form; None when the models must
    decide (the document may still be valid, or damaged)."""
    if any(token in raw for token in _UNSURE):
        return None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    manifest_uuid = doc.get("manifest_uuid")
    exts = doc.get("manifest_exts", {})
    if (
        not is_uuid(manifest_uuid)
        or not isinstance(exts, dict)
        or not _plain_user_block(doc.get("user_block"))
        or not _plain_skeleton(doc.get("skeleton"))
    ):
        return None
    return ManifestDocument(uuid.UUID(manifest_uuid), exts)


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def _plain_user_block(block: object) -> bool:
    """The fields IH5UserBlock checks, in the one form it takes unchanged."""
    if not isinstance(block, dict):
        return False
    index = block.get("patch_index")
    prev = block.get("prev_patch")
    hashsum = block.get("hdf5_hashsum")
    exts = block.get("ub_exts", {})
    if not (
        is_uuid(block.get("record_uuid"))
        and is_uuid(block.get("patch_uuid"))
        and type(index) is int
        and index >= 0
        and (prev is None or is_uuid(prev))
        and (hashsum is None or isinstance(hashsum, str))
        and isinstance(exts, dict)
    ):
        return False
    try:
        if hashsum is not None:
            parse_hashsum(hashsum)
        json.dumps(exts)
    except (HashsumFormatError, TypeError, ValueError, RecursionError):
        return False
    return True


def _plain_skeleton(skeleton: object) -> bool:
    """Every entry a SkeletonEntry as written: a node type, an int index, int attributes."""
    if not isinstance(skeleton, dict):
        return False
    for entry in skeleton.values():
        if not isinstance(entry, dict):
            return False
        attrs = entry.get("attrs")
        if (
            entry.get("node_type") not in _NODE_TYPES
            or type(entry.get("patch_index")) is not int
            or not isinstance(attrs, dict)
        ):
            return False
        for value in attrs.values():
            if type(value) is not int:
                return False
    return True


_KIND = "manifests"


def _entry_name(hashsum: str) -> str:
    return f"{hashsum.replace(':', '-')}.d1.json"


def known_document(hashsum: str) -> ManifestDocument | None:
    """What :func:`plain_document` found in the manifest whose bytes hash to ``hashsum``,
    if this user's cache remembers it (None for a missing or damaged entry)."""
    raw = read_entry(_KIND, _entry_name(hashsum))
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, list) or len(doc) != 2:
        return None
    manifest_uuid, exts = doc
    if not is_uuid(manifest_uuid) or not isinstance(exts, dict):
        return None
    return ManifestDocument(uuid.UUID(manifest_uuid), exts)


def remember_document(hashsum: str, document: ManifestDocument) -> None:
    """Keep what :func:`plain_document` found in the manifest whose bytes hash to ``hashsum``."""
    try:
        data = json.dumps([str(document.manifest_uuid), document.manifest_exts])
    except (TypeError, ValueError, RecursionError):
        return
    write_entry(_KIND, _entry_name(hashsum), data.encode("utf-8"))
