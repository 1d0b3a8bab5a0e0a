"""Random change sequences on a record agree with a plain in-memory model of the tree.

The state machine applies the same operations to an ``IH5Record`` and to the
model of ``model.py``. After every step the overlay must equal the model;
after every commit so must a merged copy and a fresh reader; at the end every
committed state must open again (``at=K``) as the model snapshot taken then.
Names come from a three-letter alphabet so that paths collide, get deleted
and come back often.

``--long`` (or ``IH5_LONG=1``) also runs a long profile.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ih5.errors import IntegrityError, NodeExistsError, RecordModeError
from ih5.record import IH5Dataset, IH5Group, IH5Record
from ih5.record._facts import read_facts
from ih5.record._opening import build_tree
from ih5.record._tree import Node, apply_container
from ih5.record._tree import walk as tree_walk

from .helpers import untouched
from .model import (
    Tree,
    assert_matches,
    is_creatable,
    is_group,
    lookup,
    new_dataset,
    new_group,
    put,
    remove,
    snapshot,
    walk,
)

NAMES = ("a", "b", "c")
ATTR_NAMES = ("x", "y", "z")
ALL_PATHS = [
    "/" + "/".join(names) for depth in (1, 2, 3) for names in itertools.product(NAMES, repeat=depth)
]

small_ints = st.integers(-1000, 1000)
floats = st.floats(-1e6, 1e6, allow_nan=False, width=64)
texts = st.text(alphabet="ab é", max_size=4)
# One opaque byte is user data unless it is 0x7F, the deletion marker.
opaque = st.binary(min_size=1, max_size=1).filter(lambda b: b != b"\x7f").map(np.void)

dataset_values = st.one_of(
    st.lists(small_ints, max_size=3).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(floats, max_size=3).map(lambda v: np.array(v, dtype=np.float64)),
    small_ints.map(np.int64),
    floats.map(np.float64),
    texts,
    opaque,
)
attr_values = st.one_of(
    small_ints,
    floats,
    texts,
    st.booleans(),
    opaque,
    st.lists(small_ints, min_size=1, max_size=3).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(floats, min_size=1, max_size=3).map(lambda v: np.array(v, dtype=np.float64)),
)


# Chunked datasets: several dtypes, chunk shapes and filters, so that writes into older
# patches become chunk deltas.
CHUNKED_KINDS: dict[str, tuple[Any, dict[str, Any]]] = {
    "int32-scaleoffset": (np.dtype("i4"), {"scaleoffset": 0, "fillvalue": 7}),
    "float64-gzip-shuffle": (np.dtype("f8"), {"compression": "gzip", "shuffle": True}),
    "float32-lzf": (np.dtype("f4"), {"compression": "lzf", "fillvalue": -1.5}),
    "int16-fletcher32": (np.dtype("i2"), {"fletcher32": True}),
    "fixed-string-gzip": (np.dtype("S4"), {"compression": "gzip"}),
    "vlen-string": (h5py.string_dtype(), {}),
    "compound": (np.dtype([("a", "i4"), ("b", "f8")]), {}),
    "enum": (h5py.enum_dtype({"red": 0, "green": 1, "blue": 2}, basetype="u1"), {}),
}


def random_values(dtype: np.dtype[Any], shape: tuple[int, ...], seed: int) -> np.ndarray[Any, Any]:
    """Values of ``dtype`` (as h5py reads them back) for a write of ``shape``."""
    rng = np.random.default_rng(seed)
    if h5py.check_string_dtype(dtype) is not None and dtype.kind == "O":
        words = np.array(["", "a", "bé", "long text"], dtype=object)
        return words[rng.integers(0, 4, size=shape)]
    if dtype.kind == "S":
        return np.array([b"", b"ab", b"wxyz"], dtype=dtype)[rng.integers(0, 3, size=shape)]
    if dtype.names is not None:
        out = np.zeros(shape, dtype=dtype)
        out["a"] = rng.integers(-50, 50, size=shape)
        out["b"] = rng.integers(-50, 50, size=shape) / 4
        return out
    if h5py.check_enum_dtype(dtype) is not None:
        return rng.integers(0, 3, size=shape).astype(dtype)
    return rng.integers(-100, 100, size=shape).astype(dtype)


def fill_of(dtype: np.dtype[Any], options: dict[str, Any]) -> Any:
    """What h5py shows where nothing was written."""
    if "fillvalue" in options:
        return options["fillvalue"]
    if dtype.kind == "O":
        return ""  # h5py reads b"", which the model compares decoded
    return np.zeros((), dtype=dtype)[()]


def changed(value: Any, delta: int) -> Any:
    """A new value of the same shape and type as ``value``."""
    if isinstance(value, str):
        return value + str(delta)
    if isinstance(value, np.void):
        byte = (value.tobytes()[0] + delta) % 256
        return np.void(bytes([byte if byte != 0x7F else 0x80]))
    return (np.asarray(value) + delta).astype(np.asarray(value).dtype)


def resolved(root: Node) -> list[tuple[str, bool, int, list[int], dict[str, int]]]:
    """A resolved tree as comparable data: path, kind, source container, chunk deltas,
    attribute sources."""
    return [
        (path, node.is_group, node.created, list(node.deltas), dict(node.attrs))
        for path, node in tree_walk(root)
    ]


def below(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or lies inside it."""
    return path == root or path.startswith(root + "/")


class RecordMachine(RuleBasedStateMachine):
    """One record in a temp directory, driven in step with its model."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="ih5-property-"))
        self.path = self.directory / "rec"
        self.record = IH5Record(self.path, "w")
        self.model: Tree = new_group()
        self.snapshots: dict[int, Tree] = {}
        self.fresh: set[str] = set()
        """Datasets that live in the open container, so their values can be written."""
        self.index = 0
        """Patch index of the open container."""
        self.deleted: set[str] = set()
        """Paths deleted in the open container: re-creating them is where bugs hide."""

    # --- what the model holds ---------------------------------------------

    def paths(self, kind: str = "any") -> list[str]:
        """Existing non-root paths: "any", "group" or "dataset"."""
        return [
            path
            for path, node in walk(self.model)
            if path != "/" and kind in ("any", "group" if is_group(node) else "dataset")
        ]

    def creatable(self) -> list[str]:
        return [path for path in ALL_PATHS if is_creatable(self.model, path)]

    def creatable_in_place(self) -> list[str]:
        """Creatable paths whose parent group exists, so a failed creation adds nothing."""
        return [path for path in self.creatable() if lookup(self.model, posixpath.dirname(path))]

    def refused(self) -> list[str]:
        return [path for path in ALL_PATHS if not is_creatable(self.model, path)]

    def attributes(self) -> list[tuple[str, str]]:
        return [(path, name) for path, node in walk(self.model) for name in sorted(node["attrs"])]

    def node(self, path: str) -> Tree:
        node = lookup(self.model, path)
        assert node is not None, path
        return node

    def obj(self, path: str) -> IH5Group | IH5Dataset:
        return self.record if path == "/" else self.record[path]

    def forget(self, path: str) -> None:
        """Drop ``path`` and everything below it from the open-patch bookkeeping."""
        self.fresh = {fresh for fresh in self.fresh if not below(fresh, path)}
        self.deleted |= {other for other in ALL_PATHS if below(other, path)}

    def pick(self, data: st.DataObject, candidates: list[str], label: str) -> str:
        """Draw one of ``candidates``, often one deleted in the open patch."""
        recent = [path for path in candidates if path in self.deleted]
        if len(recent) > 0 and data.draw(st.booleans(), label=f"{label} deleted in this patch"):
            candidates = recent
        return data.draw(st.sampled_from(candidates), label=label)

    # --- operations, applied to record and model ----------------------------

    def create_group_at(self, path: str) -> None:
        self.record.create_group(path)
        put(self.model, path, new_group())

    def create_dataset_at(self, path: str, value: Any, how: str = "data") -> None:
        """Create a dataset by ``how``: "data", "setitem", "shape" (then write) or "gzip"."""
        node = new_dataset(value)
        numeric = isinstance(value, (np.ndarray, np.number))
        if how == "setitem":
            self.record[path] = value
        elif how == "shape" and numeric:
            dataset = self.record.create_dataset(path, shape=np.shape(value), dtype=value.dtype)
            dataset[()] = value
        elif how == "gzip" and numeric and np.ndim(value) == 1 and np.size(value) > 0:
            self.record.create_dataset(path, data=value, compression="gzip")
            node["compression"] = "gzip"
        else:
            self.record.create_dataset(path, data=value)
        put(self.model, path, node)
        self.fresh.add(path)

    def create_chunked_at(self, path: str, kind: str, rows: int, width: int, chunk: int) -> None:
        """Create a chunked, resizable dataset of ``kind`` (dtype and filters)."""
        dtype, options = CHUNKED_KINDS[kind]
        shape = (rows,) if width == 0 else (rows, width)
        chunks = (chunk,) if width == 0 else (chunk, 2)
        maxshape = (None,) if width == 0 else (None, width)
        value = random_values(dtype, shape, rows * 31 + width)
        self.record.create_dataset(
            path, data=value, dtype=dtype, chunks=chunks, maxshape=maxshape, **options
        )
        node = new_dataset(value.astype(object) if dtype.kind == "O" else value)
        node["chunked"] = kind
        if "compression" in options:
            node["compression"] = options["compression"]
        put(self.model, path, node)
        self.fresh.add(path)

    def chunked_paths(self) -> list[str]:
        return [path for path in self.paths("dataset") if "chunked" in self.node(path)]

    def write_chunks_at(self, path: str, how: str, seed: int) -> None:
        """Write an element, a slice, a fancy list or a mask of a chunked dataset."""
        node = self.node(path)
        value = node["value"]
        dtype, _ = CHUNKED_KINDS[node["chunked"]]
        rng = np.random.default_rng(seed)
        rows = value.shape[0]
        selection: Any
        if rows == 0:
            selection = slice(None)
        elif how == "element":
            selection = tuple(int(rng.integers(n)) for n in value.shape)
        elif how == "slice":
            start = int(rng.integers(rows))
            selection = slice(start, int(rng.integers(start, rows + 1)), int(rng.integers(1, 4)))
        elif how == "fancy":
            picked = sorted(set(rng.integers(0, rows, size=3).tolist()))
            selection = picked
        else:
            selection = rng.integers(0, 2, size=value.shape).astype(bool)
        new = random_values(dtype, np.shape(value[selection]), seed + 1)
        self.record[path][selection] = new
        value = value.copy()
        value[selection] = new
        node["value"] = value

    def resize_at(self, path: str, rows: int) -> None:
        node = self.node(path)
        value = node["value"]
        dtype, options = CHUNKED_KINDS[node["chunked"]]
        dataset = self.record[path]
        assert isinstance(dataset, IH5Dataset)
        dataset.resize(rows, axis=0)
        grown = np.empty((rows, *value.shape[1:]), dtype=value.dtype)
        grown[...] = fill_of(dtype, options)
        keep = min(rows, value.shape[0])
        grown[:keep] = value[:keep]
        node["value"] = grown
        assert dataset.shape == grown.shape

    def revert_at(self, path: str) -> None:
        """Write back the values the dataset had at the last commit (reused chunks)."""
        before = lookup(self.snapshots[self.index - 1], path)
        if before is None or before.get("chunked") != self.node(path).get("chunked"):
            return
        dataset = self.record[path]
        assert isinstance(dataset, IH5Dataset)
        old = before["value"]
        if dataset.shape != old.shape:
            dataset.resize(old.shape[0], axis=0)
        if old.size:
            dataset[()] = old
        self.node(path)["value"] = old

    def refuse_create_at(self, path: str, value: Any) -> None:
        before = snapshot(self.model)
        with pytest.raises(NodeExistsError):
            self.record.create_group(path)
        with pytest.raises(NodeExistsError):
            self.record.create_dataset(path, data=value)
        assert_matches(self.record, before, f"record after refused creation at {path}")

    def fail_create_at(self, path: str) -> None:
        before = snapshot(self.model)
        with pytest.raises(TypeError):
            # h5py refuses filters on scalars only after ih5 has prepared the path.
            self.record.create_dataset(path, data=np.int64(1), compression="gzip")
        assert_matches(self.record, before, f"record after failed creation at {path}")

    def delete_at(self, path: str) -> None:
        del self.record[path]
        remove(self.model, path)
        self.forget(path)

    def replace_at(self, path: str, value: Any) -> None:
        was_group = is_group(self.node(path))
        self.delete_at(path)
        if was_group:
            self.create_dataset_at(path, value)
        else:
            self.create_group_at(path)

    def recreate_below(self, path: str, rest: str, value: Any, as_dataset: bool) -> None:
        self.delete_at(path)
        if as_dataset:
            self.create_dataset_at(path + rest, value)
        else:
            self.create_group_at(path + rest)

    def copy_to(self, source: str, dest: str, move: bool) -> None:
        if move:
            self.record.move(source, dest)
        else:
            self.record.copy(source, dest)
        put(self.model, dest, snapshot(self.node(source)))
        self.fresh |= {path for path, node in walk(self.node(dest), dest) if not is_group(node)}
        if move:
            self.delete_model_only(source)

    def delete_model_only(self, path: str) -> None:
        remove(self.model, path)
        self.forget(path)

    def set_attr_at(self, path: str, name: str, value: Any) -> None:
        self.obj(path).attrs[name] = value
        self.node(path)["attrs"][name] = value

    def delete_attr_at(self, path: str, name: str) -> None:
        del self.obj(path).attrs[name]
        del self.node(path)["attrs"][name]

    def write_values_at(self, path: str, delta: int, copy_first: bool = False) -> None:
        dataset = self.record[path]
        assert isinstance(dataset, IH5Dataset)
        node = self.node(path)
        if "chunked" in node:
            dtype, _ = CHUNKED_KINDS[node["chunked"]]
            new = random_values(dtype, node["value"].shape, delta)
            dataset[()] = new
            node["value"] = new.astype(object) if dtype.kind == "O" else new
            return
        value = changed(self.node(path)["value"], delta)
        if path not in self.fresh and node.get("compression") == "gzip":
            # Chunked storage: the write into the older patch becomes a chunk delta.
            dataset[()] = value
            node["value"] = value
            return
        if path not in self.fresh:
            with pytest.raises(RecordModeError):
                dataset[()] = value
            copy_first = True
        if copy_first and path in self.fresh:
            with pytest.raises(RecordModeError):
                dataset.copy_into_patch()  # already in the open patch
        elif copy_first:
            dataset.copy_into_patch()
            self.fresh.add(path)
        dataset[()] = value
        self.node(path)["value"] = value

    def check_committed(self, where: str) -> None:
        """The committed state equals the model: overlay, a merged copy and a new reader."""
        assert not self.record.has_patch
        assert self.record.user_block.patch_index == self.index
        self.snapshots[self.index] = snapshot(self.model)
        self.fresh.clear()
        self.deleted.clear()
        assert_matches(self.record, self.model, f"overlay {where}")
        merged = self.record.merge_files(self.directory / f"merged{self.index}.ih5")
        with IH5Record([merged]) as record:
            assert_matches(record, self.model, f"merged file {where}")
        with IH5Record(self.path, "r") as record:
            assert_matches(record, self.model, f"reopened record {where}")

    def check_later_patches_on_merged(self) -> None:
        """A merged state followed by the record's later patches is the newest state."""
        if not self.snapshots:
            return
        with IH5Record(self.path, "r") as record:
            containers = record.containers
        newest = max(self.snapshots)
        for index in self.snapshots:
            chain = [self.directory / f"merged{index}.ih5", *containers[index + 1 :]]
            with IH5Record(chain) as record:
                try:
                    assert_matches(record, self.snapshots[newest], f"merged{index} + later patches")
                except IntegrityError as exc:
                    # A later patch reuses a chunk of a container the merge replaced: it must
                    # say so, never show other values.
                    assert "merged" in str(exc)

    def commit_now(self) -> None:
        self.record.commit_patch()
        self.check_committed(f"after committing patch {self.index}")
        self.record.create_patch()
        self.index += 1

    def reopen_now(self, commit: bool = True, mode: str = "r+") -> None:
        dropped = commit and self.index > 0 and untouched(self.record)
        self.record.close(commit=commit)
        if commit:
            self.record = IH5Record(self.path, mode)
            self.record.discard_patch()  # the patch opening started: checks need none open
            if dropped:
                # Closing drops a patch without changes instead of publishing it.
                assert self.record.user_block.patch_index == self.index - 1
                assert_matches(self.record, self.model, "after closing an unchanged patch")
            else:
                self.check_committed(f"after closing with patch {self.index}")
                self.index += 1
            self.record.create_patch()
        else:
            # Our own uncommitted container is resumed; before the first commit only
            # mode "a" may open a record that has no committed container yet.
            self.record = IH5Record(self.path, "r+" if self.snapshots else "a")
            assert self.record.has_patch

    def discard_now(self) -> None:
        self.record.discard_patch()
        self.model = snapshot(self.snapshots[self.index - 1])
        self.fresh.clear()
        self.deleted.clear()
        assert_matches(self.record, self.model, "overlay after discarding a patch")
        self.record.create_patch()

    # --- rules --------------------------------------------------------------

    @precondition(lambda self: self.creatable())
    @rule(data=st.data())
    def create_group(self, data: st.DataObject) -> None:
        self.create_group_at(self.pick(data, self.creatable(), "path"))

    @precondition(lambda self: self.creatable())
    @rule(
        data=st.data(),
        value=dataset_values,
        how=st.sampled_from(["data", "setitem", "shape", "gzip"]),
    )
    def create_dataset(self, data: st.DataObject, value: Any, how: str) -> None:
        self.create_dataset_at(self.pick(data, self.creatable(), "path"), value, how)

    @precondition(lambda self: self.creatable())
    @rule(
        data=st.data(),
        kind=st.sampled_from(sorted(CHUNKED_KINDS)),
        rows=st.integers(0, 9),
        width=st.sampled_from([0, 0, 3]),
        chunk=st.integers(1, 4),
    )
    def create_chunked(
        self, data: st.DataObject, kind: str, rows: int, width: int, chunk: int
    ) -> None:
        self.create_chunked_at(self.pick(data, self.creatable(), "path"), kind, rows, width, chunk)

    @precondition(lambda self: self.chunked_paths())
    @rule(
        data=st.data(),
        how=st.sampled_from(["element", "slice", "fancy", "mask"]),
        seed=st.integers(0, 10_000),
    )
    def write_chunks(self, data: st.DataObject, how: str, seed: int) -> None:
        self.write_chunks_at(
            data.draw(st.sampled_from(self.chunked_paths()), label="path"), how, seed
        )

    @precondition(lambda self: self.chunked_paths())
    @rule(data=st.data(), rows=st.integers(0, 14))
    def resize(self, data: st.DataObject, rows: int) -> None:
        self.resize_at(data.draw(st.sampled_from(self.chunked_paths()), label="path"), rows)

    @precondition(lambda self: self.chunked_paths() and self.snapshots)
    @rule(data=st.data())
    def revert(self, data: st.DataObject) -> None:
        self.revert_at(data.draw(st.sampled_from(self.chunked_paths()), label="path"))

    @precondition(lambda self: self.refused())
    @rule(data=st.data(), value=dataset_values)
    def create_refused(self, data: st.DataObject, value: Any) -> None:
        self.refuse_create_at(data.draw(st.sampled_from(self.refused()), label="path"), value)

    @precondition(lambda self: self.creatable_in_place())
    @rule(data=st.data())
    def create_fails(self, data: st.DataObject) -> None:
        self.fail_create_at(self.pick(data, self.creatable_in_place(), "path"))

    @precondition(lambda self: self.paths())
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self.delete_at(data.draw(st.sampled_from(self.paths()), label="path"))

    @precondition(lambda self: self.paths())
    @rule(data=st.data(), value=dataset_values)
    def replace(self, data: st.DataObject, value: Any) -> None:
        self.replace_at(data.draw(st.sampled_from(self.paths()), label="path"), value)

    @precondition(lambda self: self.paths("group"))
    @rule(
        data=st.data(),
        rest=st.sampled_from(["/a", "/b/c"]),
        value=dataset_values,
        as_dataset=st.booleans(),
    )
    def recreate_below_deleted(
        self, data: st.DataObject, rest: str, value: Any, as_dataset: bool
    ) -> None:
        path = data.draw(st.sampled_from(self.paths("group")), label="path")
        self.recreate_below(path, rest, value, as_dataset)

    @precondition(lambda self: self.paths() and self.creatable())
    @rule(data=st.data(), move=st.booleans())
    def copy_or_move(self, data: st.DataObject, move: bool) -> None:
        source = data.draw(st.sampled_from(self.paths()), label="source")
        targets = [path for path in self.creatable() if not below(path, source)]
        if targets:
            self.copy_to(source, self.pick(data, targets, "dest"), move)

    @rule(data=st.data(), name=st.sampled_from(ATTR_NAMES), value=attr_values)
    def set_attr(self, data: st.DataObject, name: str, value: Any) -> None:
        path = data.draw(st.sampled_from(["/", *self.paths()]), label="path")
        self.set_attr_at(path, name, value)

    @precondition(lambda self: self.attributes())
    @rule(data=st.data())
    def delete_attr(self, data: st.DataObject) -> None:
        self.delete_attr_at(*data.draw(st.sampled_from(self.attributes()), label="attribute"))

    @precondition(lambda self: self.paths("dataset"))
    @rule(data=st.data(), delta=st.integers(1, 9), copy_first=st.booleans())
    def write_values(self, data: st.DataObject, delta: int, copy_first: bool) -> None:
        path = data.draw(st.sampled_from(self.paths("dataset")), label="path")
        self.write_values_at(path, delta, copy_first)

    @rule()
    def commit(self) -> None:
        self.commit_now()

    @rule(commit=st.booleans(), mode=st.sampled_from(["r+", "a"]))
    def reopen(self, commit: bool, mode: str) -> None:
        self.reopen_now(commit, mode)

    @precondition(lambda self: self.snapshots)
    @rule()
    def discard(self) -> None:
        self.discard_now()

    @invariant()
    def overlay_equals_model(self) -> None:
        assert self.record.has_patch
        assert_matches(self.record, self.model, "overlay")

    @invariant()
    def open_patch_file_resolves_like_overlay(self) -> None:
        # The overlay updates its resolved tree in memory as it writes; the files must say
        # the same, or the difference only shows once the patch is committed and reread.
        record = self.record
        writer = record.chain.writer
        assert writer is not None
        on_disk = apply_container(
            build_tree(record.chain.refs) if record.chain.refs else None,
            read_facts(writer.file),
            writer.index,
            writer.is_base,
        )
        assert resolved(on_disk) == resolved(record.chain.root)

    def teardown(self) -> None:
        try:
            self.record.close(commit=False)
            for index, expected in self.snapshots.items():
                with IH5Record(self.path, "r", at=index) as record:
                    assert_matches(record, expected, f"state at={index}")
            self.check_later_patches_on_merged()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


DEFAULT = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    report_multiple_bugs=False,
)
LONG = settings(DEFAULT, max_examples=400, stateful_step_count=60)

TestRecordMachine = RecordMachine.TestCase
TestRecordMachine.settings = DEFAULT


@pytest.mark.slow
def test_record_random_changes_match_model_long(request: pytest.FixtureRequest) -> None:
    wanted = os.environ.get("IH5_LONG") == "1"
    if not wanted and "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long profile: run with --long (or IH5_LONG=1)")
    run_state_machine_as_test(RecordMachine, settings=LONG)


# --- the cases the old implementation got wrong, spelled out -----------------

SCENARIOS = {
    "group_replaced_by_dataset_then_attr_in_later_patch": [
        ("create_group_at", "/a/b"),
        ("set_attr_at", "/a", "x", 1),
        ("commit_now",),
        ("replace_at", "/a", np.arange(3)),
        ("commit_now",),
        ("set_attr_at", "/a", "y", "later"),
        ("commit_now",),
    ],
    "group_recreated_then_attr_in_later_patch_hides_old_children": [
        ("create_dataset_at", "/a/b/c", np.int64(5)),
        ("set_attr_at", "/a", "x", 1),
        ("commit_now",),
        ("delete_at", "/a"),
        ("create_group_at", "/a"),
        ("commit_now",),
        ("set_attr_at", "/a", "y", 2.5),
        ("commit_now",),
        ("create_group_at", "/a/c"),
        ("commit_now",),
    ],
    "create_group_below_path_deleted_in_same_patch": [
        ("create_dataset_at", "/a/b", np.arange(2)),
        ("set_attr_at", "/a", "x", "old"),
        ("commit_now",),
        ("recreate_below", "/a", "/b/c", None, False),
        ("commit_now",),
        ("set_attr_at", "/a/b", "z", True),
        ("commit_now",),
    ],
    "dataset_replaced_by_group_then_children_and_attr_later": [
        ("create_dataset_at", "/a", "text"),
        ("set_attr_at", "/a", "x", 1),
        ("commit_now",),
        ("replace_at", "/a", None),
        ("commit_now",),
        ("set_attr_at", "/a", "y", 2),
        ("create_dataset_at", "/a/b", np.float64(1.5)),
        ("commit_now",),
    ],
    "attr_deleted_in_patch_then_set_again_later": [
        ("create_dataset_at", "/a", np.arange(3)),
        ("set_attr_at", "/a", "x", 1),
        ("commit_now",),
        ("delete_attr_at", "/a", "x"),
        ("commit_now",),
        ("set_attr_at", "/a", "x", "back"),
        ("commit_now",),
    ],
    "old_dataset_copied_into_patch_keeps_attrs": [
        ("create_dataset_at", "/a/b", np.arange(3), "gzip"),
        ("set_attr_at", "/a/b", "x", 1),
        ("commit_now",),
        ("set_attr_at", "/a/b", "y", 2),
        ("write_values_at", "/a/b", 3),
        ("commit_now",),
        ("delete_attr_at", "/a/b", "x"),
        ("write_values_at", "/a/b", 4),
        ("commit_now",),
    ],
    "uncommitted_patch_resumed_after_reopen": [
        ("create_group_at", "/a"),
        ("commit_now",),
        ("delete_at", "/a"),
        ("create_dataset_at", "/a/b", "x"),
        ("reopen_now", False),
        ("write_values_at", "/a/b", 1),
        ("commit_now",),
    ],
    "path_deleted_and_recreated_in_base": [
        ("create_group_at", "/a/b"),
        ("set_attr_at", "/a", "x", 1),
        ("replace_at", "/a", np.arange(2)),
        ("replace_at", "/a", None),
        ("commit_now",),
    ],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_record_scenario_matches_model(steps: list[tuple[Any, ...]]) -> None:
    machine = RecordMachine()
    try:
        for method, *args in steps:
            getattr(machine, method)(*args)
            machine.overlay_equals_model()
    finally:
        machine.teardown()


# --- bugs the state machine found, minimized ----------------------------------


def test_regression_failed_create_keeps_deletion_in_same_patch(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as record:
        record["a"] = np.arange(3)
    with IH5Record(tmp_path / "rec", "r+") as record:
        del record["a"]
        with pytest.raises(TypeError):
            record.create_dataset("a", data=np.int64(1), compression="gzip")
    with IH5Record(tmp_path / "rec") as record:
        assert "a" not in record
