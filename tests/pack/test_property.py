"""Random trees and random edits: every re-pack unpacks to the edited tree.

Rounds alternate between packing next to the containers and packing beside a
lone copy of the newest manifest (the patch is then copied to the record).
``IH5_LONG=1`` runs many more examples.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ih5.format import parse_container_name
from ih5.pack import pack_directory
from tests.helpers.trees import snapshot

from .helpers import Link, make_tree, npy_bytes, remove, unpacked

NAMES = ("a", "b", "c")
EXAMPLES = 300 if os.environ.get("IH5_LONG") == "1" else 15
DTYPES = ("<i4", ">f8", "u1", "?", "S3", "<c8")

npy_files = st.builds(
    lambda dtype, shape, fortran, seed: npy_bytes(
        np.random.default_rng(seed).integers(0, 100, shape).astype(dtype), fortran=fortran
    ),
    st.sampled_from(DTYPES),
    st.lists(st.integers(0, 4), max_size=3).map(tuple),
    st.booleans(),
    st.integers(0, 1000),
)
contents = st.one_of(st.binary(max_size=2000), npy_files, npy_files.map(lambda raw: raw[:-1]))


def file_name(name: str, content: bytes) -> str:
    return f"{name}.npy" if content.startswith(b"\x93NUMPY") else f"{name}.bin"


@st.composite
def trees(draw: st.DrawFn, depth: int = 2) -> dict[str, Any]:
    """A directory: names to file bytes or (above depth 0) nested directories."""
    children = contents if depth == 0 else st.one_of(contents, trees(depth - 1))
    return draw(st.dictionaries(st.sampled_from(NAMES), children, max_size=3))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, bytes | Link | None]:
    spec: dict[str, bytes | Link | None] = {}
    for name, child in tree.items():
        if isinstance(child, dict):
            spec[prefix + name] = None
            spec.update(flatten(child, f"{prefix}{name}/"))
        else:
            spec[prefix + file_name(name, child)] = child
    return spec


def apply_edit(data: st.DataObject, root: Path) -> None:
    """Apply one random edit to the tree at ``root``."""
    paths = sorted(snapshot(root))
    dirs = [path for path in paths if (root / path).is_dir() and not (root / path).is_symlink()]
    kind = data.draw(st.sampled_from(["add-file", "add-dir", "modify", "delete", "replace"]))
    if kind in ("add-file", "add-dir"):
        parent = root / data.draw(st.sampled_from(["", *dirs]), label="parent")
        name = data.draw(st.sampled_from(("n", "m", *NAMES)), label="name")
        content = data.draw(contents, label="content")
        target = parent / (name if kind == "add-dir" else file_name(name, content))
        if target.exists():
            return
        if kind == "add-dir":
            target.mkdir()
        else:
            target.write_bytes(content)
        return
    if not paths:
        return
    path = root / data.draw(st.sampled_from(paths), label="path")
    was_dir = path.is_dir() and not path.is_symlink()
    if kind == "modify" and not was_dir:
        remove(path)
        path.write_bytes(data.draw(contents, label="content"))
    elif kind == "delete":
        remove(path)
    elif kind == "replace":
        remove(path)
        if was_dir:
            path.write_bytes(data.draw(contents, label="content"))
        else:
            path.mkdir()


def newest_manifest(directory: Path) -> Path:
    def index(path: Path) -> int:
        parsed = parse_container_name(path.name.removesuffix("mf.json"))
        assert parsed is not None
        return parsed[1]

    return max(directory.glob("rec*.ih5mf.json"), key=index)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees(), link=st.booleans(), data=st.data())
def test_pack_directory_round_trips_random_edits(
    tree: dict[str, Any], link: bool, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        spec = flatten(tree)
        if link and spec:
            spec["zz-link"] = Link(sorted(spec)[0])
        source = make_tree(work / "src", spec)
        record = work / "real" / "rec"
        pack_directory(source, record)
        assert unpacked(record, work / "back0") == snapshot(source)
        for round_ in range(1, 4):
            for _ in range(data.draw(st.integers(1, 4), label="edits")):
                apply_edit(data, source)
            if round_ % 2:
                pack_directory(source, record)
            else:
                remote = work / f"remote{round_}"
                remote.mkdir()
                shutil.copy2(newest_manifest(record.parent), remote)
                result = pack_directory(source, remote / "rec")
                for path in result.written:
                    shutil.copy2(path, record.parent / path.name)
            assert unpacked(record, work / f"back{round_}") == snapshot(source)
