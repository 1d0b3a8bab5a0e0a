"""A manifest sidecar file: its bytes, where it lives, and reading it checked against the
hashsum its container's user block holds, without the pydantic models (FORMAT.md section 5).

Opening a manifest-backed record reads only what is here; the models
(``IH5Manifest``, ``IH5UBExtManifest``) are loaded for a manifest that is asked for
in full or is not in the plain form.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ih5.errors import ManifestError
from ih5.format import MANIFEST_EXT, ContainerSource, IH5UserBlock, inheritable_exts, manifest_name
from ih5.fs import hashsum_bytes, parse_hashsum
from ih5.manifest._document import (
    ManifestDocument,
    is_uuid,
    known_document,
    plain_document,
    remember_document,
)
from ih5.manifest._fragments import dumps_at, quote

if TYPE_CHECKING:
    from ih5.manifest._manifest import IH5Manifest


@dataclass(frozen=True)
class ManifestExt:
    """The ``ih5mf_v01`` section of a user block: which manifest the container has."""

    is_stub_container: bool
    manifest_uuid: uuid.UUID
    manifest_hashsum: str

    def to_json(self) -> dict[str, Any]:
        """The section as the user block spells it."""
        return {
            "is_stub_container": self.is_stub_container,
            "manifest_uuid": str(self.manifest_uuid),
            "manifest_hashsum": self.manifest_hashsum,
        }

    def update(self, user_block: IH5UserBlock) -> IH5UserBlock:
        """Write this section into ``user_block`` in place (see ``IH5UBExtManifest.update``)."""
        exts = {**user_block.ub_exts, MANIFEST_EXT: self.to_json()}
        object.__setattr__(user_block, "ub_exts", exts)
        return user_block


def manifest_ext(container: Path | str, user_block: IH5UserBlock) -> ManifestExt | None:
    """The manifest section of ``user_block`` (None for a plain container); ManifestError
    if it is damaged."""
    data = user_block.ub_exts.get(MANIFEST_EXT)
    if data is None:
        return None
    if (
        isinstance(data, dict)
        and type(data.get("is_stub_container")) is bool
        and is_uuid(data.get("manifest_uuid"))
        and type(data.get("manifest_hashsum")) is str
    ):
        return ManifestExt(
            data["is_stub_container"], uuid.UUID(data["manifest_uuid"]), data["manifest_hashsum"]
        )
    # Not in the plain form: the model coerces it as it always did, or refuses it.
    from pydantic import ValidationError

    from ih5.manifest._manifest import IH5UBExtManifest

    try:
        ext = IH5UBExtManifest.get(user_block)
    except ValidationError as exc:
        raise ManifestError(
            f"{container} has a damaged {MANIFEST_EXT!r} section in its user block "
            f"({exc.error_count()} problems); restore the container from a copy",
            container,
        ) from exc
    if ext is None:
        return None
    return ManifestExt(ext.is_stub_container, ext.manifest_uuid, ext.manifest_hashsum)


def without_manifest_ext(user_block: IH5UserBlock) -> IH5UserBlock:
    """The user block as a manifest embeds it: without the (circular) manifest extension."""
    return user_block.model_copy(update={"ub_exts": inheritable_exts(user_block.ub_exts)})


def manifest_bytes(
    manifest_uuid: uuid.UUID, user_block: IH5UserBlock, skeleton: str, exts: dict[str, Any]
) -> bytes:
    """A manifest file's bytes from its parts, ``skeleton`` as :func:`skeleton_text` made it:
    the same bytes as ``json.dumps(document, indent=2) + "\\n"``, without encoding the
    skeleton in pure Python."""
    text = (
        f'{{\n  "manifest_uuid": {quote(str(manifest_uuid))},\n'
        f'  "user_block": {dumps_at(json.loads(user_block.to_text()), 1)},\n'
        f'  "skeleton": {skeleton},\n'
        f'  "manifest_exts": {dumps_at(exts, 1)}\n}}\n'
    )
    return text.encode("utf-8")


def manifest_path(container: Path) -> Path:
    """Where the manifest of a container file lives."""
    return container.with_name(manifest_name(container.name))


@dataclass(frozen=True)
class CheckedManifest:
    """The bytes of a container's manifest, checked against the hashsum its user block
    holds; parsed only when asked for (``parse``)."""

    raw: bytes
    label: str
    """Where the manifest was read, for messages."""
    container: str
    """The container whose manifest it is, for messages."""
    manifest_uuid: uuid.UUID
    """The uuid the container's user block expects the manifest to have."""
    hashsum: str
    """The hashsum ``raw`` was checked to have."""

    def parse(self) -> IH5Manifest:
        """The manifest (ManifestError if it is damaged or is another container's)."""
        from ih5.manifest._manifest import IH5Manifest

        manifest = IH5Manifest.from_bytes(self.raw, self.label)
        self._check_uuid(manifest.manifest_uuid)
        return manifest

    def document(self) -> ManifestDocument | IH5Manifest:
        """Its uuid and extensions, refused as :meth:`parse` refuses, without building the
        models when the document is in the plain form (else the parsed manifest).

        A plain document seen before (the same bytes: the same hashsum) is not parsed again.
        """
        document = known_document(self.hashsum)
        if document is None:
            document = plain_document(self.raw)
            if document is None:
                return self.parse()
            remember_document(self.hashsum, document)
        self._check_uuid(document.manifest_uuid)
        return document

    def _check_uuid(self, found: uuid.UUID) -> None:
        if found != self.manifest_uuid:
            raise ManifestError(
                f"manifest {self.label} has uuid {found}, but {self.container} "
                f"expects {self.manifest_uuid}",
                self.label,
            )


def read_checked_manifest(
    container: Path,
    user_block: IH5UserBlock,
    manifest_file: Path | None = None,
    source: ContainerSource | None = None,
) -> CheckedManifest | None:
    """Read the manifest a container's user block names and check its hashsum, as
    ``check_manifest`` does, without parsing it (None if the block names none)."""
    ext = manifest_ext(container, user_block)
    if ext is None:
        return None
    path: Path | str = manifest_path(container) if manifest_file is None else manifest_file
    try:
        if source is not None:
            path = source.describe(manifest_path(container).name)
            raw = source.read_bytes(manifest_path(container).name)
        else:
            raw = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(
            f"{container} names a manifest, but {path} is missing; restore it beside the "
            "container or open the record as a plain IH5Record",
            path,
        ) from exc
    algorithm, _ = parse_hashsum(ext.manifest_hashsum)
    actual = hashsum_bytes(raw, algorithm)
    if actual != ext.manifest_hashsum:
        raise ManifestError(
            f"manifest {path} does not match {container} (hashsum {actual}, the container "
            f"expects {ext.manifest_hashsum}); it was modified or belongs to another container",
            path,
        )
    return CheckedManifest(raw, str(path), str(container), ext.manifest_uuid, actual)
