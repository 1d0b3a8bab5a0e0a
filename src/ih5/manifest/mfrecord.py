"""``IH5MFRecord``: a record that writes a manifest with every commit, and stubs built from one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

import h5py

from ih5.format import IH5UserBlock
from ih5.fs import hashsum_bytes
from ih5.manifest import fragments
from ih5.manifest.manifest import (
    IH5Manifest,
    IH5UBExtManifest,
    exts_from_bytes,
    manifest_bytes,
    parse_checked_manifest,
    read_checked_manifest,
    uuid_from_bytes,
    without_manifest_ext,
)
from ih5.record import IH5Record
from ih5.record.commit import Sidecar
from ih5.record.facts import read_facts
from ih5.record.opening import RecordSource

PLACEHOLDER = h5py.Empty("f8")
"""What a stub holds instead of every dataset value and attribute value."""


class IH5MFRecord(IH5Record):
    """An IH5Record whose every commit writes a manifest sidecar (FORMAT.md section 5).

    Opening checks that the newest container's manifest exists and matches.
    A plain record opened this way becomes manifest-backed with its next commit.
    """

    def __init__(self, record: RecordSource, mode: str = "r", **kwargs: Any) -> None:
        super().__init__(record, mode, **kwargs)
        self._next_exts: dict[str, Any] | None = None
        self._written: _Newest | None = None
        self._committing_stub = False
        self._changed: Collection[str] | None = None
        self._newest: _Newest | None = None
        try:
            newest = self.chain.refs[-1] if self.chain.refs else None
            checked = (
                read_checked_manifest(newest.path, newest.user_block)
                if newest is not None
                else None
            )
            if checked is not None and newest is not None:
                self._newest = _Newest(*checked, newest.path)
                if uuid_from_bytes(checked[0]) != checked[1].manifest_uuid:
                    self._newest.parsed()  # says what is wrong, or parses another layout
        except BaseException:
            self.close(commit=False)
            raise

    @property
    def manifest(self) -> IH5Manifest | None:
        """The manifest of the newest committed container (None before the first commit)."""
        return None if self._newest is None else self._newest.parsed()

    @property
    def manifest_exts(self) -> dict[str, Any]:
        """Extensions the next manifest will carry: set ones, else the newest manifest's."""
        if self._next_exts is not None:
            return self._next_exts
        return self._newest.exts() if self._newest is not None else {}

    @manifest_exts.setter
    def manifest_exts(self, value: dict[str, Any]) -> None:
        self._next_exts = dict(value)

    def commit_patch(self, manifest_exts: dict[str, Any] | None = None) -> None:
        """Commit as IH5Record does, writing the manifest first; ``manifest_exts`` replaces
        the inherited extensions for this and later manifests."""
        if manifest_exts is not None:
            self.manifest_exts = manifest_exts
        writer = self.chain.writer
        if writer is not None and not writer.is_base and self._newest is not None:
            # The paths the patch holds: what the next manifest changes of the newest one.
            self._changed = read_facts(writer.file).keys()
        before = self.chain.newest
        try:
            super().commit_patch()
        except BaseException:
            if self.chain.newest is not before:  # published; only a later step failed
                self._newest = self._written
            raise
        finally:
            self._changed = None
        # Only a commit that went through changes the record's manifest (a merge does not).
        self._newest = self._written
        self._next_exts = None

    def _sidecar(self) -> Sidecar:
        """The manifest of the state being committed (or merged), published after its container.

        The commit protocol stages it before sealing the container, so a container
        published without its manifest is completed from the staged one.
        """
        stub = self._committing_stub

        def manifest_for(user_block: IH5UserBlock) -> tuple[IH5UserBlock, bytes]:
            entries = self._next_entries(user_block.patch_index)
            manifest_uuid = uuid.uuid4()
            raw = manifest_bytes(
                manifest_uuid,
                without_manifest_ext(user_block),
                fragments.skeleton_text(entries.values()),
                self.manifest_exts,
            )
            ext = IH5UBExtManifest(
                is_stub_container=stub,
                manifest_uuid=manifest_uuid,
                manifest_hashsum=hashsum_bytes(raw),
            )
            self._written = _Newest(raw, ext, None, entries)
            return ext.update(user_block), raw

        return manifest_for

    def _next_entries(self, index: int) -> fragments.Fragments:
        """The skeleton entries of the state being sealed: the newest manifest's, updated by
        the paths the patch holds, when both are known; else from the whole tree."""
        previous = self._newest.entries() if self._newest is not None else None
        if self._changed is None or previous is None:
            return fragments.from_tree(self.chain.root)
        return fragments.updated(previous, self._changed, self.chain.root, index)

    @classmethod
    def create_stub(
        cls, record: str | os.PathLike[str], manifest_file: str | os.PathLike[str]
    ) -> Path:
        """Build a stub base container at ``record`` from a manifest alone; return its path.

        The stub has the manifest's structure with placeholders for every value and
        the manifest's user block (prev_patch null), so a patch committed on it
        applies to the real record.
        """
        manifest = IH5Manifest.load(manifest_file)
        base = manifest.user_block.model_copy(update={"prev_patch": None, "hdf5_hashsum": None})
        stub = cls(record, "x", base_user_block=base)
        try:
            writer = stub.chain.require_writer()
            for path, entry in manifest.skeleton.root.items():
                if path != "/":
                    if entry.node_type == "group":
                        writer.create_group(path)
                    else:
                        writer.create_dataset(path, data=PLACEHOLDER)
                for name in entry.attrs:
                    writer.set_attr(path, name, PLACEHOLDER)
            stub._committing_stub = True
            stub.commit_patch(manifest_exts=manifest.manifest_exts)
        except BaseException:
            if stub.has_patch:
                stub.discard_patch()
            stub.close(commit=False)
            raise
        created = stub.containers[0]
        stub.close()
        return created


class _Newest:
    """The newest manifest: its checked bytes, parsed (and its entries split) on demand."""

    def __init__(
        self,
        raw: bytes,
        ext: IH5UBExtManifest,
        container: Path | None,
        entries: fragments.Fragments | None = None,
    ) -> None:
        self.raw = raw
        self._ext = ext
        self._container = container
        self._entries = entries
        self._parsed: IH5Manifest | None = None

    def parsed(self) -> IH5Manifest:
        if self._parsed is None:
            if self._container is not None:
                self._parsed = parse_checked_manifest(self.raw, self._ext, self._container)
            else:
                self._parsed = IH5Manifest.from_bytes(self.raw, "<manifest just written>")
        return self._parsed

    def exts(self) -> dict[str, Any]:
        found = exts_from_bytes(self.raw) if self._parsed is None else None
        return found if found is not None else dict(self.parsed().manifest_exts)

    def entries(self) -> fragments.Fragments | None:
        """Its skeleton entries as text; None if its layout is not the one ih5 writes."""
        if self._entries is None:
            self._entries = fragments.from_manifest_bytes(self.raw)
        return self._entries
