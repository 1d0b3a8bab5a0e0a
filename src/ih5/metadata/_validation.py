"""Checking plate metadata against the models, reporting every problem with its JSON path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ih5.errors import MetadataValidationError
from ih5.fs import encode_json_compact
from ih5.metadata._model import RECORD_FIELDS, BackendMap, PlateMetadata, SubdirectoryRecord

SUBDIRECTORIES = "subdirectories"
AVAILABLE_BACKENDS = "available_backends"

_BACKENDS = TypeAdapter(BackendMap)
_OBJECT_ERRORS = {"model_type", "dict_type"}
_SCALARS = (str, int, float, bool, type(None))


def _json_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            path += " (key)"
        else:
            path = f"{path}.{part}" if path else part
    return path or "(document)"


def problems_from(error: ValidationError, prefix: str = "") -> list[str]:
    """Turn a pydantic error into ``"<json path>: <what is wrong>"`` lines, one per problem."""
    problems = []
    for detail in error.errors():
        where = _json_path(prefix, detail["loc"])
        what = "should be a JSON object" if detail["type"] in _OBJECT_ERRORS else detail["msg"]
        value = detail.get("input")
        if detail["type"] != "missing" and isinstance(value, _SCALARS):
            what += f", got {value!r}"
        problems.append(f"{where}: {what}")
    return problems


def detect_legacy(doc: Any) -> bool:
    """Tell whether ``doc`` is the legacy format: one flat record at top level, no sub-directories.

    A top-level ``available_backends`` alone is not a sign: the current format has one too.
    """
    if not isinstance(doc, Mapping) or SUBDIRECTORIES in doc:
        return False
    return any(key in RECORD_FIELDS and key != AVAILABLE_BACKENDS for key in doc)


def _record_problems(sub_dir: Any, record: Any) -> list[str]:
    where = f"{SUBDIRECTORIES}.{sub_dir}"
    problems = []
    if not isinstance(sub_dir, str) or not sub_dir:
        problems.append(
            f"{SUBDIRECTORIES}: sub-directory names are non-empty strings, got {sub_dir!r}"
        )
    if not isinstance(record, Mapping):
        return [*problems, f"{where}: record should be a JSON object, got {type(record).__name__}"]
    bad_keys = [key for key in record if not isinstance(key, str)]
    if bad_keys:
        problems.append(f"{where}: field names should be strings, got {bad_keys!r}")
    try:
        SubdirectoryRecord.model_validate(record)
    except ValidationError as exc:
        problems.extend(problems_from(exc, where))
    return problems


def as_record_data(record: Mapping[str, Any] | SubdirectoryRecord) -> Any:
    """Return what a record is written as: a mapping as given, a model as the fields it holds."""
    if isinstance(record, SubdirectoryRecord):
        return record.model_dump(mode="json", exclude_unset=True)
    return dict(record) if isinstance(record, Mapping) else record


def check_records(
    records: Mapping[str, Any], path: str | os.PathLike[str]
) -> dict[str, dict[str, Any]]:
    """Validate records about to be written to ``path``; return them as plain dicts.

    Every problem of every record is reported at once. Values that JSON
    cannot hold raise :class:`ih5.errors.UnserializableDataError`.
    """
    if not isinstance(records, Mapping):
        raise MetadataValidationError(
            f"refusing to write {os.fspath(path)}: records should be given as "
            f"{{sub_dir: record}}, got {type(records).__name__}",
            path,
        )
    data = {sub_dir: as_record_data(record) for sub_dir, record in records.items()}
    problems = [p for sub_dir, record in data.items() for p in _record_problems(sub_dir, record)]
    if problems:
        raise MetadataValidationError(
            f"refusing to write {os.fspath(path)}: " + "; ".join(problems), path, tuple(problems)
        )
    encode_json_compact(data, path)
    return data


def check_backends(backends: Any, path: str | os.PathLike[str]) -> dict[str, bool]:
    """Validate a ``{backend: bool}`` map about to be written to ``path``; return a copy."""
    try:
        _BACKENDS.validate_python(backends)
    except ValidationError as exc:
        problems = tuple(problems_from(exc, AVAILABLE_BACKENDS))
        raise MetadataValidationError(
            f"refusing to write {os.fspath(path)}: " + "; ".join(problems), path, problems
        ) from None
    return dict(backends)


MAX_NESTING = 100
"""Deepest nesting a document may have: pydantic cannot dump one nested past 255 levels
(so it could be read but not shown or written back); real documents nest 5 deep."""


def _nests_deeper(doc: Any, limit: int) -> bool:
    """Tell whether objects and arrays in ``doc`` nest deeper than ``limit``, level by level."""
    level = [doc]
    for _ in range(limit + 1):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list))
        ]
        if not level:
            return False
    return True


def _check_nesting(document: PlateMetadata, path: str | os.PathLike[str]) -> PlateMetadata:
    """Refuse deep nesting where the models allow any JSON (unknown fields, objectives)."""
    free = [document.model_extra] + [
        part
        for record in document.subdirectories.values()
        for part in (record.model_extra, record.objectives)
    ]
    if any(part and _nests_deeper(part, MAX_NESTING) for part in free):
        problem = f"(document): nests deeper than {MAX_NESTING} levels"
        raise MetadataValidationError(
            f"{os.fspath(path)} is not valid plate metadata: {problem}", path, (problem,)
        )
    return document


def parse_document(doc: Any, path: str | os.PathLike[str]) -> PlateMetadata:
    """Validate a whole document read from ``path``; every problem is listed in the error."""
    try:
        return _check_nesting(PlateMetadata.model_validate(doc), path)
    except ValidationError as exc:
        problems = problems_from(exc)
    if detect_legacy(doc):
        problems = [
            f"{SUBDIRECTORIES}: missing; this is the legacy flat format, "
            "migrate it with `ih5 meta migrate PLATE`"
        ]
    raise MetadataValidationError(
        f"{os.fspath(path)} is not valid plate metadata: " + "; ".join(problems),
        path,
        tuple(problems),
    )
