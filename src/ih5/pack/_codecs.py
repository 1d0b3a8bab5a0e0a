"""File-type codecs: how a source file becomes a dataset and comes back byte for byte.

Built in: ``.npy`` files as arrays of their own dtype and shape, everything
else as raw bytes. Labs add codecs for their own types (TIFF, CSV, ...) as
Python entry points in the group ``ih5.codecs``; each entry point names an
object with the :class:`FileCodec` interface. Codecs from entry points are
tried first, in name order; the first that accepts a file packs it.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import numpy as np

from ih5.pack._entry_points import group_entry_points
from ih5.record import IH5Dataset, IH5Group

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "ih5.codecs"
CODEC_ATTR = "codec"
RAW_CHUNK = 1 << 20
"""The longest chunk of raw-byte datasets (and the unit of streaming reads)."""


def raw_chunk_length(size: int) -> int:
    """Equal chunks of at most ``RAW_CHUNK`` bytes covering ``size`` bytes.

    HDF5 stores every chunk whole, so a file 2 bytes longer than 1 MiB would take
    2 MiB in chunks of 1 MiB; in two chunks of half that it takes its own size.
    """
    count = -(-size // RAW_CHUNK)
    return -(-size // count)


@dataclass(frozen=True)
class PackOptions:
    """Storage choices for packed files."""

    compression: str | None = None
    compression_opts: Any = None

    def storage(self) -> dict[str, Any]:
        """h5py ``create_dataset`` keywords for these choices."""
        if self.compression is None:
            return {}
        return {"compression": self.compression, "compression_opts": self.compression_opts}


class FileCodec(Protocol):
    """Turns one kind of file into a dataset and back, preserving every byte."""

    name: str
    """Stored in the dataset's ``codec`` attribute; picks the codec when unpacking."""

    def accepts(self, filename: str, head: bytes, size: int) -> bool:
        """Tell whether this codec packs the file (``head``: its first bytes, up to 64 KiB)."""
        ...

    def write(
        self, group: IH5Group, name: str, source: BinaryIO, size: int, options: PackOptions
    ) -> IH5Dataset:
        """Create dataset ``name`` in ``group`` from the file's bytes read from ``source``."""
        ...

    def read(self, dataset: IH5Dataset, out: BinaryIO) -> None:
        """Write the original file's bytes to ``out``."""
        ...


class RawCodec:
    """Any file as a chunked 1-D ``uint8`` dataset of its bytes."""

    name = "raw"

    def accepts(self, filename: str, head: bytes, size: int) -> bool:
        """Raw bytes fit every file."""
        return True

    def write(
        self, group: IH5Group, name: str, source: BinaryIO, size: int, options: PackOptions
    ) -> IH5Dataset:
        """Stream the bytes into the dataset one chunk at a time (a file of one chunk in
        a single create); the chunks are equal, so the last one holds no padding to speak of."""
        length = raw_chunk_length(size) if size else 0
        chunks = (length,) if size else None
        storage = options.storage() if size else {}
        if 0 < size <= RAW_CHUNK:
            whole = bytearray(size)
            offset = _fill(source, whole)
            if offset != size:
                raise OSError(f"{name} changed size while being packed ({size} -> {offset} bytes)")
            data = np.frombuffer(whole, np.uint8)
            return group.create_dataset(name, data=data, chunks=chunks, **storage)
        dataset = group.create_dataset(name, shape=(size,), dtype="u1", chunks=chunks, **storage)
        buffer = bytearray(length)  # one whole chunk per write: none is written twice
        offset = 0
        while offset < size:
            count = _fill(source, buffer)
            if not count or offset + count > size:
                offset += count
                break
            dataset[offset : offset + count] = np.frombuffer(buffer, np.uint8, count)
            offset += count
        if offset != size:
            raise OSError(f"{name} changed size while being packed ({size} -> {offset} bytes)")
        return dataset

    def read(self, dataset: IH5Dataset, out: BinaryIO) -> None:
        """Write the bytes back one chunk at a time."""
        size = len(dataset)
        for start in range(0, size, RAW_CHUNK):
            out.write(dataset[start : start + RAW_CHUNK].tobytes())


def _fill(source: BinaryIO, buffer: bytearray) -> int:
    """Read into ``buffer`` until it is full or the source ends; return the bytes read."""
    view = memoryview(buffer)
    offset = 0
    while offset < len(buffer):
        count = source.readinto(view[offset:])  # type: ignore[attr-defined]
        if not count:
            break
        offset += count
    return offset


NPY_MAGIC = b"\x93NUMPY"
NPY_HEADER_ATTR = "npy_header"
_NPY_KINDS = set("biufcS")
"""dtype kinds h5py stores natively; others (unicode, datetime, objects) go raw."""


def _npy_layout(head: bytes) -> tuple[int, tuple[int, ...], bool, np.dtype[Any]]:
    """Parse an ``.npy`` header: (header length, shape, fortran order, dtype)."""
    stream = io.BytesIO(head)
    version = np.lib.format.read_magic(stream)
    with warnings.catch_warnings():
        # numpy's advice to re-save files written by Python 2 concerns loading speed only;
        # the bytes are packed verbatim, so it would only repeat once per pass, unnamed.
        warnings.simplefilter("ignore", UserWarning)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    return stream.tell(), shape, fortran, dtype


class NpyCodec:
    """``.npy`` files as arrays of their own dtype and shape; the header is kept verbatim."""

    name = "npy"

    def accepts(self, filename: str, head: bytes, size: int) -> bool:
        """Accept well-formed ``.npy`` files of plain numeric or byte-string dtypes."""
        if not filename.endswith(".npy") or not head.startswith(NPY_MAGIC):
            return False
        try:
            header_len, shape, _, dtype = _npy_layout(head)
        except (ValueError, OSError, SyntaxError, TypeError):
            return False
        if not all(isinstance(dim, int) and dim >= 0 for dim in shape):
            return False  # a crafted header (numpy reads negative dimensions); stored raw
        # Python integers: an int64 product of crafted dimensions can wrap to the file size.
        expected = header_len + math.prod(shape) * dtype.itemsize
        return dtype.kind in _NPY_KINDS and not dtype.hasobject and expected == size

    def write(
        self, group: IH5Group, name: str, source: BinaryIO, size: int, options: PackOptions
    ) -> IH5Dataset:
        """Store the array with its dtype and shape, and the header bytes as an attribute."""
        raw = source.read()
        header_len, shape, fortran, dtype = _npy_layout(raw)
        array = np.frombuffer(raw, dtype, offset=header_len).reshape(
            shape, order="F" if fortran else "C"
        )
        # HDF5 filters need chunks, which empty and scalar (0-d) datasets cannot have.
        storage = options.storage() if array.size and array.ndim else {}
        dataset = group.create_dataset(name, data=array, **storage)
        dataset.attrs[NPY_HEADER_ATTR] = np.void(raw[:header_len])
        return dataset

    def read(self, dataset: IH5Dataset, out: BinaryIO) -> None:
        """Write the header, then the values in the file's own order."""
        header = dataset.attrs[NPY_HEADER_ATTR].tobytes()
        _, _, fortran, _ = _npy_layout(header)
        out.write(header)
        out.write(np.asarray(dataset[()]).tobytes(order="F" if fortran else "C"))


BUILTIN_CODECS: tuple[FileCodec, ...] = (NpyCodec(), RawCodec())


def _instance(loaded: Any) -> FileCodec:
    """An entry point may name a codec class or a ready codec object."""
    codec: FileCodec = loaded() if isinstance(loaded, type) else loaded
    return codec


def entry_points(*, group: str) -> list[EntryPoint]:
    """The installed entry points of ``group`` (the seam the plug-in tests replace)."""
    return group_entry_points(group)


def installed_codecs() -> list[FileCodec]:
    """Codecs from entry points (name order), then the built-in ones."""
    plugins = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)
    return [_instance(point.load()) for point in plugins] + list(BUILTIN_CODECS)


def choose_codec(codecs: Sequence[FileCodec], filename: str, head: bytes, size: int) -> FileCodec:
    """The first codec that accepts the file (raw bytes accept everything)."""
    for codec in codecs:
        if codec.accepts(filename, head, size):
            return codec
    return RawCodec()


def codec_named(codecs: Sequence[FileCodec], name: str) -> FileCodec | None:
    """The codec that wrote a dataset, by its stored name."""
    return next((codec for codec in codecs if codec.name == name), None)
