"""Files that look like a record's but do not fit its chain: copies, renamed files, orphans.

Discovery goes by exact names, so a patch renamed to ``rec.p1 (copy).ih5`` or
``rec.p02.ih5`` would silently drop out of the record. Such files are reported
instead (a warning on opening, a line in ``ih5 verify`` and ``ih5 log``), and
writers refuse to publish over the index they claim. The rules are the same for
every store that can be listed (a local directory, an object-storage prefix).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ih5.errors import NotAnIH5ContainerError
from ih5.format import (
    CONTAINER_SUFFIX,
    MANIFEST_SUFFIX,
    ContainerRef,
    container_name,
    parse_container_name,
    read_user_block_with_size,
)
from ih5.record._commit import file_index
from ih5.store import LocalStore, Store


@dataclass(frozen=True)
class Stray:
    """A file beside the record that is not part of its chain."""

    path: Path
    """Its local path; for a remote store, its name there (as a remote ContainerRef's)."""
    reason: str
    claims: int | None
    """The file index it claims (where a writer must not publish), if any."""
    location: str = ""
    """Its path or URL, for messages."""


def find_strays(
    store: Store, name: str, chain: Sequence[ContainerRef], names: Sequence[str] | None = None
) -> list[Stray]:
    """Report the files of ``store`` that claim to belong to record ``name`` but are not in
    ``chain``: containers under other names that carry its record uuid, and manifests
    whose container is missing. ``names`` is a listing of ``store`` already at hand."""
    record_uuid = chain[0].user_block.record_uuid
    members = {ref.path.name for ref in chain}
    names = store.names() if names is None else names
    present = set(names)
    found: list[Stray] = []
    for entry in sorted(names):
        if not entry.startswith(name) or entry.startswith("."):
            continue
        if entry.endswith(CONTAINER_SUFFIX) and entry not in members:
            parsed = parse_container_name(entry)
            if parsed is not None:
                # Another record's file, or this record's trailing uncommitted container.
                continue
            stray = _stray_container(store, name, entry, record_uuid)
            if stray is not None:
                found.append(stray)
        elif entry.endswith(CONTAINER_SUFFIX + MANIFEST_SUFFIX):
            container = entry.removesuffix(MANIFEST_SUFFIX)
            parsed = parse_container_name(container)
            if parsed is None or parsed[0] != name or container in present:
                continue
            found.append(
                Stray(
                    _path(store, entry),
                    f"a manifest without its container {container}",
                    parsed[1],
                    store.describe(entry),
                )
            )
    return found


def _path(store: Store, entry: str) -> Path:
    """The local path of ``entry``; a remote store's file is named by its name alone."""
    return store.local_path(entry) if isinstance(store, LocalStore) else Path(entry)


def _stray_container(store: Store, name: str, entry: str, record_uuid: object) -> Stray | None:
    try:
        with store.open_binary(entry) as stream:
            user_block, _ = read_user_block_with_size(stream, store.describe(entry))
    except (NotAnIH5ContainerError, OSError):
        return None
    if user_block.record_uuid != record_uuid:
        return None
    index = file_index(user_block)
    return Stray(
        _path(store, entry),
        f"a container of this record (patch_index {user_block.patch_index}) under a name "
        f"discovery does not use; rename it to {container_name(name, index)} if it belongs "
        "to the chain",
        index,
        store.describe(entry),
    )
