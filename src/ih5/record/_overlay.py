"""h5py-like views of a record: groups and datasets resolved through the chain.

A view holds only its record and absolute path; every access resolves the
path in the record's resolved tree, so a view sees changes made through any
other view and fails cleanly once its object is deleted.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

import h5py
import numpy as np

from ih5.errors import (
    NodeNotFoundError,
    NotAGroupError,
    RecordClosedError,
    RecordModeError,
    StubError,
    UnknownKeywordError,
    UnsupportedValueError,
)
from ih5.format import IH5UserBlock
from ih5.record._attrs import IH5AttributeManager
from ih5.record._chain import Chain
from ih5.record._chunks import ChunkedDataset
from ih5.record._expected import expecting, read_end_to_end
from ih5.record._opening import payload_errors
from ih5.record._paths import split_path
from ih5.record._tree import Node, walk

T = TypeVar("T")

OPTIONS_EXT = "ih5_options"
"""User block section with per-record options, inherited by every patch."""
METADOR_COMPATIBLE = "metador_compatible"
"""Option: keep every container readable by metador-core 0.1.1 (no chunk-level patches)."""


def metador_compatible(user_block: IH5UserBlock | None) -> bool:
    """True when a record asked (at creation) for files metador-core 0.1.1 reads."""
    if user_block is None:
        return False
    options = user_block.ub_exts.get(OPTIONS_EXT)
    return isinstance(options, dict) and options.get(METADOR_COMPATIBLE) is True


class AsStrView:
    """``dataset.asstr()`` of a dataset with chunk deltas: bytes read as ``str``."""

    def __init__(self, dataset: IH5Dataset, encoding: str, errors: str) -> None:
        self._dataset = dataset
        self._encoding = encoding
        self._errors = errors

    def _decode(self, item: Any) -> str:
        return item.decode(self._encoding, self._errors) if isinstance(item, bytes) else str(item)

    def __getitem__(self, selection: Any) -> Any:
        values = self._dataset[selection]
        if isinstance(values, np.ndarray):
            decoded = [self._decode(item) for item in values.flat]
            return np.array(decoded, dtype=object).reshape(values.shape)
        return self._decode(values)

    def __len__(self) -> int:
        return len(self._dataset)


def with_metador_compatibility(user_block: IH5UserBlock) -> IH5UserBlock:
    """``user_block`` carrying the metador-compatibility option (inherited by every patch)."""
    options = {**user_block.ub_exts.get(OPTIONS_EXT, {}), METADOR_COMPATIBLE: True}
    return user_block.model_copy(update={"ub_exts": {**user_block.ub_exts, OPTIONS_EXT: options}})


class AstypeView:
    """``dataset.astype(dtype)``: reads converted to ``dtype`` (h5py's AstypeWrapper)."""

    def __init__(self, dataset: IH5Dataset, dtype: np.dtype[Any]) -> None:
        self._dataset = dataset
        self._dtype = dtype

    def __getitem__(self, selection: Any) -> Any:
        return np.asarray(self._dataset[selection]).astype(self._dtype)

    def __len__(self) -> int:
        return len(self._dataset)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        return np.asarray(self[()], dtype=dtype)


DATASET_KEYWORDS = frozenset(
    {
        "chunks", "compression", "compression_opts", "shuffle", "fletcher32", "maxshape",
        "fillvalue", "scaleoffset", "track_times", "track_order", "external", "dcpl", "dapl",
        "efile_prefix", "virtual_prefix", "allow_unknown_filter", "rdcc_nslots",
        "rdcc_nbytes", "rdcc_w0", "fill_time",
    }
)  # fmt: skip
"""The keywords h5py 3's ``create_dataset`` takes besides shape, dtype and data."""


class IH5Object:
    """What groups and datasets share: name, file, parent, attrs."""

    def __init__(self, chain: Chain, path: str, file: IH5Group | None = None) -> None:
        self._chain = chain
        self._path = path
        self._file = file

    @property
    def name(self) -> str:
        """Absolute path of this object in the record."""
        return self._path

    @property
    def file(self) -> IH5Group:
        """The record this object belongs to (its root group, as h5py's ``File``)."""
        if self._file is not None:
            return self._file
        assert isinstance(self, IH5Group)
        return self

    @property
    def parent(self) -> IH5Group:
        """The group containing this object (the root is its own parent)."""
        return IH5Group(self._chain, posixpath.dirname(self._path) or "/", self.file)

    @property
    def attrs(self) -> IH5AttributeManager:
        """The attributes of this object."""
        return IH5AttributeManager(self._chain, self._path)

    def _node(self) -> Node:
        return self._chain.resolve(self._path)

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, IH5Object)
            and other._chain is self._chain
            and other._path == self._path
        )

    def __hash__(self) -> int:
        return hash((id(self._chain), self._path))


class IH5Dataset(IH5Object):
    """A dataset of a record; slicing reads only the requested part."""

    def _chunked(self, values: bool = True) -> ChunkedDataset | None:
        """The dataset assembled from chunk deltas, or None when it has none.

        ``values``: refuse a stub's placeholder (its shape and layout are known)."""
        node = self._node()
        if not node.deltas:
            return None
        if values:
            self._chain.data_file(node.created, self._path)
        return self._chain.chunked(self._path, node)

    def _h5(self) -> h5py.Dataset:
        file = self._chain.data_file(self._node().created, self._path)
        with payload_errors(file):
            dataset = file[self._path]
            if not isinstance(dataset, h5py.Dataset):
                # The facts said dataset: the container is not the one they were read from.
                raise KeyError(f"{self._path} is not a dataset in {file.filename}")
        return dataset

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape, as in h5py (None for an empty, NULL-dataspace dataset)."""
        chunked = self._chunked(values=False)
        if chunked is not None:
            return chunked.shape
        shape = self._h5().shape
        return None if shape is None else tuple(shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """Element type, as in h5py."""
        dtype: np.dtype[Any] = self._h5().dtype
        return dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        shape = self.shape
        return 0 if shape is None else len(shape)

    @property
    def size(self) -> int | None:
        """Number of elements (None for an empty, NULL-dataspace dataset)."""
        shape = self.shape
        return None if shape is None else int(np.prod(shape, dtype=np.int64))

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """Chunk shape, or None for contiguous storage."""
        return self._h5().chunks  # type: ignore[no-any-return]

    @property
    def compression(self) -> str | None:
        """Compression filter name, or None."""
        return self._h5().compression  # type: ignore[no-any-return]

    @property
    def compression_opts(self) -> Any:
        """Compression options, as in h5py."""
        return self._h5().compression_opts

    @property
    def maxshape(self) -> tuple[int | None, ...] | None:
        """Maximum shape, as in h5py (None for an empty, NULL-dataspace dataset)."""
        maxshape = self._h5().maxshape
        return None if maxshape is None else tuple(maxshape)

    @property
    def fillvalue(self) -> Any:
        """Fill value, as in h5py."""
        return self._h5().fillvalue

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            # h5py's message for scalar and empty datasets.
            raise TypeError("Attempt to take len() of scalar dataset")
        return shape[0]

    def __iter__(self) -> Iterator[Any]:
        """Iterate over the first axis, as h5py does."""
        for index in range(len(self)):
            yield self[index]

    def __getitem__(self, selection: Any) -> Any:
        node = self._node()
        if node.deltas:
            chunked = self._chain.chunked(self._path, node)
            if not chunked.plain_readable:
                self._chain.data_file(node.created, self._path)  # a stub: StubError
            try:
                return chunked.read(selection)
            except (OSError, KeyError, RuntimeError):
                # Typed as payload_errors() types them; outside the fast path of a read.
                with payload_errors(chunked.plain):
                    raise
        dataset = self._h5()
        with payload_errors(dataset):
            values = read_end_to_end(dataset, selection)
            if values is not None:
                return values
            with expecting(dataset, selection):
                return dataset[selection]

    def read_direct(
        self, dest: np.ndarray[Any, Any], source_sel: Any = None, dest_sel: Any = None
    ) -> None:
        """Read ``source_sel`` of the dataset into ``dest[dest_sel]`` (h5py's ``read_direct``)."""
        if self._chunked() is None:
            dataset = self._h5()
            with (
                payload_errors(dataset),
                expecting(dataset, () if source_sel is None else source_sel),
            ):
                dataset.read_direct(dest, source_sel, dest_sel)
            return
        values = self[() if source_sel is None else source_sel]
        dest[() if dest_sel is None else dest_sel] = values

    def astype(self, dtype: Any) -> AstypeView:
        """A view whose reads are converted to ``dtype`` (h5py's ``astype``)."""
        return AstypeView(self, np.dtype(dtype))

    def _older(self, what: str) -> bool:
        """True when the dataset's storage is in a committed patch (so ``what`` needs chunks).

        Raises metador's error for records that asked for metador compatibility, and a
        clear one for contiguous datasets.
        """
        writer = self._chain.require_writer()
        node = self._node()
        if node.created == writer.index and not node.deltas:
            return False
        plain = self._chain.h5(node.created)[self._path]
        if plain.chunks is None:
            # A stub placeholder cannot be copied in either: raise StubError, not "copy it first".
            self._chain.data_file(node.created, self._path)
        if metador_compatible(self._chain.newest):
            raise RecordModeError(
                f"dataset {self._path!r} is not from the latest patch (this record keeps "
                f"metador-core compatibility), so {what} cannot change it; "
                "call copy_into_patch() on it first",
                self._path,
            )
        if plain.chunks is None:
            raise RecordModeError(
                f"dataset {self._path!r} of committed patch {node.created} is stored "
                f"contiguously, so {what} would have to copy it whole; create it with "
                "chunks=True (or a chunk shape) to patch chunks, or call copy_into_patch() "
                "to copy it into the open patch",
                self._path,
            )
        return True

    def _delta_view(self) -> tuple[ChunkedDataset, Any]:
        """The open patch's chunk delta for this dataset (started if needed) and its view."""
        writer = self._chain.require_writer()
        node = self._node()
        delta = writer.delta(self._path)
        if delta is None:
            before = self._chain.chunked(self._path, node)
            delta = writer.start_delta(self._path, before.plain, before.shape)
        return self._chain.chunked(self._path, node), delta

    def __setitem__(self, selection: Any, value: Any) -> None:
        writer = self._chain.require_writer()
        if not self._older("a write"):
            writer.write(self._path, selection, value)
            return
        # Check the write first: a refused one must not leave an empty delta behind.
        self._chain.chunked(self._path).prepare(selection, value)
        view, delta = self._delta_view()
        prepared = view.prepare(selection, value)
        # At most one stored chunk per touched chunk: room for them before HDF5 writes.
        writer.room.ensure(view.touched_bytes(prepared.selection))
        view.write(prepared, delta)

    def resize(self, size: int | tuple[int, ...], axis: int | None = None) -> None:
        """Change the shape within ``maxshape`` (h5py's ``resize``); older datasets keep their
        chunks: growing adds none, shrinking hides some."""
        writer = self._chain.require_writer()
        if not self._older("resize()"):
            dataset = writer.dataset(self._path)
            dataset.resize(size, axis)
            return
        current = self._chain.chunked(self._path)
        if axis is not None:
            if not isinstance(size, (int, np.integer)):
                raise TypeError("Argument must be a single int if axis is specified")
            shape = list(current.shape)
            shape[axis] = int(size)
        else:
            shape = [int(size)] if isinstance(size, (int, np.integer)) else [int(n) for n in size]
        if len(shape) != len(current.shape):
            raise TypeError(f"new shape {tuple(shape)} has the wrong rank for {self._path!r}")
        limits = current.plain.maxshape
        for n, limit in zip(shape, limits, strict=False):
            if n < 0 or (limit is not None and n > limit):
                raise RecordModeError(
                    f"cannot resize {self._path!r} to {tuple(shape)}: its maxshape is "
                    f"{tuple(limits)}",
                    self._path,
                )
        view, delta = self._delta_view()
        view.hide_beyond(tuple(shape), delta)
        delta.set_shape(tuple(shape))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        return np.asarray(self[()], dtype=dtype)

    def asstr(self, encoding: str | None = None, errors: str = "strict") -> Any:
        """Read string data as ``str`` (h5py's ``asstr`` wrapper)."""
        if self._node().deltas:
            return AsStrView(self, encoding or "utf-8", errors)
        return self._h5().asstr(encoding, errors)

    def copy_into_patch(self) -> IH5Dataset:
        """Copy this dataset (values, storage, attributes) into the open patch so it can change."""
        writer = self._chain.require_writer()
        if self._node().created == writer.index:
            raise RecordModeError(
                f"dataset {self._path!r} is already in the latest (open) patch; write to it",
                self._path,
            )
        values = dict(self.attrs.items())
        writer.take_dataset(self._path, values, self._chunked() or self._h5())
        return self

    def __repr__(self) -> str:
        try:
            return f'<IH5 dataset "{self._path}": shape {self.shape}, type "{self.dtype.str}">'
        except StubError:
            return f'<IH5 dataset "{self._path}": stub placeholder>'
        except NodeNotFoundError:
            return f'<IH5 dataset "{self._path}": deleted>'
        except RecordClosedError:
            return f'<IH5 dataset "{self._path}": closed record>'


class IH5Group(IH5Object, MutableMapping[str, "IH5Group | IH5Dataset"]):
    """A group of a record, with h5py's mapping and creation API."""

    def _abs(self, path: str) -> str:
        parts = split_path(path)
        if path.startswith("/"):
            return "/" + "/".join(parts)
        return "/" + "/".join([*split_path(self._path), *parts])

    def _view(self, path: str, node: Node) -> IH5Group | IH5Dataset:
        if node.is_group:
            return IH5Group(self._chain, path, self.file)
        return IH5Dataset(self._chain, path, self.file)

    def __getitem__(self, path: str) -> IH5Group | IH5Dataset:
        target = self._abs(path)
        try:
            return self._view(target, self._chain.resolve(target))
        except NodeNotFoundError:
            self._refuse_path_through_dataset(target)
            raise

    def _refuse_path_through_dataset(self, target: str) -> None:
        parts = split_path(target)
        for depth in range(1, len(parts)):
            prefix = "/" + "/".join(parts[:depth])
            try:
                node = self._chain.resolve(prefix)
            except NodeNotFoundError:
                return
            if not node.is_group:
                raise NotAGroupError(
                    f"{target!r} goes through {prefix!r}, which is a dataset, not a group",
                    target,
                )

    def __setitem__(self, path: str, value: Any) -> None:
        if isinstance(value, (IH5Group, IH5Dataset)):
            raise UnsupportedValueError(
                f"cannot store {value.name!r} at {path!r}: hard links are not supported; "
                "use copy() to copy it",
                path,
            )
        if isinstance(value, (h5py.SoftLink, h5py.ExternalLink, h5py.HardLink)):
            raise UnsupportedValueError(
                f"cannot store h5py.{type(value).__name__} at {path!r}: links (symlink, "
                "ExternalLink, hard links) are not supported; store a copy of the data",
                path,
            )
        self.create_dataset(path, data=value)

    def __delitem__(self, path: str) -> None:
        self._chain.require_writer().delete(self._abs(path))

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._node().members()))

    def __len__(self) -> int:
        return len(self._node().members())

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            self._chain.resolve(self._abs(path))
        except NodeNotFoundError:
            return False
        return True

    def create_group(self, path: str, track_order: bool | None = None) -> IH5Group:
        """Create a group (and missing parents); fail if something exists there."""
        target = self._abs(path)
        self._chain.require_writer().create_group(target)
        return IH5Group(self._chain, target, self.file)

    def create_dataset(
        self, path: str, shape: Any = None, dtype: Any = None, data: Any = None, **kwargs: Any
    ) -> IH5Dataset:
        """Create a dataset; accepts h5py's keywords (chunks, compression, fillvalue, ...)."""
        unknown = sorted(set(kwargs) - DATASET_KEYWORDS)
        if unknown:
            raise UnknownKeywordError(
                f"create_dataset({path!r}) got unknown keyword(s) {', '.join(unknown)}; "
                f"h5py's are {', '.join(sorted(DATASET_KEYWORDS))}",
                path,
            )
        target = self._abs(path)
        self._chain.require_writer().create_dataset(
            target, shape=shape, dtype=dtype, data=data, **kwargs
        )
        return IH5Dataset(self._chain, target, self.file)

    def require_group(self, path: str) -> IH5Group:
        """Return the group at ``path``, creating it if missing."""
        if path not in self:
            return self.create_group(path)
        found = self[path]
        if not isinstance(found, IH5Group):
            # TypeError, as h5py raises for an incompatible object.
            raise TypeError(f"{found.name!r} exists and is a dataset, not a group")
        return found

    def require_dataset(
        self, path: str, shape: Any, dtype: Any, exact: bool = False, **kwargs: Any
    ) -> IH5Dataset:
        """Return the dataset at ``path`` if shape and dtype fit, else create it (h5py rules)."""
        if path not in self:
            return self.create_dataset(path, shape=shape, dtype=dtype, **kwargs)
        found = self[path]
        if not isinstance(found, IH5Dataset):
            # TypeError, as h5py raises for an incompatible object.
            raise TypeError(f"{found.name!r} exists and is a group, not a dataset")
        wanted_shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if found.shape != wanted_shape:
            raise TypeError(f"shapes do not match (existing {found.shape} vs new {wanted_shape})")
        wanted = np.dtype(dtype)
        fits = found.dtype == wanted if exact else np.can_cast(wanted, found.dtype)
        if not fits:
            raise TypeError(f"datatypes do not match (existing {found.dtype} vs new {wanted})")
        return found

    def copy(
        self,
        source: str | IH5Group | IH5Dataset,
        dest: str | IH5Group,
        name: str | None = None,
        without_attrs: bool = False,
    ) -> None:
        """Copy a group or dataset (of this or another record) into this record's patch."""
        src = self[source] if isinstance(source, str) else source
        if isinstance(dest, IH5Group):
            target = posixpath.join(dest.name, name or posixpath.basename(src.name))
        else:
            target = self._abs(dest)
        writer = self._chain.require_writer()
        for path, node in list(walk(src._node(), src.name)):
            relative = posixpath.relpath(path, src.name)
            destination = target if relative == "." else posixpath.join(target, relative)
            attrs = {} if without_attrs else dict(IH5AttributeManager(src._chain, path).items())
            if node.is_group:
                writer.create_group(destination)
                for key, value in attrs.items():
                    writer.set_attr(destination, key, value)
            else:
                dataset = IH5Dataset(src._chain, path, src.file)
                writer.copy_dataset(destination, dataset._chunked() or dataset._h5(), attrs)

    def move(self, source: str, dest: str) -> None:
        """Move an object within the record (a copy into the patch plus a deletion)."""
        self.copy(source, dest)
        del self[source]

    def visit(self, func: Callable[[str], T | None]) -> T | None:
        """Call ``func(name)`` for every member below this group until it returns non-None."""
        return self.visititems(lambda name, _obj: func(name))

    def visititems(self, func: Callable[[str, IH5Group | IH5Dataset], T | None]) -> T | None:
        """Call ``func(name, obj)`` depth-first below this group until it returns non-None."""
        for path, node in walk(self._node(), self._path):
            if path == self._path:
                continue
            result = func(posixpath.relpath(path, self._path), self._view(path, node))
            if result is not None:
                return result
        return None

    def __repr__(self) -> str:
        try:
            return f'<IH5 group "{self._path}" ({len(self)} members)>'
        except NodeNotFoundError:
            return f'<IH5 group "{self._path}": deleted>'
        except RecordClosedError:
            return f'<IH5 group "{self._path}": closed record>'
