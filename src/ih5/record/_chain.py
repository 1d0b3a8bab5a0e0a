"""``Chain``: a record's committed containers, their resolved tree and their open files.

The handle (``IH5Record``) decides what may change; the chain is what views,
merge and diff read through: resolve a path, open the data of a node, list
the containers. Once closed, every call raises RecordClosedError and no file
stays open.
"""

from __future__ import annotations

from collections.abc import Sequence

import h5py

from ih5.errors import (
    IntegrityError,
    NodeNotFoundError,
    RecordClosedError,
    RecordModeError,
    StubError,
)
from ih5.format import ContainerRef, IH5UserBlock, is_stub_container
from ih5.record._chunkmap import CHUNKS_NAME, DeltaFacts
from ih5.record._chunks import ChunkedDataset
from ih5.record._facts import persistable
from ih5.record._opening import container_facts, open_container, resolve_chain
from ih5.record._patch import PatchWriter
from ih5.record._tree import Node, lookup
from ih5.record._treecache import SMALL_TREE_BYTES, SNAPSHOT_EVERY, remember_tree


class Chain:
    """The committed containers of one record (oldest first) and the open patch, if any."""

    def __init__(self, label: str, refs: Sequence[ContainerRef] = (), read_only: bool = True):
        self.label = label
        """The record, for messages (``DIR/NAME``)."""
        self.read_only = read_only
        self.refs: list[ContainerRef] = list(refs)
        self.root: Node
        self._snapshot: int | None
        """The length of the longest prefix of the chain whose tree the cache holds."""
        self._snapshot_bytes: int
        """The size of that tree's cache entry."""
        self.root, self._snapshot, self._snapshot_bytes = resolve_chain(self.refs)
        self.writer: PatchWriter | None = None
        """The open, uncommitted patch, or None."""
        self.closed = False
        self._files: dict[int, h5py.File] = {}
        self._views: dict[tuple[str, int, int, int], ChunkedDataset] = {}
        self._stored: dict[tuple[int, str], h5py.Dataset] = {}
        """Assembled views of datasets whose deltas are all committed (they never change)."""
        self._by_index: dict[int, ContainerRef] = {}
        """Committed containers by patch index."""

    # --- the committed containers ---------------------------------------------

    def check_open(self) -> None:
        """Raise RecordClosedError once the chain (its record) is closed."""
        if self.closed:
            raise RecordClosedError(
                f"record {self.label} is not open (it was closed); open it again to go on",
                self.label,
            )

    @property
    def newest(self) -> IH5UserBlock | None:
        """The user block of the newest committed container (None before the first commit)."""
        return self.refs[-1].user_block if self.refs else None

    def reset(self, refs: Sequence[ContainerRef]) -> None:
        """Show the committed state of ``refs`` (after a truncation or a re-read)."""
        self._close_files()
        self._by_index = {}
        self.refs = list(refs)
        self.root, self._snapshot, self._snapshot_bytes = resolve_chain(self.refs)

    def append(self, ref: ContainerRef) -> None:
        """Add our newly committed container (its changes are in the tree already).

        The next opening of the grown chain opens no container: it finds the tree
        written for this chain, or for one at most ``SNAPSHOT_EVERY`` containers
        shorter plus the cached facts of those after it (read here from the new
        container: what it changed). A large tree is written whole only every few
        commits, so a commit costs what it changed, not the size of the tree; a
        small one (under ``SMALL_TREE_BYTES``) on every commit, which costs less.
        """
        self.refs.append(ref)
        due = self._snapshot is None or len(self.refs) - self._snapshot >= SNAPSHOT_EVERY
        small = self._snapshot_bytes < SMALL_TREE_BYTES
        if due or small or not persistable(container_facts(ref)):
            # The writer's tree is what the containers' facts resolve to.
            self._snapshot_bytes = remember_tree(self.refs, self.root)
            self._snapshot = len(self.refs)

    def rebuild(self) -> None:
        """Forget changes of a discarded patch: resolve the committed chain again."""
        self._views = {}
        self.root, self._snapshot, self._snapshot_bytes = resolve_chain(self.refs)

    def _ref(self, index: int) -> ContainerRef | None:
        """The committed container with patch index ``index``, if the chain holds it."""
        if len(self._by_index) != len(self.refs):
            self._by_index = {ref.user_block.patch_index: ref for ref in self.refs}
        return self._by_index.get(index)

    # --- reading ------------------------------------------------------------------

    def resolve(self, path: str) -> Node:
        """The node at ``path``; NodeNotFoundError if there is none."""
        self.check_open()
        node = lookup(self.root, path)
        if node is None:
            raise NodeNotFoundError(f"no object at {path!r} in record {self.label}", path)
        return node

    def is_stub(self, index: int) -> bool:
        """True when container ``index`` is a stub (placeholders, no data)."""
        first = self.refs[0] if self.refs else None
        return (
            first is not None
            and index == first.user_block.patch_index
            and is_stub_container(first.user_block.ub_exts)
            and (self.writer is None or index != self.writer.index)
        )

    def data_file(self, index: int, path: str) -> h5py.File:
        """The file holding what container ``index`` wrote at ``path``; refuses stub data."""
        self.check_open()
        first = self.refs[0] if self.refs else None
        if first is not None and self.is_stub(index):
            raise StubError(
                f"{path!r} is a placeholder of the stub {first.path}: its data is "
                "not here; replace or delete it, or work on the real record",
                path,
            )
        return self.h5(index)

    def h5(self, index: int) -> h5py.File:
        """The open HDF5 file of container ``index`` (the open patch's own, or a committed one)."""
        self.check_open()
        if self.writer is not None and index == self.writer.index:
            return self.writer.file
        file = self._files.get(index)
        if file is None:
            ref = self._ref(index)
            assert ref is not None
            file = self._files[index] = open_container(ref)
        return file

    def delta_facts(self, index: int, path: str) -> DeltaFacts:
        """What the chunk delta of container ``index`` at ``path`` says."""
        if self.writer is not None and index == self.writer.index:
            delta = self.writer.delta(path)
            assert delta is not None
            return delta.facts
        ref = self._ref(index)
        assert ref is not None
        facts = container_facts(ref)[path].delta
        assert facts is not None
        return facts

    def stored_chunks(self, index: int, path: str) -> h5py.Dataset:
        """The stored chunks of container ``index``'s delta at ``path``."""
        cached = self._stored.get((index, path))
        if cached is not None:
            return cached
        ref = self._ref(index)
        if ref is None and (self.writer is None or index != self.writer.index):
            raise IntegrityError(
                f"{path!r} reuses a chunk of patch {index}, which record {self.label} does "
                "not hold (merged away?); open the record with all its containers",
                path,
            )
        fact = container_facts(ref).get(path) if ref is not None else None
        if ref is not None and (fact is None or fact.delta is None):
            raise IntegrityError(
                f"{path!r} reuses a chunk of patch {index}, but {ref.path} holds no chunk "
                "delta there (a merged file?); open the record with all its containers",
                path,
            )
        dataset = self.h5(index)[f"{path}/{CHUNKS_NAME}"]
        assert isinstance(dataset, h5py.Dataset)
        if self.writer is None or index != self.writer.index:
            self._stored[(index, path)] = dataset
        return dataset

    def chunked(self, path: str, node: Node | None = None) -> ChunkedDataset:
        """The dataset at ``path`` assembled from its plain storage and chunk deltas.

        On a stub the plain storage is a placeholder template: reading chunks of it
        raises StubError, writing whole chunks works.
        """
        node = node or self.resolve(path)
        writer = self.writer.index if self.writer is not None else None
        committed = node.deltas[:-1] if node.deltas and node.deltas[-1] == writer else node.deltas
        # Deltas only ever get appended, with increasing indices: count and last identify them.
        key = (path, node.created, len(committed), committed[-1] if committed else -1)
        view = self._views.get(key)
        if view is None:
            plain = self.h5(node.created)[path]
            assert isinstance(plain, h5py.Dataset)
            view = ChunkedDataset(
                plain,
                node.created,
                [(index, self.delta_facts(index, path)) for index in committed],
                lambda index: self.stored_chunks(index, path),
                plain_readable=not self.is_stub(node.created),
            )
            if node.created != writer:
                self._views[key] = view
        if len(committed) < len(node.deltas):
            # The open patch's delta, laid over the kept view of the committed ones.
            assert writer is not None
            view = view.extended(writer, self.delta_facts(writer, path))
        return view

    def require_writer(self) -> PatchWriter:
        """The open patch; RecordModeError (or RecordClosedError) when changes cannot be made."""
        self.check_open()
        if self.writer is None:
            if self.read_only:
                raise RecordModeError(
                    f"record {self.label} is open read-only; open it with mode 'r+'"
                )
            raise RecordModeError(
                f"record {self.label} has no open patch; call create_patch() first"
            )
        return self.writer

    # --- closing ------------------------------------------------------------------

    def _close_files(self) -> None:
        self._views = {}
        self._stored = {}
        files, self._files = self._files, {}
        for file in files.values():
            file.close()

    def close(self) -> None:
        """Close every file (the open patch's too) and refuse further use."""
        self.closed = True
        writer, self.writer = self.writer, None
        try:
            if writer is not None:
                # A patch still open here is being abandoned (its file is deleted next).
                writer.room.close_discarded()
        finally:
            self._close_files()
