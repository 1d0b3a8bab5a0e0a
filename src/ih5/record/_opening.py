"""Finding a record's containers, checking the chain and building its resolved tree."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import h5py

from ih5.errors import (
    DamagedPayloadError,
    IntegrityError,
    InvalidKeyError,
    RecordNotFoundError,
)
from ih5.format import (
    USER_BLOCKS,
    ContainerRef,
    container_name,
    list_containers,
    load_refs,
    parse_container_name,
    read_user_block_with_size,
    split_record_path,
    split_uncommitted,
    validate_chain,
)
from ih5.fs import Progress
from ih5.record._expected import remember_reader
from ih5.record._facts import FACTS_CACHE, ContainerFacts, persistable, read_facts
from ih5.record._tree import Node, apply_container
from ih5.record._treecache import SNAPSHOT_EVERY, cached_prefix, remember_tree
from ih5.store import ObjectStore, RangeReader

WRITE_METADATA_BLOCK = 32 << 10
"""Bytes HDF5 reserves at a time for a writer's metadata (object headers, chunk-index nodes).

HDF5's own 2 KiB is smaller than one chunk-index node, so each node would land
between the data, and a remote read would fetch them one request at a time. In
32 KiB blocks the index of about 900 chunks sits beside the object headers, in
the first block a remote open fetches anyway. The unused rest of the last block is
given back when it ends the file, and is at most 32 KiB when data follows it.
"""

RecordSource = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
"""A record: ``DIR/NAME`` (containers found by name) or an explicit list of container files."""

Verify = bool | Literal["full"]
"""True: check hashsums, trusting containers unchanged since they were last verified;
"full": re-hash every container; False: no check (trusted local data)."""


def _damaged(path: Path | str, exc: Exception) -> IntegrityError:
    return IntegrityError(
        f"cannot read the HDF5 payload of {path} ({exc}); the file is damaged: "
        "check it with 'ih5 verify' and restore it from a copy",
        path,
    )


@contextmanager
def payload_errors(obj: Any) -> Iterator[None]:
    """Raise h5py's errors on damaged bytes of ``obj``'s file (met by lazy reads) typed.

    Opening reads only the structure; values are read later, and with verify=False
    (or a file changed since) they may be damaged.
    """
    try:
        yield
    except (OSError, KeyError, RuntimeError) as exc:
        path = obj.file.filename
        raise DamagedPayloadError(
            f"cannot read values from {path} ({exc}); the file is damaged: check it with "
            "'ih5 verify' and restore it from a copy",
            path,
        ) from exc


def open_container(path: Path | ContainerRef, mode: str = "r") -> h5py.File:
    """Open one container's HDF5 payload: the single seam between records and storage.

    A remote container (a ref with a source) is read through a file object that
    fetches only the byte ranges HDF5 asks for.
    """
    if isinstance(path, ContainerRef):
        if path.source is not None:
            stream = path.open()
            try:
                file = h5py.File(stream, mode)
            except OSError as exc:
                raise _damaged(path.label, exc) from exc
            if isinstance(stream, RangeReader):
                remember_reader(file, stream)
            return file
        path = path.path
    try:
        if mode == "r":
            return h5py.File(path, mode)
        return h5py.File(path, mode, meta_block_size=WRITE_METADATA_BLOCK)
    except FileNotFoundError as exc:
        raise RecordNotFoundError(f"container {path} does not exist", path) from exc
    except OSError as exc:
        raise _damaged(path, exc) from exc


def _check_no_nul(path: str | os.PathLike[str]) -> None:
    if "\x00" in str(os.fspath(path)):
        raise InvalidKeyError(f"path {path!r} contains a NUL character; no file has such a name")


def locate(source: RecordSource) -> tuple[Path, str | None, list[Path]]:
    """Return (directory, record name or None, container files) of a record source."""
    directory, name, files, _ = locate_listed(source)
    return directory, name, files


def locate_listed(
    source: RecordSource,
) -> tuple[Path, str | None, list[Path], list[str] | None]:
    """:func:`locate`, and for ``DIR/NAME`` the names of every file in DIR from the same
    scan (what stray detection looks through); None for a list of container files."""
    for path in [source] if isinstance(source, (str, os.PathLike)) else source:
        _check_no_nul(path)
    if isinstance(source, (str, os.PathLike)):
        directory, name = split_record_path(source)
        files, listing = list_containers(directory, name)
        return directory, name, files, listing
    files = [Path(item) for item in source]
    if not files:
        raise RecordNotFoundError("no container files were given; pass at least the base")
    parsed = parse_container_name(files[0].name)
    return files[0].parent, parsed[0] if parsed else None, files, None


def files_up_to(files: Sequence[Path], at: int) -> list[Path]:
    """The container files that can belong to the state as of patch index ``at``.

    A file's name index never exceeds its patch index (a base or stub is index 0
    by name), so files named beyond ``at`` are left unread.
    """
    kept = []
    for path in files:
        parsed = parse_container_name(path.name)
        if parsed is None or parsed[1] <= at:
            kept.append(path)
    return kept


def lock_target(directory: Path, name: str) -> Path:
    """The file whose lock guards writing to the record (``NAME.ih5.lock`` beside it)."""
    return directory / container_name(name, 0)


def read_chain(
    files: Sequence[Path], verify: Verify, progress: Progress | None = None
) -> tuple[list[ContainerRef], ContainerRef | None]:
    """Validate the containers; return the committed chain and a trailing uncommitted one."""
    refs = validate_chain(
        load_refs(files),
        verify_hashsums=bool(verify),
        progress=progress,
        trust_unchanged=verify is True,
    )
    return split_uncommitted(refs)


def remote_refs(store: ObjectStore, name: str) -> list[ContainerRef]:
    """The containers of record ``name`` in a remote store, with their user blocks.

    Object storage is listed; an HTTP server cannot be, so the chain is followed
    by name: the base, then the patch after each container's index, up to the
    first name that is missing. Each container costs one request, which also
    fills the first block of its cache (user block and HDF5 superblock).
    """
    if store.listable:
        return [remote_ref(store, path.name) for path in discover_names(store.names(), name)]
    refs: list[ContainerRef] = []
    index = 0
    while True:
        try:
            ref = remote_ref(store, container_name(name, index))
        except FileNotFoundError:
            return refs
        refs.append(ref)
        index = ref.user_block.patch_index + 1


def remote_ref(store: ObjectStore, entry: str) -> ContainerRef:
    """The remote container ``entry`` with its user block (one request: its first block)."""
    head = store.first_block(entry)
    user_block, size = read_user_block_with_size(io.BytesIO(head), store.describe(entry))
    return ContainerRef(Path(entry), user_block, size, store)


def discover_names(names: Sequence[str], name: str) -> list[Path]:
    """The container names of record ``name`` among ``names``, by patch index."""
    found = [
        (parsed[1], entry)
        for entry in names
        if (parsed := parse_container_name(entry)) is not None and parsed[0] == name
    ]
    return [Path(entry) for _, entry in sorted(found)]


def read_remote_chain(
    store: ObjectStore, name: str, verify: bool, progress: Progress | None = None
) -> tuple[list[ContainerRef], ContainerRef | None]:
    """Validate a remote record's containers; hashsums (whole downloads) only if ``verify``."""
    refs = remote_refs(store, name)
    if not refs:
        raise RecordNotFoundError(
            f"no containers of record {name} found at {store.location} (looked for "
            f"{store.describe(container_name(name, 0))}); check the URL",
            store.describe(container_name(name, 0)),
        )
    return split_uncommitted(validate_chain(refs, verify_hashsums=verify, progress=progress))


def container_facts(ref: ContainerRef) -> ContainerFacts:
    """Facts of a committed container, read once per process."""
    assert ref.user_block.hdf5_hashsum is not None

    def compute() -> ContainerFacts:
        with open_container(ref) as file:
            try:
                return read_facts(file)
            except (OSError, KeyError, RuntimeError, TypeError, ValueError) as exc:
                raise _damaged(ref.label, exc) from exc

    key = (str(ref.user_block.patch_uuid), ref.user_block.hdf5_hashsum)
    return FACTS_CACHE.get(key, compute)


def build_tree(chain: Sequence[ContainerRef]) -> Node:
    """Resolve the overlay of a committed chain (empty group for an empty chain)."""
    return resolve_chain(chain)[0]


def resolve_chain(chain: Sequence[ContainerRef]) -> tuple[Node, int | None, int]:
    """The resolved tree of ``chain``, the length of its longest prefix whose tree the
    cache holds (None when none does) and that entry's size in bytes.

    A chain opened before (by any process of this user) is read from the tree cache.
    Otherwise the tree of its longest cached prefix (a chain that has since grown by
    a few patches) gets the facts of the containers after it applied; the tree is
    written when that was ``SNAPSHOT_EVERY`` containers or more, or one whose facts
    the cache does not keep, or no prefix was cached.
    """
    if not chain:
        return Node(0, is_group=True), None, 0
    root: Node | None = None
    start = size = 0
    cached = cached_prefix(chain, PREFIX_PROBES)
    if cached is not None:
        start, root, size = cached
        if start == len(chain):
            return root, start, size
    kept = True
    for position in range(start, len(chain)):
        ref = chain[position]
        facts = container_facts(ref)
        kept = kept and persistable(facts)
        root = apply_container(root, facts, ref.user_block.patch_index, is_base=position == 0)
    assert root is not None
    if cached is None or not kept or len(chain) - start >= SNAPSHOT_EVERY:
        return root, len(chain), remember_tree(chain, root)
    return root, start, size


PREFIX_PROBES = 16
"""How many prefixes of a chain ``build_tree`` looks for in the tree cache (each miss
costs one failed file open)."""


def forget_process_caches() -> None:
    """Forget what this process remembers of containers (facts, user blocks), as a new
    process starts; the per-user cache directory is kept."""
    FACTS_CACHE.clear()
    USER_BLOCKS.clear()
