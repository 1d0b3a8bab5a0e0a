"""``Chain``: a record's committed containers, their resolved tree and their open files.

The handle (``IH5Record``) decides what may change; the chain is what views,
merge and diff read through: resolve a path, open the data of a node, list
the containers. Once closed, every call raises RecordClosedError and no file
stays open.
"""

from __future__ import annotations

from collections.abc import Sequence

import h5py

from ih5.errors import NodeNotFoundError, RecordClosedError, RecordModeError, StubError
from ih5.format import ContainerRef, IH5UserBlock
from ih5.format.extensions import is_stub_container
from ih5.record.opening import build_tree, open_container
from ih5.record.patch import PatchWriter
from ih5.record.tree import Node, lookup


class Chain:
    """The committed containers of one record (oldest first) and the open patch, if any."""

    def __init__(self, label: str, refs: Sequence[ContainerRef] = (), read_only: bool = True):
        self.label = label
        """The record, for messages (``DIR/NAME``)."""
        self.read_only = read_only
        self.refs: list[ContainerRef] = list(refs)
        self.root: Node = build_tree(self.refs)
        self.writer: PatchWriter | None = None
        """The open, uncommitted patch, or None."""
        self.closed = False
        self._files: dict[int, h5py.File] = {}

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
        self.refs = list(refs)
        self.root = build_tree(self.refs)

    def append(self, ref: ContainerRef) -> None:
        """Add our newly committed container (its changes are in the tree already)."""
        self.refs.append(ref)

    def rebuild(self) -> None:
        """Forget changes of a discarded patch: resolve the committed chain again."""
        self.root = build_tree(self.refs)

    # --- reading ------------------------------------------------------------------

    def resolve(self, path: str) -> Node:
        """The node at ``path``; NodeNotFoundError if there is none."""
        self.check_open()
        node = lookup(self.root, path)
        if node is None:
            raise NodeNotFoundError(f"no object at {path!r} in record {self.label}", path)
        return node

    def data_file(self, index: int, path: str) -> h5py.File:
        """The file holding what container ``index`` wrote at ``path``; refuses stub data."""
        self.check_open()
        first = self.refs[0] if self.refs else None
        if (
            first is not None
            and index == first.user_block.patch_index
            and is_stub_container(first.user_block.ub_exts)
            and (self.writer is None or index != self.writer.index)
        ):
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
            ref = next(r for r in self.refs if r.user_block.patch_index == index)
            file = self._files[index] = open_container(ref.path)
        return file

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
