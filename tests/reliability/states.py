"""What readers see in a record or sidecar, what a later writer does, and what garbage remains."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ih5 import IH5MFRecord, IH5Record, IH5Skeleton
from ih5.format import discover_containers, split_record_path
from ih5.fs import is_temp_name
from ih5.record import IH5Dataset, IH5Group

ABSENT = "absent"
"""The state of a record or sidecar that does not exist (yet)."""

EMPTY: dict[str, Any] = {"/": ("group", {})}
"""The content of a record without members and attributes."""

CONTINUED = "continued"
"""The root attribute a later writer sets to show it could commit on top."""


def plain(value: Any) -> Any:
    """A value read through h5py as plain, comparable Python data."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, h5py.Empty):
        return ("empty", str(value.dtype))
    return value


def content(group: IH5Group, *, values: bool = True) -> dict[str, Any]:
    """Everything a reader sees: path -> kind, dtype, value and attributes.

    ``values=False`` lists only paths, kinds and attribute names (a stub's
    placeholders cannot be read).
    """
    seen: dict[str, Any] = {}

    def describe(name: str, obj: IH5Group | IH5Dataset) -> None:
        if values:
            attrs = {key: plain(obj.attrs[key]) for key in sorted(obj.attrs)}
        else:
            attrs = dict.fromkeys(sorted(obj.attrs))
        if isinstance(obj, IH5Dataset):
            data = (obj.dtype.str, plain(obj[()])) if values else None
            seen[name] = ("dataset", data, attrs)
        else:
            seen[name] = ("group", attrs)

    describe("/", group)
    group.visititems(describe)
    return seen


def values_at(group: IH5Group, path: str) -> Any:
    """The values of the dataset at ``path`` as plain Python data."""
    dataset = group[path]
    assert isinstance(dataset, IH5Dataset), f"{path} is not a dataset"
    return plain(dataset[()])


def has_containers(record: Path) -> bool:
    directory, name = split_record_path(record)
    return bool(discover_containers(directory, name))


def check_manifest(rec: IH5MFRecord) -> None:
    """The newest manifest describes exactly the state the record shows."""
    manifest = rec.manifest
    assert manifest is not None, f"{rec.containers[-1]} has no manifest"
    assert manifest.user_block.patch_uuid == rec.user_block.patch_uuid
    # Structure only: a merged file's manifest keeps the chain's patch indices.
    assert _structure(manifest.skeleton) == _structure(IH5Skeleton.from_tree(rec.chain.root))


def _structure(skeleton: IH5Skeleton) -> dict[str, tuple[str, list[str]]]:
    return {path: (entry.node_type, sorted(entry.attrs)) for path, entry in skeleton.root.items()}


def observe_record(record: Path, *, manifest: bool = False, values: bool = True) -> Any:
    """What a reader sees in a record: ABSENT or its content (checked both ways if manifest)."""
    if not has_containers(record):
        return ABSENT
    with IH5Record(record) as rec:
        seen = content(rec, values=values)
    if manifest:
        with IH5MFRecord(record) as mfrec:
            check_manifest(mfrec)
            assert content(mfrec, values=values) == seen
    return seen


def continue_record(record: Path, *, manifest: bool = False, values: bool = True) -> Any:
    """A later writer opens the record, commits a small patch; return the state it found.

    An uncommitted container that a failed (not killed) writer suspended is
    resumed and committed with the small change: it is the writer's own
    unfinished work (``.pending``), not a third state of the record.
    """
    kind = IH5MFRecord if manifest else IH5Record
    with kind(record, "a", lock_timeout=10) as rec:
        found: Any = content(rec, values=values)
        if not rec.containers and found == EMPTY:
            found = ABSENT  # "a" made a fresh base: there was no record
        rec.attrs[CONTINUED] = 1
    after = observe_record(record, manifest=manifest, values=values)
    expected = {} if found == ABSENT else dict(found)
    root_attrs = dict(expected.get("/", ("group", {}))[1])
    root_attrs[CONTINUED] = 1 if values else None
    expected["/"] = ("group", dict(sorted(root_attrs.items())))
    assert after == expected, "the later writer's patch does not show its change on top"
    return found


def read_bytes_or_absent(path: Path) -> bytes | str:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return ABSENT


def valid_json(raw: bytes | str) -> Any:
    """Parse a sidecar's bytes; a torn or partial document fails the check."""
    assert isinstance(raw, bytes)
    return json.loads(raw)


def garbage(directory: Path, *, manifests_need_containers: bool = True) -> list[str]:
    """Files a finished writer should not have left: temp files, uncommitted containers,
    staging directories, orphan manifests (in a record's directory)."""
    return [
        entry.name
        for entry in sorted(os.scandir(directory), key=lambda item: item.name)
        if _is_garbage(directory, entry.name, manifests_need_containers)
    ]


def _is_garbage(directory: Path, name: str, manifests_need_containers: bool) -> bool:
    if is_temp_name(name) or name.endswith((".writing", ".pending", ".staged")):
        return True
    if name.startswith(".") or ".stub-" in name or ".corrupt-" in name:
        return True
    orphan = name.endswith(".ih5mf.json") and not (directory / name[: -len("mf.json")]).exists()
    return manifests_need_containers and orphan


def copy_tree(source: Path, target: Path) -> Path:
    """Copy a starting directory for one trial (symlinks kept, times kept)."""
    return Path(shutil.copytree(source, target, symlinks=True))
