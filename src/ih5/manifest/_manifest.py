"""The models of the manifest sidecar (``<container>mf.json``) and of its user block
extension ``ih5mf_v01``, as metador-core names them."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ih5.errors import ManifestError
from ih5.format import MANIFEST_EXT, ContainerSource, IH5UserBlock
from ih5.fs import atomic_write_bytes, hashsum_bytes
from ih5.manifest._fragments import entry_fragment, skeleton_text
from ih5.manifest._sidecar import manifest_bytes, read_checked_manifest, without_manifest_ext
from ih5.manifest._sidecar import manifest_path as manifest_path
from ih5.manifest._skeleton import IH5Skeleton


class IH5UBExtManifest(BaseModel):
    """User block section naming a container's manifest and marking stubs."""

    model_config = ConfigDict(frozen=True)

    is_stub_container: bool
    manifest_uuid: uuid.UUID
    manifest_hashsum: str

    @classmethod
    def get(cls, user_block: IH5UserBlock) -> IH5UBExtManifest | None:
        """Return the extension of ``user_block``, or None for plain containers."""
        data = user_block.ub_exts.get(MANIFEST_EXT)
        return None if data is None else cls.model_validate(data)

    def update(self, user_block: IH5UserBlock) -> IH5UserBlock:
        """Write this extension into ``user_block`` in place (as metador-core does); return it.

        The one change a user block takes after creation: its ``ub_exts`` is replaced by
        a new dict (never changed in place, as copies may share it). ih5 hands out only
        copies of the blocks it holds, and its own code updates copies.
        """
        exts = {**user_block.ub_exts, MANIFEST_EXT: self.model_dump(mode="json")}
        # Frozen models refuse assignment; this is the one deliberate exception.
        object.__setattr__(user_block, "ub_exts", exts)
        return user_block


class IH5Manifest(BaseModel):
    """Everything needed to write a patch for a record without its data."""

    model_config = ConfigDict(frozen=True)

    manifest_uuid: uuid.UUID = Field(default_factory=uuid.uuid4)
    user_block: IH5UserBlock
    skeleton: IH5Skeleton
    manifest_exts: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_userblock(
        cls,
        ub: IH5UserBlock,
        skeleton: IH5Skeleton | None = None,
        exts: dict[str, Any] | None = None,
    ) -> IH5Manifest:
        """A new manifest for the container of ``ub`` (its manifest extension left out)."""
        return cls(
            user_block=without_manifest_ext(ub),
            skeleton=skeleton if skeleton is not None else IH5Skeleton({}),
            manifest_exts=dict(exts) if exts is not None else {},
        )

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def to_bytes(self) -> bytes:
        """The file's bytes: 2-space indented JSON and one trailing newline (FORMAT.md 5)."""
        entries = (
            entry_fragment(path, e.node_type, e.patch_index, e.attrs, e.__pydantic_extra__)
            for path, e in self.skeleton.root.items()
        )
        return manifest_bytes(
            self.manifest_uuid, self.user_block, skeleton_text(entries), self.manifest_exts
        )

    @classmethod
    def from_bytes(cls, raw: bytes, name: str | os.PathLike[str]) -> IH5Manifest:
        """Parse a manifest file's bytes; errors name the file."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}"
                for err in exc.errors()[:5]
            )
            raise ManifestError(
                f"{os.fspath(name)} is not a valid IH5 manifest ({problems})", name
            ) from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IH5Manifest:
        """Read and parse a manifest file."""
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError as exc:
            raise ManifestError(f"manifest {os.fspath(path)} does not exist", path) from exc
        except IsADirectoryError as exc:
            raise ManifestError(f"manifest {os.fspath(path)} is a directory", path) from exc
        return cls.from_bytes(raw, path)

    @classmethod
    def parse_file(cls, path: str | os.PathLike[str]) -> IH5Manifest:  # type: ignore[override]
        """metador-core's name (pydantic 1's) for :meth:`load`."""
        return cls.load(path)

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the manifest atomically; return the hashsum of its bytes."""
        raw = self.to_bytes()
        atomic_write_bytes(path, raw)
        return hashsum_bytes(raw)


def check_manifest(
    container: Path,
    user_block: IH5UserBlock,
    manifest_file: Path | None = None,
    source: ContainerSource | None = None,
) -> IH5Manifest | None:
    """Load and check the manifest a container's user block names (None if it names none).

    ``manifest_file`` is checked instead of the manifest beside the container; a
    remote container's manifest is read from its ``source``.
    """
    checked = read_checked_manifest(container, user_block, manifest_file, source)
    return None if checked is None else checked.parse()
