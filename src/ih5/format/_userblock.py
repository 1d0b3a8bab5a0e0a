"""The IH5 user block: the first bytes of every container, naming its place in a record.

Layout (FORMAT.md section 2): ``ih5_v01\\n``, the decimal block size and
``\\n``, one line of JSON, a NUL byte, zero padding up to the block size. The
HDF5 superblock follows at offset ``block_size``.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from uuid import UUID, uuid4

from ih5.errors import HashsumFormatError, NotAnIH5ContainerError, UserBlockTooLargeError
from ih5.format._extensions import inheritable_exts
from ih5.fs import DEFAULT_ALGORITHM, Progress, hashsum_file, parse_hashsum

if TYPE_CHECKING:  # pydantic is imported only for input not in the plain form
    from pydantic import GetCoreSchemaHandler, ValidationError
    from pydantic_core import CoreSchema

MAGIC = "ih5_v01"
USER_BLOCK_SIZE = 1024
MIN_USER_BLOCK_SIZE = 512
MAX_USER_BLOCK_SIZE = 1 << 20
"""Sanity cap on a claimed block size: IH5 writes 1024; anything huge is damage."""

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

_MAGIC_LINE = f"{MAGIC}\n".encode("ascii")
_SIZE_LINE = re.compile(rb"([0-9]{1,8})\n")


class BinaryReadable(Protocol):
    """A binary stream positioned at a container's first byte (file, HTTP body, ...)."""

    def read(self, size: int, /) -> bytes: ...


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_FIELDS = ("record_uuid", "patch_index", "patch_uuid", "prev_patch", "hdf5_hashsum", "ub_exts")


def _plain_uuid(value: object) -> UUID | None:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and _UUID.fullmatch(value) is not None:
        return UUID(value)
    return None


def _plain_fields(data: Mapping[str, Any], from_json: bool) -> dict[str, Any] | None:
    """The fields of ``data`` when each is in the form the model takes unchanged; else None
    (the model decides)."""
    record_uuid = _plain_uuid(data.get("record_uuid"))
    patch_uuid = _plain_uuid(data.get("patch_uuid"))
    index = data.get("patch_index")
    prev = data.get("prev_patch")
    prev_patch = None if prev is None else _plain_uuid(prev)
    hashsum = data.get("hdf5_hashsum")
    exts = data.get("ub_exts", {})
    if (
        record_uuid is None
        or patch_uuid is None
        or type(index) is not int
        or index < 0
        or (prev is not None and prev_patch is None)
        or not (hashsum is None or type(hashsum) is str)
        or type(exts) is not dict
        or any(type(key) is not str for key in exts)
    ):
        return None
    try:
        if hashsum is not None:
            parse_hashsum(hashsum)
        if not from_json:
            json.dumps(exts)
    except (HashsumFormatError, TypeError, ValueError, RecursionError):
        return None
    return {
        "record_uuid": record_uuid,
        "patch_index": index,
        "patch_uuid": patch_uuid,
        "prev_patch": prev_patch,
        "hdf5_hashsum": hashsum,
        "ub_exts": dict(exts),
    }


def _validated_fields(data: object, from_json: bool = False) -> dict[str, Any]:
    """The fields of a user block from ``data``; pydantic's ValidationError if it is none."""
    if isinstance(data, Mapping):
        fields = _plain_fields(data, from_json)
        if fields is not None:
            return fields
    from ih5.format._userblock_model import FROM_JSON, validate_fields

    return validate_fields(data, FROM_JSON if from_json else None)


class IH5UserBlock:
    """The JSON fields of a user block; frozen, so a new state means a new block.

    It behaves as the pydantic model it was (``model_validate``, ``model_copy``,
    ``model_dump``, pydantic's ValidationError for bad fields, usable as a field of a
    model) without importing pydantic for blocks in the plain form.
    """

    record_uuid: UUID
    patch_index: int
    patch_uuid: UUID
    prev_patch: UUID | None
    hdf5_hashsum: str | None
    ub_exts: dict[str, Any]

    def __init__(self, **data: Any) -> None:
        self.__dict__.update(_validated_fields(data))

    @classmethod
    def _of(cls, fields: dict[str, Any]) -> IH5UserBlock:
        block = cls.__new__(cls)
        block.__dict__.update(fields)
        return block

    @classmethod
    def model_validate(cls, obj: object, *, context: dict[str, Any] | None = None) -> IH5UserBlock:
        """A block from a mapping of its fields (or the block itself); ValidationError if bad."""
        if isinstance(obj, cls):
            return obj
        from_json = context is not None and context.get("parsed from JSON text") is True
        return cls._of(_validated_fields(obj, from_json))

    @classmethod
    def from_json_object(cls, doc: dict[str, Any]) -> IH5UserBlock:
        """The block of a user block's JSON text, as ``json.loads`` gave it."""
        return cls._of(_validated_fields(doc, from_json=True))

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> IH5UserBlock:
        """A copy with ``update`` applied (unchecked, as pydantic's ``model_copy``)."""
        fields = copy.deepcopy(self.__dict__) if deep else dict(self.__dict__)
        fields.update({key: value for key, value in (update or {}).items() if key in _FIELDS})
        return type(self)._of(fields)

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        """The fields as a dict; ``mode="json"``: as JSON data (uuids as text)."""
        if mode == "json":
            loaded: dict[str, Any] = json.loads(self.to_text())
            return loaded
        return {name: copy.deepcopy(self.__dict__[name]) for name in _FIELDS}

    def __setattr__(self, name: str, value: object) -> None:
        from ih5.format._userblock_model import frozen_error

        raise frozen_error(name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"IH5UserBlock is frozen; cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IH5UserBlock):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        # ub_exts is a dict, so hash only the identity fields (equal blocks share them).
        return hash((self.record_uuid, self.patch_index, self.patch_uuid))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={self.__dict__[name]!r}" for name in _FIELDS)
        return f"IH5UserBlock({fields})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        """As a field of a pydantic model: validated by the fields' model, dumped as a dict."""
        from pydantic_core import core_schema

        from ih5.format._userblock_model import IH5UserBlock as Fields

        def validate(value: object, inner: Callable[[object], Any]) -> IH5UserBlock:
            if isinstance(value, cls):
                return value
            return cls._of(dict(inner(value)))

        def dump(value: IH5UserBlock, info: Any) -> dict[str, Any]:
            return value.model_dump(mode="json" if info.mode == "json" else "python")

        return core_schema.no_info_wrap_validator_function(
            validate,
            handler.generate_schema(Fields),
            serialization=core_schema.plain_serializer_function_ser_schema(dump, info_arg=True),
        )

    @classmethod
    def create(
        cls, prev: IH5UserBlock | None = None, record_uuid: UUID | None = None
    ) -> IH5UserBlock:
        """Return the uncommitted block of a new base, or of the patch that follows ``prev``."""
        if prev is None:
            fresh = uuid4() if record_uuid is None else record_uuid
            return cls(record_uuid=fresh, patch_index=0, patch_uuid=uuid4())
        if record_uuid is not None and record_uuid != prev.record_uuid:
            raise ValueError("a patch keeps the record_uuid of its predecessor")
        return cls(
            record_uuid=prev.record_uuid,
            patch_index=prev.patch_index + 1,
            patch_uuid=uuid4(),
            prev_patch=prev.patch_uuid,
            ub_exts=copy.deepcopy(inheritable_exts(prev.ub_exts)),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IH5UserBlock:
        """Read the user block of the container file at ``path`` (metador-core's name)."""
        return read_user_block(path)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write this block, in place, over the user block of the closed file at ``path``."""
        write_user_block(path, self)

    def to_text(self) -> str:
        """Return the JSON line exactly as metador-core 0.1.1 writes it (key order, escaping)."""
        return json.dumps(
            {
                "record_uuid": str(self.record_uuid),
                "patch_index": self.patch_index,
                "patch_uuid": str(self.patch_uuid),
                "prev_patch": None if self.prev_patch is None else str(self.prev_patch),
                "hdf5_hashsum": self.hdf5_hashsum,
                "ub_exts": self.ub_exts,
            },
            ensure_ascii=True,
        )


def _is_block_size(size: int) -> bool:
    return MIN_USER_BLOCK_SIZE <= size <= MAX_USER_BLOCK_SIZE and size & (size - 1) == 0


def _encode(ub: IH5UserBlock, block_size: int, path: str | os.PathLike[str] | None) -> bytes:
    if not _is_block_size(block_size):
        raise ValueError(
            f"user block size {block_size} is not a power of two between "
            f"{MIN_USER_BLOCK_SIZE} and {MAX_USER_BLOCK_SIZE}"
        )
    data = _MAGIC_LINE + f"{block_size}\n".encode("ascii") + ub.to_text().encode("ascii") + b"\0"
    if len(data) > block_size:
        where = f"{os.fspath(path)}: " if path is not None else ""
        raise UserBlockTooLargeError(
            f"{where}the user block of record {ub.record_uuid} (patch {ub.patch_index}) "
            f"needs {len(data)} bytes but the block holds {block_size}; nothing was written. "
            "Shrink the ub_exts sections.",
            path,
        )
    return data.ljust(block_size, b"\0")


def encode_user_block(ub: IH5UserBlock, block_size: int = USER_BLOCK_SIZE) -> bytes:
    """Return the exact ``block_size`` bytes of the user block holding ``ub``."""
    return _encode(ub, block_size, None)


def _not_ih5(name: str, problem: str) -> NotAnIH5ContainerError:
    return NotAnIH5ContainerError(
        f"{name} is not an IH5 container: {problem}. Pass only IH5 containers "
        "(NAME.ih5, NAME.pK.ih5) written by ih5 or metador-core.",
        name,
    )


def _read_exact(stream: BinaryReadable, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = stream.read(size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _validation_summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, err['loc'])) or 'document'}: {err['msg']}" for err in exc.errors()
    )


def _check_magic(head: bytes, name: str) -> None:
    if head.startswith(HDF5_SIGNATURE):
        raise _not_ih5(name, "it is a plain HDF5 file without a user block")
    if head.startswith(_MAGIC_LINE):
        return
    if not head:
        raise _not_ih5(name, "the file is empty")
    if _MAGIC_LINE.startswith(head):
        raise _not_ih5(name, "the file ends inside the magic line (truncated?)")
    if head.startswith(b"ih5_v"):
        version = head.split(b"\n", 1)[0][:16]
        raise _not_ih5(name, f"unsupported format version {version!r} (this ih5 reads {MAGIC})")
    raise _not_ih5(name, f"it does not start with the magic line {MAGIC!r}")


def _read_block(stream: BinaryReadable, name: str) -> tuple[bytes, int]:
    """Read the whole user block and check the superblock after it; return block, text start."""
    head = _read_exact(stream, MIN_USER_BLOCK_SIZE)
    _check_magic(head, name)
    size_line = _SIZE_LINE.match(head, len(_MAGIC_LINE))
    if size_line is None:
        raise _not_ih5(name, "the line after the magic is not a decimal user-block size")
    block_size = int(size_line[1])
    if not _is_block_size(block_size):
        raise _not_ih5(
            name,
            f"the claimed user-block size {block_size} is not a power of two between "
            f"{MIN_USER_BLOCK_SIZE} and {MAX_USER_BLOCK_SIZE}",
        )
    block = head + _read_exact(stream, block_size - len(head))
    signature = _read_exact(stream, len(HDF5_SIGNATURE))
    if len(block) < block_size or len(signature) < len(HDF5_SIGNATURE):
        raise _not_ih5(name, f"the file ends before its claimed {block_size}-byte user block does")
    if signature != HDF5_SIGNATURE:
        raise _not_ih5(
            name, f"no HDF5 superblock at offset {block_size}, where the user block ends"
        )
    return block, size_line.end()


def _decode_text(block: bytes, start: int, name: str) -> IH5UserBlock:
    end = block.find(b"\0", start)
    if end < 0:
        raise _not_ih5(name, "the user-block text is not ended by a NUL byte")
    try:
        doc = json.loads(block[start:end].decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise _not_ih5(name, f"the user-block text is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _not_ih5(name, "the user-block JSON is not an object")
    fields = _plain_fields(doc, from_json=True)
    if fields is not None:
        return IH5UserBlock._of(fields)
    from pydantic import ValidationError

    try:
        return IH5UserBlock.from_json_object(doc)
    except ValidationError as exc:
        raise _not_ih5(name, f"invalid user-block fields: {_validation_summary(exc)}") from None


def _parse(stream: BinaryReadable, name: str) -> tuple[IH5UserBlock, int]:
    block, start = _read_block(stream, name)
    return _decode_text(block, start, name), len(block)


def read_user_block_text(path: str | os.PathLike[str]) -> tuple[IH5UserBlock, int, bytes]:
    """Like ``read_user_block_with_size``, also returning the block's JSON text (to keep it)."""
    name = os.fspath(path)
    with open(path, "rb", buffering=0) as stream:
        block, start = _read_block(stream, name)
    text = block[start : block.find(b"\0", start)]
    return _decode_text(block, start, name), len(block), text


def user_block_from_text(text: bytes, name: str) -> IH5UserBlock:
    """The user block whose JSON text ``read_user_block_text`` returned."""
    return _decode_text(text + b"\0", 0, name)


def compact_block(ub: IH5UserBlock) -> list[Any]:
    """The fields of ``ub`` as one JSON-ready row (uuids as text), for the per-user caches."""
    prev = None if ub.prev_patch is None else str(ub.prev_patch)
    fields = [str(ub.record_uuid), ub.patch_index, str(ub.patch_uuid), prev]
    return [*fields, ub.hdf5_hashsum, ub.ub_exts]


def block_from_compact(row: object, uuids: dict[str, UUID]) -> IH5UserBlock | None:
    """The block :func:`compact_block` made ``row`` from; None for a row that does not fit.

    ``uuids`` interns the uuids parsed so far (a chain's blocks share their record uuid,
    and each names its predecessor's patch uuid), so each is parsed once.
    """
    if not isinstance(row, list) or len(row) != len(_FIELDS):
        return None
    record, index, patch, prev, hashsum, exts = row
    if (
        type(record) is not str
        or type(patch) is not str
        or not (prev is None or type(prev) is str)
        or type(index) is not int
        or index < 0
        or not (hashsum is None or type(hashsum) is str)
        or type(exts) is not dict
    ):
        return None
    try:
        record_uuid = uuids.get(record) or _parsed(record, uuids)
        patch_uuid = uuids.get(patch) or _parsed(patch, uuids)
        prev_patch = None if prev is None else uuids.get(prev) or _parsed(prev, uuids)
        if hashsum is not None:
            parse_hashsum(hashsum)
    except (HashsumFormatError, ValueError):
        return None
    fields = {
        "record_uuid": record_uuid,
        "patch_index": index,
        "patch_uuid": patch_uuid,
        "prev_patch": prev_patch,
        "hdf5_hashsum": hashsum,
        "ub_exts": exts,
    }
    return IH5UserBlock._of(fields)


def _parsed(text: str, uuids: dict[str, UUID]) -> UUID:
    """The uuid spelled ``text`` (ValueError unless it is one), remembered in ``uuids``."""
    found = uuids[text] = UUID(text)
    return found


def read_user_block_with_size(
    source: str | os.PathLike[str] | BinaryReadable, name: str | None = None
) -> tuple[IH5UserBlock, int]:
    """Parse the user block of a container file or stream; return it and its block size.

    Any damage raises NotAnIH5ContainerError naming ``name`` (default: the path).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb", buffering=0) as stream:  # two reads: no buffer needed
            return _parse(stream, name or os.fspath(source))
    return _parse(source, name or str(getattr(source, "name", "<stream>")))


def read_user_block(path: str | os.PathLike[str]) -> IH5UserBlock:
    """Parse the user block of the container at ``path``."""
    return read_user_block_with_size(path)[0]


def read_user_block_from(stream: BinaryReadable, name: str) -> IH5UserBlock:
    """Parse the user block from a binary stream at the container's first byte."""
    return read_user_block_with_size(stream, name)[0]


def _user_block_size(stream: BinaryIO, name: str) -> int:
    """Find the user block the way HDF5 does: by the superblock's offset."""
    offset = 0
    while offset <= MAX_USER_BLOCK_SIZE:
        stream.seek(offset)
        if stream.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            break
        offset = max(offset * 2, MIN_USER_BLOCK_SIZE)
    else:
        raise _not_ih5(name, "no HDF5 superblock found")
    if offset == 0:
        raise _not_ih5(
            name,
            "it is a plain HDF5 file without a user block "
            f"(create containers with userblock_size={USER_BLOCK_SIZE})",
        )
    return offset


def write_user_block(
    path: str | os.PathLike[str], ub: IH5UserBlock, *, durable: bool = True
) -> None:
    """Overwrite, in place, the user block of a closed, uncommitted HDF5 file.

    The block size is the file's own (where its superblock sits); an oversize
    block raises UserBlockTooLargeError before a byte is written. ``durable``
    fsyncs the file; a file nobody can see yet (a new patch) is made durable later.
    """
    with open(path, "r+b") as stream:
        data = _encode(ub, _user_block_size(stream, os.fspath(path)), path)
        stream.seek(0)
        stream.write(data)
        stream.flush()
        if durable:
            os.fsync(stream.fileno())


def hashsum_container(
    path: str | os.PathLike[str],
    algorithm: str = DEFAULT_ALGORITHM,
    progress: Progress | None = None,
) -> str:
    """Hash the HDF5 payload of a container: every byte after its user block.

    The user block ends where HDF5 finds the superblock, so this works before the
    block's text is written; a file without a user block is NotAnIH5ContainerError.
    """
    with open(path, "rb") as stream:
        skip = _user_block_size(stream, os.fspath(path))
    return hashsum_file(path, algorithm, skip=skip, progress=progress)
