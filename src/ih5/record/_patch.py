"""Writing one change set into the open patch container, and into the resolved tree.

Every change is recorded twice: as HDF5 objects and markers in the patch
file (FORMAT.md section 4), and in the resolved tree, so that the overlay
shows the change at once without re-reading anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeAlias

import h5py
import numpy as np

from ih5.errors import (
    InvalidKeyError,
    NodeExistsError,
    NodeNotFoundError,
    RecordModeError,
    UnencodableValueError,
)
from ih5.format import (
    check_attr_name,
    check_user_value,
    is_deletion_marker,
    mark_substituting,
    write_attr_deletion_marker,
    write_deletion_marker,
)
from ih5.record._chunkmap import CHUNKS_ATTR, DeltaWriter, is_chunk_delta
from ih5.record._chunks import ChunkedDataset, write_plain
from ih5.record._paths import split_path
from ih5.record._room import Room, create_bytes, value_bytes, write_bytes
from ih5.record._tree import Node, lookup

H5Object: TypeAlias = Any
"""An h5py Group or Dataset (h5py ships no type hints)."""


class _Member(NamedTuple):
    """A new overlay member and the patch group that will hold it."""

    parent: h5py.Group
    name: str
    node: Node
    was_deleted: bool
    """Whether the patch held a deletion marker at the member's path before."""


class PatchWriter:
    """The open, uncommitted container of a record and the tree it changes."""

    def __init__(self, file: h5py.File, index: int, is_base: bool, root: Node) -> None:
        self.file = file
        self.index = index
        self.is_base = is_base
        self.root = root
        self._deltas: dict[str, DeltaWriter] = {}
        """Chunk deltas written (or resumed) in this patch, by dataset path."""
        self.room = Room(file, f"writing patch {index}")
        # The last group visited, in the overlay and in the patch file: writes of a
        # subtree in path order (a stub, a pack) then find their parent at once, so
        # that building a tree is linear in its size and depth. Cleared on removals.
        self._near_node: tuple[str, Node] | None = None
        self._near_obj: tuple[str, H5Object] | None = None
        # The dataset created last: setting its attributes next needs no HDF5 lookup.
        self._near_leaf: tuple[str, H5Object] | None = None

    # --- locating -------------------------------------------------------

    def node(self, path: str) -> Node:
        """Return the overlay node at ``path`` or raise NodeNotFoundError."""
        node = lookup(self.root, path)
        if node is None:
            raise NodeNotFoundError(f"no object at {path!r} in this record", path)
        return node

    def _forget_near(self) -> None:
        self._near_node = None
        self._near_obj = None
        self._near_leaf = None

    def _patch_object(self, parts: list[str]) -> H5Object:
        """Return the patch's object for an existing overlay path, adding virtual groups.

        One HDF5 path lookup (HDF5 creates missing parents itself), or none for the
        group visited last.
        """
        if not parts:
            return self.file
        key = "/".join(parts)
        if self._near_obj is not None and self._near_obj[0] == key:
            return self._near_obj[1]
        if self._near_leaf is not None and self._near_leaf[0] == key:
            return self._near_leaf[1]
        obj = self.file.get(key)
        if obj is None:
            obj = self.file.create_group(key)
        if isinstance(obj, h5py.Group):
            self._near_obj = (key, obj)
        return obj

    def _new_member(self, path: str, is_group: bool) -> _Member:
        """Prepare a fresh overlay member: create missing parents, clear old patch entries."""
        parts = split_path(path)
        return self._attach(self._parent(parts), parts, is_group)

    def _parent(self, parts: list[str]) -> Node:
        """The overlay group that will hold ``parts[-1]``, creating missing groups on the way."""
        if not parts:
            raise NodeExistsError("the root group always exists", "/")
        key = "/".join(parts[:-1])
        if self._near_node is not None and self._near_node[0] == key:
            return self._near_node[1]
        node = self.root
        for depth, name in enumerate(parts[:-1]):
            child = node.members().get(name)
            if child is None:
                child = self._add_group(node, parts[: depth + 1])
            elif not child.is_group:
                where = "/" + "/".join(parts[: depth + 1])
                raise NodeExistsError(f"{where!r} is a dataset, not a group", where)
            node = child
        self._near_node = (key, node)
        return node

    def _attach(self, node: Node, parts: list[str], is_group: bool) -> _Member:
        """Add member ``parts[-1]`` under overlay ``node``, clearing what the patch held there."""
        name = parts[-1]
        if name in node.members():
            path = "/" + "/".join(parts)
            raise NodeExistsError(f"an object already exists at {path!r}", path)
        parent = self._patch_object(parts[:-1])
        assert isinstance(parent, h5py.Group)
        old = parent.get(name)
        if old is not None:
            del parent[name]
            self._forget_near()
        self._drop_deltas("/".join(parts))
        created = Node(self.index, is_group)
        node.members()[name] = created
        return _Member(parent, name, created, is_deletion_marker(old))

    def _add_group(self, node: Node, parts: list[str]) -> Node:
        """Create group ``parts`` under its existing overlay parent ``node``."""
        member = self._attach(node, parts, is_group=True)
        group = member.parent.create_group(member.name)
        if not self.is_base:
            mark_substituting(group)
        key = "/".join(parts)
        self._near_node = (key, member.node)
        self._near_obj = (key, group)
        return member.node

    # --- structure ------------------------------------------------------

    def create_group(self, path: str) -> None:
        """Create a group (and missing parents) at ``path``."""
        self.room.ensure(0)
        parts = split_path(path)
        self._add_group(self._parent(parts), parts)

    def create_dataset(self, path: str, **kwargs: Any) -> None:
        """Create a dataset at ``path`` with h5py's ``create_dataset`` keywords."""
        if kwargs.get("data") is not None:
            check_user_value(kwargs["data"])
        # _new_member drops a deletion marker this patch holds at ``path``: if creating
        # fails, put it back, or the object deleted earlier returns from an older container.
        self.room.ensure(create_bytes(kwargs))
        member = self._new_member(path, is_group=False)
        parent, name = member.parent, member.name
        try:
            dataset = parent.create_dataset(name, **kwargs)
            # The stored value may still be the marker (a fill value, bytes given as V1 data).
            check_user_value(dataset, path=path)
        except BaseException:
            self._forget(path)
            if name in parent:
                del parent[name]
            if member.was_deleted:
                write_deletion_marker(parent, name)
            raise
        self._near_leaf = ("/".join(split_path(path)), dataset)

    def copy_dataset(
        self, path: str, source: h5py.Dataset | ChunkedDataset, attrs: Mapping[str, Any]
    ) -> None:
        """Copy a dataset (storage kept; chunk deltas resolved) to ``path``, give it ``attrs``."""
        if isinstance(source, ChunkedDataset):
            self.room.ensure(source.storage_bound())
        else:
            self.room.ensure(source.id.get_storage_size())
        parent, name, node, _ = self._new_member(path, is_group=False)
        if isinstance(source, ChunkedDataset):
            write_plain(parent, name, source, self.room.ensure)
        else:
            parent.copy(source, name, without_attrs=True)
        for key, value in attrs.items():
            _store_attr(parent[name].attrs, key, value, path)
            node.attrs[key] = self.index

    def _drop_deltas(self, path: str) -> None:
        prefix = "/" + "/".join(split_path(path))
        for key in [k for k in self._deltas if k == prefix or k.startswith(prefix + "/")]:
            del self._deltas[key]

    def _forget(self, path: str) -> None:
        self._forget_near()
        self._drop_deltas(path)
        parts = split_path(path)
        parent = self.node("/".join(parts[:-1]))
        parent.members().pop(parts[-1], None)

    def delete(self, path: str) -> None:
        """Delete the group or dataset at ``path``."""
        parts = split_path(path)
        if not parts:
            raise RecordModeError("the root group cannot be deleted", "/")
        self.node(path)
        self.room.ensure(0)
        parent = self._patch_object(parts[:-1])
        assert isinstance(parent, h5py.Group)
        name = parts[-1]
        if name in parent:
            del parent[name]
            self._forget_near()
        if not self.is_base:
            write_deletion_marker(parent, name)
        self._forget(path)

    def take_dataset(
        self, path: str, attrs: Mapping[str, Any], source: h5py.Dataset | ChunkedDataset
    ) -> None:
        """Replace an older dataset by a copy in this patch, so that it can be written."""
        parts = split_path(path)
        parent = self._patch_object(parts[:-1])
        assert isinstance(parent, h5py.Group)
        if parts[-1] in parent:
            del parent[parts[-1]]
            self._forget_near()
        self._forget(path)
        self.copy_dataset(path, source, attrs)

    # --- attributes -----------------------------------------------------

    def set_attr(self, path: str, name: str, value: Any) -> None:
        """Set attribute ``name`` of the object at ``path``."""
        check_attr_name(name)
        if name == CHUNKS_ATTR:
            raise InvalidKeyError(
                f"attribute name {name!r} is reserved for chunk-level patches; choose another",
                path,
            )
        if name == "":
            raise InvalidKeyError("attribute names cannot be empty: HDF5 refuses them", path)
        check_user_value(value)
        node = self.node(path)
        self.room.ensure(value_bytes(value))
        target = self._patch_object(split_path(path))
        if not _create_scalar_attr(target, name, value):
            _store_attr(target.attrs, name, value, path)
        node.attrs[name] = self.index

    def delete_attr(self, path: str, name: str) -> None:
        """Delete attribute ``name`` of the object at ``path``."""
        node = self.node(path)
        if name not in node.attrs:
            raise NodeNotFoundError(f"no attribute {name!r} at {path!r}", path)
        self.room.ensure(0)
        attrs = self._patch_object(split_path(path)).attrs
        if name in attrs:
            del attrs[name]
        if not self.is_base and node.created < self.index:
            write_attr_deletion_marker(attrs, name)
        del node.attrs[name]

    def dataset(self, path: str) -> h5py.Dataset:
        """Return the patch's own HDF5 dataset at ``path`` for writing values."""
        node = self.node(path)
        if node.is_group or node.created != self.index:
            raise RecordModeError(
                f"dataset {path!r} lives in committed patch {node.created} and cannot change; "
                "call copy_into_patch() on it first",
                path,
            )
        dataset = self.file[path]
        assert isinstance(dataset, h5py.Dataset)
        return dataset

    # --- chunk deltas ---------------------------------------------------

    def delta(self, path: str) -> DeltaWriter | None:
        """The chunk delta this patch holds for the dataset at ``path``, if any."""
        key = "/" + "/".join(split_path(path))
        delta = self._deltas.get(key)
        if delta is None and self.index in self.node(key).deltas:
            group = self.file[key]
            assert isinstance(group, h5py.Group) and is_chunk_delta(group)
            delta = self._deltas[key] = DeltaWriter.load(group, self.index, self.room)
        return delta

    def start_delta(self, path: str, plain: h5py.Dataset, shape: tuple[int, ...]) -> DeltaWriter:
        """Begin this patch's chunk delta for the older chunked dataset at ``path``."""
        key = "/" + "/".join(split_path(path))
        node = self.node(key)
        assert not node.is_group and node.created != self.index
        self.room.ensure(0)
        group = self._patch_object(split_path(key))
        assert isinstance(group, h5py.Group)
        mark_substituting(group)
        delta = self._deltas[key] = DeltaWriter.create(group, plain, shape, self.index, self.room)
        node.deltas.append(self.index)
        return delta

    def write(self, path: str, selection: Any, value: Any) -> None:
        """Write ``value`` into the patch's own dataset at ``path``."""
        dataset = self.dataset(path)
        if dataset.shape == () and dataset.dtype.kind == "V" and dataset.dtype.itemsize == 1:
            # A scalar opaque byte can become the deletion marker.
            check_user_value(np.asarray(value, dtype=dataset.dtype), path=path)
        self.room.ensure(write_bytes(dataset, value))
        dataset[selection] = value


_INT64 = (-(1 << 63), (1 << 63) - 1)
_STRING = h5py.string_dtype("utf-8")
_HDF5_TYPES: dict[str, Any] = {}
"""HDF5 types of the values ``_create_scalar_attr`` writes, made once per process."""


def _create_scalar_attr(target: H5Object, name: str, value: Any) -> bool:
    """Create a new ``str`` or int64 attribute with HDF5's own calls; False if it is not one.

    A plain string or integer becomes exactly what h5py's ``attrs[name] = value``
    stores (a scalar variable-length UTF-8 string, a scalar int64), at a third
    of the cost: h5py writes every attribute under a temporary name and renames
    it, so that it can replace one. Names already there, names that are not
    ASCII and every other value are left to h5py.
    """
    if type(value) is str:
        if "\x00" in value or not (value.isascii() or _encodes(value)):
            return False  # h5py's error, or its way with surrogate escapes
        data = np.array(value, dtype=_STRING)
        kind = "str"
    elif type(value) is int and _INT64[0] <= value <= _INT64[1]:
        data = np.array(value, dtype=np.int64)
        kind = "int64"
    else:
        return False
    if not name.isascii():
        return False
    key = name.encode("ascii")
    if h5py.h5a.exists(target.id, key):
        return False
    hdf5_type = _HDF5_TYPES.get(kind)
    if hdf5_type is None:
        hdf5_type = _HDF5_TYPES[kind] = h5py.h5t.py_create(data.dtype, logical=True)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    attr = h5py.h5a.create(target.id, key, hdf5_type, space)
    try:
        attr.write(data)
    except BaseException:
        h5py.h5a.delete(target.id, key)
        raise
    return True


def _store_attr(attrs: h5py.AttributeManager, name: str, value: Any, path: str) -> None:
    """Set an attribute; a string read from a file with invalid UTF-8 is stored as it was.

    h5py reads such bytes as a ``str`` with surrogate escapes and cannot write that
    ``str`` back; its bytes go into the same UTF-8 string type instead, so the
    attribute reads back equal. Other lone surrogates get a typed error.
    """
    escaped = _escaped_bytes(value, path, name)
    if escaped is None:
        attrs[name] = value
    else:
        attrs.create(name, escaped, dtype=h5py.string_dtype("utf-8"))


def _escaped_bytes(value: Any, path: str, name: str) -> np.ndarray | None:
    """The UTF-8 bytes of a string (or string array) with surrogate escapes, else None."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, np.ndarray) and value.dtype == object:
        items = list(value.flat)
    else:
        return None
    if all(not isinstance(item, str) or item.isascii() or _encodes(item) for item in items):
        return None
    try:
        raw = [i.encode("utf-8", "surrogateescape") if isinstance(i, str) else i for i in items]
    except UnicodeEncodeError as exc:
        raise UnencodableValueError(
            f"attribute {name!r} of {path!r} holds a lone surrogate "
            f"({exc.object[exc.start : exc.end]!r}) that no HDF5 string can store; "
            "remove it or store the value as bytes",
            path,
        ) from None
    out = np.empty(len(raw), dtype=object)
    out[:] = raw
    return out.reshape(value.shape) if isinstance(value, np.ndarray) else out[0:1].reshape(())


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
