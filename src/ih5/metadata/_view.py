"""Reading the sidecar, and the merged plate view that readers see.

Readers read without the lock: writers replace the file atomically, so a
read sees one whole document, old or new.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ih5.errors import CorruptDocumentError, MetadataNotFoundError, MetadataValidationError
from ih5.fs import read_json
from ih5.metadata._model import ComponentMap, PlateMetadata, SubdirectoryRecord
from ih5.metadata._validation import parse_document

COMPONENT_FIELDS = ("channels", "wells", "sites", "z_indexes")


def read_plate_document(path: str | os.PathLike[str]) -> Any:
    """Read the sidecar at ``path`` as plain JSON, unvalidated.

    Raises :class:`MetadataNotFoundError` when it is missing and
    :class:`MetadataValidationError` when it is not JSON.
    """
    try:
        return read_json(path)
    except FileNotFoundError as exc:
        raise MetadataNotFoundError(
            f"no plate metadata at {os.fspath(path)}; is this a plate root?", path
        ) from exc
    except CorruptDocumentError as exc:
        problem = f"(document): not valid JSON ({exc.__cause__})"
        raise MetadataValidationError(
            f"{os.fspath(path)} is not valid plate metadata: {problem}; repair or restore it",
            path,
            (problem,),
        ) from exc


def load_plate_metadata(path: str | os.PathLike[str]) -> PlateMetadata:
    """Read and validate the sidecar at ``path``.

    Raises :class:`MetadataNotFoundError` when it is missing, and one
    :class:`MetadataValidationError` listing every problem (with its JSON
    path) when its content does not fit the format.
    """
    return parse_document(read_plate_document(path), path)


def main_subdirectory(doc: PlateMetadata) -> str | None:
    """Name the plate's main sub-directory: the first flagged ``main``, else the first one.

    Returns None when the plate has no sub-directories yet.
    """
    for name, record in doc.subdirectories.items():
        if record.is_main:
            return name
    return next(iter(doc.subdirectories), None)


def _union(maps: Iterable[ComponentMap | None]) -> ComponentMap | None:
    """Merge component maps; for a key present in several, the earlier map wins."""
    merged: ComponentMap | None = None
    for mapping in maps:
        if mapping is None:
            continue
        merged = merged if merged is not None else {}
        for key, value in mapping.items():
            merged.setdefault(key, value)
    return merged


def plate_view(doc: PlateMetadata) -> SubdirectoryRecord:
    """Merge the sub-directories into the one record a reader of the whole plate needs.

    The main record's fields, with ``image_files`` concatenated over all
    sub-directories in order, the component maps (channels, wells, sites,
    z indexes) unioned with earlier records winning, and the plate-level
    ``available_backends`` (the main record's when the plate has none).
    A plate without sub-directories gives an empty record.
    """
    name = main_subdirectory(doc)
    base = doc.subdirectories[name] if name is not None else SubdirectoryRecord()
    records = list(doc.subdirectories.values())
    update: dict[str, object] = {
        "image_files": tuple(path for record in records for path in record.image_files),
        "available_backends": (
            doc.available_backends
            if doc.available_backends is not None
            else base.available_backends
        ),
    }
    for field in COMPONENT_FIELDS:
        update[field] = _union(getattr(record, field) for record in records)
    return base.model_copy(update=update)
