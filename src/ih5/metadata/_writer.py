"""The writer OpenHCS pipelines use: locked, atomic updates of the plate metadata sidecar.

Each method is one read-modify-write under the sidecar's lock (``ih5.fs``):
records are validated before the lock is taken, the document is re-read
under the lock, changed, and replaced atomically. Everything the caller did
not name (other records, unknown fields, key order) is left as it was.

Requests are data (sub-directory records, plate backends), so writers share
writes (group commit, ``ih5.fs.grouped_update_json``): a writer that finds the
lock taken queues its request in ``.openhcs_metadata.json.ih5-queue/`` and
whoever holds the lock applies every queued request, in arrival order, in one
replace. A call returns once a durably replaced document holds its request.
An error met under the lock (a corrupt or legacy document, a full disk)
reaches each caller whose request it stops: its request is withdrawn. A
request whose writer was killed after queueing it may still be applied by the
next writer, in its place in the order, as if it had been killed just after
its own write.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ih5.errors import (
    CorruptDocumentError,
    Ih5Error,
    LossyDocumentError,
    MetadataValidationError,
    MetadataWriteError,
)
from ih5.fs import grouped_update_json
from ih5.metadata._model import SubdirectoryRecord
from ih5.metadata._validation import (
    AVAILABLE_BACKENDS,
    SUBDIRECTORIES,
    check_backends,
    check_records,
    detect_legacy,
)

DEFAULT_TIMEOUT = 30.0
EMPTY_DOCUMENT: dict[str, Any] = {SUBDIRECTORIES: {}}

Record = Mapping[str, Any] | SubdirectoryRecord
Document = dict[str, Any]


@dataclass(frozen=True)
class MetadataUpdateRequest:
    """One sub-directory record and, optionally, the plate's backends, written in one update."""

    metadata_path: str | os.PathLike[str]
    sub_dir: str
    metadata: Record
    available_backends: Mapping[str, bool] | None = None


def _subdirectories(document: Any, path: Path) -> dict[str, Any]:
    """Return the document's record mapping, refusing documents it would be wrong to extend."""
    if not isinstance(document, dict):
        problem = f"(document): should be a JSON object, got {type(document).__name__}"
    elif detect_legacy(document):
        problem = "subdirectories: missing; legacy flat format, run `ih5 meta migrate PLATE` first"
    elif not isinstance(document.setdefault(SUBDIRECTORIES, {}), dict):
        problem = "subdirectories: should be a JSON object"
    else:
        records: dict[str, Any] = document[SUBDIRECTORIES]
        return records
    raise MetadataValidationError(f"{path}: {problem}", path, (problem,))


def _request(records: Mapping[str, Document], backends: dict[str, bool] | None) -> Document:
    """A queueable update: the records to replace, then the plate's backends (or None)."""
    return {"records": dict(records), "backends": backends}


def _applier(path: Path) -> Callable[[Any, Any], Any]:
    """Build the update every writer of ``path`` applies to each request, its own or queued."""

    def apply(document: Any, request: Document) -> Any:
        records: Mapping[str, Document] = request["records"]
        backends: dict[str, bool] | None = request["backends"]
        if document is None:
            if not records:
                # Only backends, and the sidecar vanished between the check and the lock.
                raise _missing(path)
            document = copy.deepcopy(EMPTY_DOCUMENT)
        subdirectories = _subdirectories(document, path)
        for sub_dir, record in records.items():
            # Assigning to an existing key keeps its position: order is first insertion.
            subdirectories[sub_dir] = record
        if backends is not None:
            document[AVAILABLE_BACKENDS] = backends
        return document

    return apply


class AtomicMetadataWriter:
    """Update ``openhcs_metadata.json`` safely while many processes update it too.

    ``timeout`` is how long (seconds) to wait for the sidecar's lock. Every
    failure to update raises :class:`MetadataWriteError` naming the file,
    with the underlying error as its cause; records with a wrong shape raise
    :class:`MetadataValidationError` before anything is touched.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    def update_subdirectory_metadata(
        self, metadata_path: str | os.PathLike[str], sub_dir: str, metadata: Record
    ) -> None:
        """Replace one sub-directory record; create the sidecar if it is missing."""
        self.merge_subdirectory_metadata(metadata_path, {sub_dir: metadata})

    def merge_subdirectory_metadata(
        self, metadata_path: str | os.PathLike[str], subdirectory_updates: Mapping[str, Record]
    ) -> None:
        """Replace several sub-directory records in one update; create the sidecar if missing."""
        path = Path(metadata_path)
        records = check_records(subdirectory_updates, path)
        self._update(path, _request(records, None))

    def update_available_backends(
        self, metadata_path: str | os.PathLike[str], available_backends: Mapping[str, bool]
    ) -> None:
        """Set the plate-level ``available_backends``; the sidecar must already exist."""
        path = Path(metadata_path)
        backends = check_backends(available_backends, path)
        if not path.exists():
            raise _missing(path)
        # Not queued: a queued request must not fail for a reason of its own (a missing file).
        self._update(path, _request({}, backends), queue=False)

    def create_or_update_metadata(self, request: MetadataUpdateRequest) -> None:
        """Write one record and, if given, the plate-level backends, in one update."""
        path = Path(request.metadata_path)
        records = check_records({request.sub_dir: request.metadata}, path)
        backends = (
            None
            if request.available_backends is None
            else check_backends(request.available_backends, path)
        )
        self._update(path, _request(records, backends))

    def _update(self, path: Path, request: Document, *, queue: bool = True) -> None:
        try:
            grouped_update_json(path, request, _applier(path), self.timeout, queue=queue)
        except MetadataWriteError:
            raise
        except LossyDocumentError as exc:
            raise MetadataWriteError(f"cannot update {path}: {exc}", path) from exc
        except CorruptDocumentError as exc:
            raise MetadataWriteError(
                f"cannot update {path}: it is not valid JSON and was left as it was; "
                "repair it or move it aside",
                path,
            ) from exc
        except (Ih5Error, OSError) as exc:
            raise MetadataWriteError(f"cannot update {path}: {exc}", path) from exc


def _missing(path: Path) -> MetadataWriteError:
    return MetadataWriteError(
        f"cannot set available backends: {path} does not exist; write a sub-directory record first",
        path,
    )
