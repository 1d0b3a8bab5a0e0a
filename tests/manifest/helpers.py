"""Helpers shared by the manifest tests: a reference record and what a reader sees in one."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ih5.manifest import IH5MFRecord
from ih5.record import IH5Dataset, IH5Group

MY_EXTS = {"my_ext": {"k": "v"}}


def plain(value: Any) -> Any:
    """A value read through h5py as plain Python data (strings decoded, arrays as lists)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def content(group: IH5Group | h5py.Group) -> dict[str, Any]:
    """Everything a reader sees below ``group``: kind, attributes and (for datasets) values."""
    seen: dict[str, Any] = {}

    def describe(name: str, obj: Any) -> None:
        attrs = {key: plain(obj.attrs[key]) for key in sorted(obj.attrs)}
        if isinstance(obj, (IH5Dataset, h5py.Dataset)):
            seen[name] = ("dataset", obj.dtype.kind, plain(obj[()]), attrs)
        else:
            seen[name] = ("group", attrs)

    describe("/", group)
    group.visititems(describe)
    return seen


def build_mf_record(directory: Path, name: str = "rec") -> Path:
    """A manifest-backed record like the fixture ``mfrec``: a base and one patch.

    Base: ``/data`` = 0..5 (``unit="m"``), ``/grp`` (``g=1``) with ``/grp/sub``
    (``note="nested"``) holding ``value=42``, ``/tokill``, root ``title="base"``;
    committed with ``MY_EXTS``. Patch 1 deletes ``/tokill``, adds ``/grp/added``
    and sets ``title="p1"``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    record = directory / name
    with IH5MFRecord(record, "w") as rec:
        rec["data"] = np.arange(6)
        rec["data"].attrs["unit"] = "m"
        rec.create_group("grp/sub").attrs["note"] = "nested"
        rec["grp"].attrs["g"] = 1
        rec["grp/sub/value"] = 42
        rec["tokill"] = "x"
        rec.attrs["title"] = "base"
        rec.commit_patch(manifest_exts=MY_EXTS)
    with IH5MFRecord(record, "r+") as rec:
        del rec["tokill"]
        rec["grp/added"] = "new"
        rec.attrs["title"] = "p1"
    return record


def copy_patch(source: Path, record: Path) -> list[Path]:
    """Copy a committed patch container and its manifest next to ``record`` under its name."""
    name = record.name
    copied = []
    for path in (source, source.with_name(source.name + "mf.json")):
        suffix = path.name.split(".", 1)[1]
        target = record.with_name(f"{name}.{suffix}")
        shutil.copyfile(path, target)
        copied.append(target)
    return copied
