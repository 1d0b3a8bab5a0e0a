"""``IH5MFRecord``: a record that writes a manifest with every commit, and stubs built from one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py

from ih5.errors import ManifestError
from ih5.format import IH5UserBlock
from ih5.fs import hashsum_bytes
from ih5.manifest.manifest import (
    IH5Manifest,
    IH5UBExtManifest,
    check_manifest,
    manifest_path,
    without_manifest_ext,
)
from ih5.manifest.skeleton import IH5Skeleton
from ih5.record import IH5Record
from ih5.record.commit import Sidecar
from ih5.record.opening import RecordSource

PLACEHOLDER = h5py.Empty("f8")
"""What a stub holds instead of every dataset value and attribute value."""


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
        self._written: IH5Manifest | None = None
        self._committing_stub = False
        self._manifest: IH5Manifest | None = None
        self._manifest_file = Path(manifest_file) if manifest_file is not None else None
        super().__init__(record, mode, **kwargs)

    def _check_opened(self) -> None:
        """Check the newest container's manifest before a writer starts its patch."""
        newest = self.chain.refs[-1] if self.chain.refs else None
        self._manifest = (
            check_manifest(newest.path, newest.user_block, self._manifest_file)
            if newest is not None
            else None
        )

    @property
    def manifest(self) -> IH5Manifest:
        """The manifest of the newest committed container.

        ManifestError (a ValueError, as in metador-core) before the first commit and
        for a plain record not yet committed to as an IH5MFRecord.
        """
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
        return self._manifest is not None

    @property
    def manifest_exts(self) -> dict[str, Any]:
        """Extensions the next manifest will carry: set ones, else the newest manifest's."""
        if self._next_exts is not None:
            return self._next_exts
        return dict(self._manifest.manifest_exts) if self._manifest is not None else {}

    @manifest_exts.setter
    def manifest_exts(self, value: dict[str, Any]) -> None:
        self._next_exts = dict(value)

    def commit_patch(self, manifest_exts: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Commit as IH5Record does, writing the manifest first; ``manifest_exts`` replaces
        the inherited extensions for this and later manifests."""
        if manifest_exts is not None and not kwargs:
            self.manifest_exts = manifest_exts
        super().commit_patch(**kwargs)
        # Only a commit that went through changes the record's manifest (a merge does not).
        self._manifest = self._written
        self._next_exts = None

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
            manifest = IH5Manifest(
                user_block=without_manifest_ext(user_block),
                skeleton=IH5Skeleton.from_tree(self.chain.root),
                manifest_exts=self.manifest_exts,
            )
            raw = manifest.to_bytes()
            ext = IH5UBExtManifest(
                is_stub_container=stub,
                manifest_uuid=manifest.manifest_uuid,
                manifest_hashsum=hashsum_bytes(raw),
            )
            self._written = manifest
            # A copy: update() changes the block given in place, and the caller keeps its own.
            return ext.update(user_block.model_copy(deep=True)), raw

        return manifest_for

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
            stub._committing_stub = False  # patches written on the returned stub are not stubs
        except BaseException:
            if stub.has_patch:
                stub._drop_patch()  # the uncommitted base: nothing of it is published
            stub.close(commit=False)
            raise
        return stub
