"""Writing one change set into the open patch container, and into the resolved tree.

Every change is recorded twice: as HDF5 objects and markers in the patch
file (FORMAT.md section 4), and in the resolved tree, so that the overlay
shows the change at once without re-reading anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import h5py
import numpy as np

from ih5.errors import InvalidKeyError, NodeExistsError, NodeNotFoundError, RecordModeError
from ih5.format import (
    check_attr_name,
    check_user_value,
    is_deletion_marker,
    mark_substituting,
    write_attr_deletion_marker,
    write_deletion_marker,
)
from ih5.record.chunkmap import CHUNKS_ATTR, DeltaWriter, is_chunk_delta
from ih5.record.chunks import ChunkedDataset, write_plain
from ih5.record.tree import Node, lookup, split_path

H5Object: TypeAlias = Any
"""An h5py Group or Dataset (h5py ships no type hints)."""


class PatchWriter:
    """The open, uncommitted container of a record and the tree it changes."""

    def __init__(self, file: h5py.File, index: int, is_base: bool, root: Node) -> None:
        self.file = file
        self.index = index
        self.is_base = is_base
        self.root = root
        self._deltas: dict[str, DeltaWriter] = {}
        """Chunk deltas written (or resumed) in this patch, by dataset path."""

    # --- locating -------------------------------------------------------

    def node(self, path: str) -> Node:
        """Return the overlay node at ``path`` or raise NodeNotFoundError."""
        node = lookup(self.root, path)
        if node is None:
            raise NodeNotFoundError(f"no object at {path!r} in this record", path)
        return node

    def _patch_object(self, parts: list[str]) -> H5Object:
        """Return the patch's object for an existing overlay path, adding virtual groups."""
        obj: H5Object = self.file
        for name in parts:
            assert isinstance(obj, h5py.Group)
            obj = obj[name] if name in obj else obj.create_group(name)
        return obj

    def _new_member(self, path: str, is_group: bool) -> tuple[h5py.Group, str, Node]:
        """Prepare a fresh overlay member: create missing parents, clear old patch entries."""
        parts = split_path(path)
        if not parts:
            raise NodeExistsError("the root group always exists", "/")
        node = self.root
        for depth, name in enumerate(parts[:-1]):
            child = node.members().get(name)
            if child is None:
                self._create(parts[: depth + 1], is_group=True)
                child = node.members()[name]
            elif not child.is_group:
                where = "/" + "/".join(parts[: depth + 1])
                raise NodeExistsError(f"{where!r} is a dataset, not a group", where)
            node = child
        name = parts[-1]
        if name in node.members():
            raise NodeExistsError(f"an object already exists at {path!r}", path)
        parent = self._patch_object(parts[:-1])
        assert isinstance(parent, h5py.Group)
        if name in parent:
            del parent[name]
        self._drop_deltas(path)
        created = Node(self.index, is_group)
        node.members()[name] = created
        return parent, name, created

    def _create(self, parts: list[str], is_group: bool) -> None:
        parent, name, _ = self._new_member("/".join(parts), is_group)
        group = parent.create_group(name)
        if not self.is_base:
            mark_substituting(group)

    # --- structure ------------------------------------------------------

    def create_group(self, path: str) -> None:
        """Create a group (and missing parents) at ``path``."""
        self._create(split_path(path), is_group=True)

    def create_dataset(self, path: str, **kwargs: Any) -> None:
        """Create a dataset at ``path`` with h5py's ``create_dataset`` keywords."""
        if kwargs.get("data") is not None:
            check_user_value(kwargs["data"])
        # _new_member drops a deletion marker this patch holds at ``path``: if creating
        # fails, put it back, or the object deleted earlier returns from an older container.
        was_deleted = is_deletion_marker(self.file.get("/" + "/".join(split_path(path))))
        parent, name, _ = self._new_member(path, is_group=False)
        try:
            parent.create_dataset(name, **kwargs)
            # The stored value may still be the marker (a fill value, bytes given as V1 data).
            check_user_value(parent[name], path=path)
        except BaseException:
            self._forget(path)
            if name in parent:
                del parent[name]
            if was_deleted:
                write_deletion_marker(parent, name)
            raise

    def copy_dataset(
        self, path: str, source: h5py.Dataset | ChunkedDataset, attrs: Mapping[str, Any]
    ) -> None:
        """Copy a dataset (storage kept; chunk deltas resolved) to ``path``, give it ``attrs``."""
        parent, name, node = self._new_member(path, is_group=False)
        if isinstance(source, ChunkedDataset):
            write_plain(parent, name, source)
        else:
            parent.copy(source, name, without_attrs=True)
        for key, value in attrs.items():
            parent[name].attrs[key] = value
            node.attrs[key] = self.index

    def _drop_deltas(self, path: str) -> None:
        prefix = "/" + "/".join(split_path(path))
        for key in [k for k in self._deltas if k == prefix or k.startswith(prefix + "/")]:
            del self._deltas[key]

    def _forget(self, path: str) -> None:
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
        parent = self._patch_object(parts[:-1])
        assert isinstance(parent, h5py.Group)
        name = parts[-1]
        if name in parent:
            del parent[name]
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
        self._patch_object(split_path(path)).attrs[name] = value
        node.attrs[name] = self.index

    def delete_attr(self, path: str, name: str) -> None:
        """Delete attribute ``name`` of the object at ``path``."""
        node = self.node(path)
        if name not in node.attrs:
            raise NodeNotFoundError(f"no attribute {name!r} at {path!r}", path)
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
            delta = self._deltas[key] = DeltaWriter.load(group, self.index)
        return delta

    def start_delta(self, path: str, plain: h5py.Dataset, shape: tuple[int, ...]) -> DeltaWriter:
        """Begin this patch's chunk delta for the older chunked dataset at ``path``."""
        key = "/" + "/".join(split_path(path))
        node = self.node(key)
        assert not node.is_group and node.created != self.index
        group = self._patch_object(split_path(key))
        assert isinstance(group, h5py.Group)
        mark_substituting(group)
        delta = self._deltas[key] = DeltaWriter.create(group, plain, shape, self.index)
        node.deltas.append(self.index)
        return delta

    def write(self, path: str, selection: Any, value: Any) -> None:
        """Write ``value`` into the patch's own dataset at ``path``."""
        dataset = self.dataset(path)
        if dataset.shape == () and dataset.dtype.kind == "V" and dataset.dtype.itemsize == 1:
            # A scalar opaque byte can become the deletion marker.
            check_user_value(np.asarray(value, dtype=dataset.dtype), path=path)
        dataset[selection] = value
