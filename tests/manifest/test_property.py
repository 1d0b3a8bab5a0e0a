"""A random patch made on a stub has the same effect on the real record as made on it directly.

Hypothesis draws a short history of commits and one more patch. The history
is written to a manifest-backed record; a stub is built in another directory
from the newest manifest alone and gets the patch; the stub's patch container
and manifest are copied next to the real record. A second copy of the real
record gets the same patch directly through IH5Record. Both overlays must be
equal: paths, node kinds, attribute names and values, dataset values.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ih5.manifest import IH5MFRecord, IH5Skeleton, manifest_path
from ih5.record import IH5Dataset, IH5Group, IH5Record

from .helpers import content, copy_patch

NAMES = ("a", "b", "c")
PATHS = ["/" + "/".join(p) for depth in (1, 2) for p in itertools.product(NAMES, repeat=depth)]
TARGETS = ["/", *PATHS]
ATTRS = ("x", "y")

Op = tuple[Any, ...]

values = st.one_of(
    st.integers(-100, 100),
    st.lists(st.integers(-100, 100), min_size=1, max_size=4),
    st.text(alphabet="ab é", max_size=3),
)
ops = st.one_of(
    st.tuples(st.just("group"), st.sampled_from(PATHS)),
    st.tuples(st.just("dataset"), st.sampled_from(PATHS), values),
    st.tuples(st.just("delete"), st.sampled_from(PATHS)),
    st.tuples(st.just("attr"), st.sampled_from(TARGETS), st.sampled_from(ATTRS), values),
    st.tuples(st.just("del_attr"), st.sampled_from(TARGETS), st.sampled_from(ATTRS)),
)
patches = st.lists(ops, min_size=1, max_size=6)


def creatable(rec: IH5Record, path: str) -> bool:
    """Nothing is at ``path`` and no dataset sits on the way to it."""
    names = path.strip("/").split("/")
    for depth in range(1, len(names) + 1):
        prefix = "/" + "/".join(names[:depth])
        if prefix not in rec:
            return True
        if isinstance(rec[prefix], IH5Dataset):
            return False
    return False


def as_stored(value: Any) -> Any:
    """Store text and integers with fixed types, so both records hold the same dtypes."""
    if isinstance(value, str):
        return value
    return np.asarray(value, dtype="i8")


def apply(rec: IH5Record, patch: list[Op]) -> None:
    """Apply the operations that make sense in the current state; skip the others.

    Only structure decides what is skipped, so a stub and its real record skip alike.
    """
    for op in patch:
        kind, path = op[0], op[1]
        if kind == "group" and creatable(rec, path):
            rec.create_group(path)
        elif kind == "dataset":
            if path in rec:
                del rec[path]
            if creatable(rec, path):
                rec.create_dataset(path, data=as_stored(op[2]))
        elif kind == "delete" and path in rec:
            del rec[path]
        elif kind == "attr" and path in rec:
            rec[path].attrs[op[2]] = as_stored(op[3])
        elif kind == "del_attr" and path in rec and op[2] in rec[path].attrs:
            del rec[path].attrs[op[2]]


def structure(group: IH5Group) -> dict[str, tuple[str, list[str]]]:
    """Paths, kinds and attribute names: what a stub can show without data."""
    found: dict[str, tuple[str, list[str]]] = {"/": ("group", sorted(group.attrs))}

    def describe(name: str, obj: IH5Group | IH5Dataset) -> None:
        kind = "dataset" if isinstance(obj, IH5Dataset) else "group"
        found[name] = (kind, sorted(obj.attrs))

    group.visititems(describe)
    return found


def write_history(record: Path, history: list[list[Op]]) -> None:
    with IH5MFRecord(record, "w") as rec:
        apply(rec, history[0])
    for patch in history[1:]:
        with IH5MFRecord(record, "r+") as rec:
            apply(rec, patch)
            rec.commit_patch()  # also a patch without changes: closing would drop it


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(history=st.lists(patches, min_size=1, max_size=3), patch=patches)
def test_stub_patch_equals_direct_patch_on_real_record(
    history: list[list[Op]], patch: list[Op]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        real = work / "real" / "rec"
        real.parent.mkdir()
        write_history(real, history)
        shutil.copytree(real.parent, work / "direct")
        with IH5Record(real) as rec:
            newest = rec.containers[-1]
            before = structure(rec)

        (work / "other").mkdir()
        given_manifest = work / "other" / "given.json"
        shutil.copyfile(manifest_path(newest), given_manifest)
        stub = work / "other" / "stub"
        IH5MFRecord.create_stub(stub, given_manifest)
        with IH5MFRecord(stub, "r+") as rec:
            assert structure(rec) == before
            apply(rec, patch)
            rec.commit_patch()
            stub_patch = rec.containers[-1]

        with IH5Record(work / "direct" / "rec", "r+") as rec:
            apply(rec, patch)
            rec.commit_patch()
        copy_patch(stub_patch, real)

        with IH5MFRecord(real) as via_stub, IH5Record(work / "direct" / "rec") as direct:
            assert via_stub.containers[-1].name == f"rec.p{len(history)}.ih5"
            assert content(via_stub) == content(direct)
            assert via_stub.manifest is not None
            assert structure(via_stub) == {
                path.lstrip("/") or "/": (entry.node_type, sorted(entry.attrs))
                for path, entry in via_stub.manifest.skeleton.root.items()
            }
            assert list(IH5Skeleton.from_tree(via_stub.chain.root)) == list(
                via_stub.manifest.skeleton
            )
