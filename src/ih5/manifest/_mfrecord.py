"""``IH5MFRecord``: a record that writes a manifest with every commit, and stubs built from one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py

from ih5.errors import ManifestError, NotAnIH5ContainerError
from ih5.format import IH5UserBlock, discover_containers, read_user_block, split_record_path
from ih5.fs import hashsum_bytes
from ih5.manifest import _fragments as fragments
from ih5.manifest._document import ManifestDocument
from ih5.manifest._layout import layout_of
from ih5.manifest._sidecar import (
    CheckedManifest,
    ManifestExt,
    manifest_bytes,
    manifest_ext,
    manifest_path,
    read_checked_manifest,
    without_manifest_ext,
)
from ih5.record import (
    IH5Record,
    Node,
    RecordSource,
    Sidecar,
    create_from_layout,
    lookup,
    read_facts,
    walk,
)

if TYPE_CHECKING:  # the models are loaded when a manifest is asked for in full
    from ih5.manifest._manifest import IH5Manifest

PLACEHOLDER = h5py.Empty("f8")
"""What a stub holds instead of every dataset value and attribute value."""


def _template(layout: dict[str, Any]) -> h5py.Dataset:
    """An empty chunked dataset with ``layout``, in a file that lives in memory only."""
    scratch = h5py.File(f"template-{id(layout)}", "w", driver="core", backing_store=False)
    return create_from_layout(scratch, "template", layout)


class IH5MFRecord(IH5Record):
    """An IH5Record whose every commit writes a manifest sidecar (FORMAT.md section 5).

    Opening checks that the newest container's manifest exists and matches
    (``manifest_file`` names the one to check instead of ``<newest container>mf.json``).
    A plain record opened this way becomes manifest-backed with its next commit.
    """

    def __init__(
        self,
        record: RecordSource,
        mode: str = "r",
        manifest_file: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self._next_exts: dict[str, Any] | None = None
        self._written: _Written | None = None
        self._committing_stub = False
        self._changed: Collection[str] | None = None
        self._previous: fragments.Fragments | None = None
        self._manifest: IH5Manifest | None = None
        self._checked: CheckedManifest | None = None
        """The newest manifest's bytes as opening found and checked them."""
        self._document: ManifestDocument | IH5Manifest | None = None
        """The uuid and extensions of the checked manifest (parsed only when asked for)."""
        self._newest: _Written | None = None
        """The newest manifest when this handle wrote it (parsed only when asked for)."""
        self._layouts: dict[str, dict[str, Any]] | None = None
        self._manifest_file = Path(manifest_file) if manifest_file is not None else None
        super().__init__(record, mode, **kwargs)

    def _check_opened(self) -> None:
        """Check the newest container's manifest before a writer starts its patch."""
        newest = self.chain.refs[-1] if self.chain.refs else None
        self._newest = None
        self._manifest = None
        self._checked = (
            read_checked_manifest(
                newest.path, newest.user_block, self._manifest_file, newest.source
            )
            if newest is not None
            else None
        )
        # Damaged or another's: refused now. Its skeleton is parsed only when asked for.
        self._document = self._checked.document() if self._checked is not None else None
        if not isinstance(self._document, ManifestDocument):
            self._manifest = self._document  # not in the plain form: parsed already

    @property
    def manifest(self) -> IH5Manifest:
        """The manifest of the newest committed container.

        ManifestError (a ValueError, as in metador-core) before the first commit and
        for a plain record not yet committed to as an IH5MFRecord.
        """
        if self._manifest is None and self._newest is not None:
            from ih5.manifest._manifest import IH5Manifest

            self._manifest = IH5Manifest.from_bytes(self._newest.raw, "<manifest just written>")
        if self._manifest is None and self._checked is not None:
            self._manifest = self._checked.parse()
        if self._manifest is None:
            raise ManifestError(
                f"record {self.chain.label} has no manifest yet; commit a patch with "
                "IH5MFRecord to write one",
                self.chain.label,
            )
        return self._manifest

    @property
    def has_manifest(self) -> bool:
        """True when the newest committed container has a manifest."""
        return self._checked is not None or self._newest is not None

    @property
    def manifest_exts(self) -> dict[str, Any]:
        """Extensions the next manifest will carry: set ones, else the newest manifest's."""
        if self._next_exts is not None:
            return self._next_exts
        if self._newest is not None:
            return dict(self._newest.exts)
        if self._document is not None and self._checked is not None:
            return dict(self._document.manifest_exts)
        return {}

    @manifest_exts.setter
    def manifest_exts(self, value: dict[str, Any]) -> None:
        self._next_exts = dict(value)

    def commit_patch(self, manifest_exts: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Commit as IH5Record does, writing the manifest first; ``manifest_exts`` replaces
        the inherited extensions for this and later manifests."""
        if manifest_exts is not None and not kwargs:
            self.manifest_exts = manifest_exts
        writer = self.chain.writer
        if writer is not None and not writer.is_base and self.has_manifest:
            # The paths the patch holds: what the next manifest changes of the newest one.
            self._changed = read_facts(writer.file).keys()
            self._previous = (
                self._newest.entries if self._newest is not None else self._entries_on_disk()
            )
            if self._previous is None:
                self._changed = None  # the newest entries are unknown: rebuild them all
        # The open patch's file is closed before its manifest is made: read layouts now.
        self.chain.check_open()
        # Only the entries the next manifest rebuilds need them (all, without a previous one).
        self._layouts = {
            path: layout
            for path, node in self._rebuilt_nodes()
            if not node.is_group
            for layout in [self._describe(path, node)]
            if layout is not None
        }
        before = self.chain.newest
        try:
            super().commit_patch(**kwargs)
        except BaseException:
            if self.chain.newest is not before:  # published; only a later step failed
                self._took(self._written)
            raise
        finally:
            self._changed = None
            self._previous = None
            self._layouts = None
        # Only a commit that went through changes the record's manifest (a merge does not).
        if self.chain.newest is not before:
            self._took(self._written)
        self._next_exts = None

    def _rebuilt_nodes(self) -> Iterator[tuple[str, Node]]:
        """The nodes whose manifest entries the next commit writes anew."""
        if self._changed is None:
            yield from walk(self.chain.root)
            return
        index = self.chain.writer.index if self.chain.writer is not None else -1
        for path in self._changed:
            node = lookup(self.chain.root, path)
            if node is None:
                continue
            # As fragments.updated: a node this patch created is rebuilt with its subtree,
            # any other node the patch holds (a virtual group) only by itself.
            yield from walk(node, path) if node.created == index else [(path, node)]

    def _took(self, written: _Written | None) -> None:
        """The manifest just published is the newest one now."""
        if written is not None:
            self._newest = written
            self._manifest = None
            self._checked = None
            self._document = None

    def _describe(self, path: str, node: Node) -> dict[str, Any] | None:
        """The layout of a chunked dataset for the manifest (None for contiguous ones)."""
        if self._layouts is not None:
            return self._layouts.get(path)
        return layout_of(self, path, node)

    def _patch_is_empty(self) -> bool:
        """New manifest extensions are a change worth a commit of their own."""
        return super()._patch_is_empty() and self._next_exts is None

    def _sidecar(self) -> Sidecar:
        """The manifest of the state being committed (or merged), published after its container.

        The commit protocol stages it before sealing the container, so a container
        published without its manifest is completed from the staged one.
        """
        stub = self._committing_stub

        def manifest_for(user_block: IH5UserBlock) -> tuple[IH5UserBlock, bytes]:
            entries = self._next_entries(user_block.patch_index)
            manifest_uuid = uuid.uuid4()
            exts = self.manifest_exts
            raw = manifest_bytes(
                manifest_uuid,
                without_manifest_ext(user_block),
                fragments.skeleton_text(entries.values()),
                exts,
            )
            ext = ManifestExt(stub, manifest_uuid, hashsum_bytes(raw))
            self._written = _Written(raw, dict(exts), entries)
            # A copy: update() changes the block given in place, and the caller keeps its own.
            return ext.update(user_block.model_copy(deep=True)), raw

        return manifest_for

    def _next_entries(self, index: int) -> fragments.Fragments:
        """The skeleton entries of the state being sealed: the newest manifest's, updated by
        the paths the patch holds, when both are known; else from the whole tree."""
        previous = self._previous
        if self._changed is None or previous is None:
            return fragments.from_tree(self.chain.root, self._describe)
        return fragments.updated(previous, self._changed, self.chain.root, index, self._describe)

    def _entries_on_disk(self) -> fragments.Fragments | None:
        """The entries of the newest manifest as its file spells them (None if unknown)."""
        return None if self._checked is None else fragments.from_manifest_bytes(self._checked.raw)

    @classmethod
    def _files_beside(cls, container: Path) -> list[Path]:
        return [manifest_path(container)]

    @classmethod
    def create_stub(
        cls, record: str | os.PathLike[str], manifest_file: str | os.PathLike[str]
    ) -> IH5MFRecord:
        """Build a stub base container at ``record`` from a manifest alone; return it open.

        The stub has the manifest's structure with placeholders for every value and
        the manifest's user block (prev_patch null), so a patch committed on it
        applies to the real record. It is returned as metador-core does: open for
        writing (mode r+, holding the record's writer lock) with no open patch;
        close it, or use it in ``with``, and ``create_patch()`` to write a patch.
        """
        from ih5.manifest._manifest import IH5Manifest

        manifest = IH5Manifest.load(manifest_file)
        base = manifest.user_block.model_copy(update={"prev_patch": None, "hdf5_hashsum": None})
        stub = cls(record, "x", base_user_block=base)
        try:
            writer = stub.chain.require_writer()
            for path, entry in manifest.skeleton.root.items():
                if path != "/":
                    layout = manifest.skeleton.layout(path)
                    if entry.node_type == "group":
                        writer.create_group(path)
                    elif layout is not None:
                        # Chunked: an empty dataset of the real layout takes chunk writes.
                        writer.copy_dataset(path, _template(layout), {})
                    else:
                        writer.create_dataset(path, data=PLACEHOLDER)
                for name in entry.attrs:
                    writer.set_attr(path, name, PLACEHOLDER)
            stub._committing_stub = True
            stub.commit_patch(manifest_exts=manifest.manifest_exts)
            stub._committing_stub = False  # patches written on the returned stub are not stubs
        except BaseException:
            if stub.has_patch:
                stub._drop_patch()  # the uncommitted base: nothing of it is published
            stub.close(commit=False)
            raise
        return stub


def open_record(record: str | os.PathLike[str], mode: str = "r", **kwargs: Any) -> IH5Record:
    """Open ``record`` (DIR/NAME) as an IH5MFRecord when its newest container names a
    manifest, else as an IH5Record: a merge or patch then keeps the kind it has."""
    directory, name = split_record_path(record)
    files = discover_containers(directory, name)
    backed = False
    if files:
        try:
            backed = manifest_ext(files[-1], read_user_block(files[-1])) is not None
        except (NotAnIH5ContainerError, ValueError, OSError):
            backed = False  # opening says what is wrong with it
    record_class = IH5MFRecord if backed else IH5Record
    return record_class(record, mode, **kwargs)


@dataclass(frozen=True)
class _Written:
    """A manifest this handle wrote: its bytes, extensions and skeleton entries as text."""

    raw: bytes
    exts: dict[str, Any]
    entries: fragments.Fragments
