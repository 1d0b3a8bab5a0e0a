"""``unpack_record``: restore a packed directory byte for byte, checking every file's hashsum."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ih5.errors import HashsumFormatError, IntegrityError, PackError, StorageError
from ih5.fs import (
    DEFAULT_ALGORITHM,
    DirectoryWalker,
    HashingWriter,
    StagedFile,
    open_directory_beneath,
    open_root,
    parse_hashsum,
    storage_error,
    typed_storage_errors,
)
from ih5.manifest import RebuiltManifest, rebuild_manifests
from ih5.pack._codecs import CODEC_ATTR, FileCodec, codec_named, installed_codecs
from ih5.pack._exclusion import UNPACK_TEMP_LABEL
from ih5.pack._packer import MODE_ATTR, MTIME_ATTR, SYMLINK_CODEC, TARGET_ATTR, PackProgress
from ih5.pack._tree_state import EntryState, TreeState
from ih5.record import IH5Dataset, IH5Group, IH5Record, RecordSource


@dataclass(frozen=True)
class UnpackResult:
    """What one unpacking run restored."""

    destination: Path
    files: int
    directories: int
    symlinks: int
    bytes_written: int


DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
"""Modes of files and directories packed before modes were kept (what unpacking made then)."""
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID


def _mode(obj: IH5Group | IH5Dataset, default: int, special: bool) -> int:
    value = obj.attrs.get(MODE_ATTR)
    if value is None:
        return default
    return int(value) & (0o7777 if special else 0o7777 & ~_SPECIAL_BITS)


def _mtime(obj: IH5Group | IH5Dataset) -> int | None:
    value = obj.attrs.get(MTIME_ATTR)
    return None if value is None else int(value)


def _packed_hashsum(dataset: IH5Dataset) -> tuple[str, str]:
    """The hashsum a file was packed with, and the algorithm to check it with."""
    expected = str(dataset.attrs["hashsum"])
    try:
        algorithm, _ = parse_hashsum(expected)
    except HashsumFormatError:
        algorithm = DEFAULT_ALGORITHM  # no match possible: refused as damaged after writing
    return expected, algorithm


def _restore_file(
    dataset: IH5Dataset,
    parent_fd: int,
    name: str,
    codecs: Sequence[FileCodec],
    special: bool,
) -> int:
    """Write one file through a temp name in ``parent_fd``; refuse it unless its hashsum matches."""
    with StagedFile(dir_fd=parent_fd, label=UNPACK_TEMP_LABEL) as staged:
        size = _decode_checked(dataset, codecs, staged.stream, "unpacks to")
        staged.seal(_mode(dataset, DEFAULT_FILE_MODE, special), _mtime(dataset))
        staged.publish(name)
    return size


def _decode_checked(
    dataset: IH5Dataset, codecs: Sequence[FileCodec], out: BinaryIO, verb: str
) -> int:
    """Decode ``dataset`` with the codec it was packed with into ``out``; return the bytes
    written. IntegrityError unless they hash as packed (``verb`` says what was done)."""
    codec_name = str(dataset.attrs.get(CODEC_ATTR, "raw"))
    codec = codec_named(codecs, codec_name)
    if codec is None:
        raise PackError(
            f"{dataset.name} was packed with codec {codec_name!r}, which is not installed; "
            "install the plug-in that provides it",
            dataset.name,
        )
    expected, algorithm = _packed_hashsum(dataset)
    checked = HashingWriter(out, algorithm)
    codec.read(dataset, checked)  # type: ignore[arg-type]
    if checked.hashsum() != expected:
        raise IntegrityError(
            f"{dataset.name} {verb} {checked.hashsum()}, but was packed as {expected}; "
            "the record is damaged or the codec is broken",
            dataset.name,
        )
    return checked.size


def _link_stays_inside(root: Path, link: Path, target: str) -> bool:
    """Tell whether a link at ``link`` to ``target`` stays inside ``root``, as packing requires."""
    if not target or os.path.isabs(target):
        return False
    try:
        return (link.parent / target).resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a link loop (RuntimeError up to Python 3.12)
        return False


def _check_links(root: Path, root_fd: int, links: list[tuple[str, Path]]) -> None:
    """Refuse the record if a link leaves ``root`` now that all exist, removing every link.

    Each link was checked when made, but a later link can redirect an earlier one
    (``a -> b/../x`` made before ``b -> .``).
    """
    for path, link in links:
        target = os.readlink(link)
        if not _link_stays_inside(root, link, target):
            with DirectoryWalker(root_fd) as walker:
                for made, _ in links:
                    *parents, name = made.split("/")
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=walker.fd(parents))
            raise PackError(
                f"{path!r} links to {target!r}, which leaves the destination or loops; "
                "refusing (the record was not made by 'ih5 pack'); no link was kept",
                path,
            )


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):  # pragma: no cover - every POSIX system answers
        return 255


def _check_names(items: Sequence[tuple[str, object]], dest: Path) -> None:
    """Refuse member names that cannot become one plain file name each, before writing."""
    name_max = _name_max(dest)
    for path, _ in items:
        for part in path.split("/"):
            if part in ("", ".", "..") or "\x00" in part:
                raise PackError(f"{path!r} would be written outside {dest}; refusing", path)
            if len(os.fsencode(part)) > name_max:
                raise PackError(
                    f"{path!r}: the name {part[:40]!r}... is {len(os.fsencode(part))} bytes, "
                    f"longer than {dest}'s filesystem allows ({name_max}); unpack with "
                    "ih5's Python API and rename it, or choose another filesystem",
                    path,
                )


def _swapped(path: str, dest: Path, exc: OSError) -> PackError:
    return PackError(
        f"cannot create {path!r} in {dest}: {exc.strerror or exc}; something else changed "
        "the destination while unpacking (nothing was written outside it); unpack into a "
        "directory nobody else writes to",
        path,
    )


@dataclass
class _Unpacking:
    """One run's state: where it writes and what it made."""

    dest: Path
    root: Path
    root_fd: int
    codecs: Sequence[FileCodec]
    special: bool
    progress: PackProgress | None
    written: int = 0
    links: list[tuple[str, Path]] = field(default_factory=list)
    directories: list[tuple[list[str], int, int | None]] = field(default_factory=list)

    def make(self, walker: DirectoryWalker, path: str, obj: IH5Group | IH5Dataset) -> None:
        *parents, name = path.split("/")
        parent = walker.fd(parents)
        if isinstance(obj, IH5Group):
            # Owner-only while filling it; its own mode and time come after its content.
            os.mkdir(name, 0o700, dir_fd=parent)
            mode = _mode(obj, DEFAULT_DIR_MODE, self.special)
            self.directories.append(([*parents, name], mode, _mtime(obj)))
        elif obj.attrs.get(CODEC_ATTR) == SYMLINK_CODEC:
            link_target = str(obj.attrs[TARGET_ATTR])
            if not _link_stays_inside(self.root, self.root / path, link_target):
                raise PackError(
                    f"{path!r} links to {link_target!r}, which leaves {self.dest} or loops; "
                    "refusing",
                    path,
                )
            os.symlink(link_target, name, dir_fd=parent)
            self.links.append((path, self.root / path))
        else:
            size = _restore_file(obj, parent, name, self.codecs, self.special)
            self.written += size
            if self.progress is not None:
                self.progress.advance(size)

    def finish_directories(self) -> None:
        """Set each directory's mode and time, deepest first, and make its entries durable."""
        for parts, mode, mtime_ns in sorted(self.directories, key=lambda d: -len(d[0])):
            fd = open_directory_beneath(self.root_fd, parts)
            try:
                os.fsync(fd)
                os.fchmod(fd, mode)
                if mtime_ns is not None:
                    os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
        os.fsync(self.root_fd)


def unpack_record(
    record: RecordSource,
    destination: str | os.PathLike[str],
    *,
    progress: PackProgress | None = None,
    codecs: Sequence[FileCodec] | None = None,
    preserve_special_bits: bool = False,
    at: int | None = None,
    member: str | None = None,
) -> UnpackResult:
    """Restore the directory packed into ``record`` at ``destination`` (new or empty).

    ``at=K`` restores the state as of patch index K; ``member`` (a directory's
    path in the archive) restores only what is below it.

    Files and directories get their packed modes and modification times back
    (as ``tar -x`` does), without setuid and setgid bits unless
    ``preserve_special_bits``; records packed before modes were kept give
    0644 files and 0755 directories. Everything is created relative to
    directory descriptors without following links, so nothing that changes
    the destination meanwhile can redirect a write outside it.
    """
    dest = _empty_destination(destination)
    codecs = list(codecs) if codecs is not None else installed_codecs()
    with IH5Record(record, at=at) as rec:
        return _unpack_taking_back(
            _packed_group(rec, member), dest, codecs, preserve_special_bits, progress
        )


def _empty_destination(destination: str | os.PathLike[str]) -> Path:
    dest = Path(destination)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PackError(f"{dest} exists and is not an empty directory; choose a new one", dest)
    return dest


def _unpack_taking_back(
    top: IH5Group,
    dest: Path,
    codecs: Sequence[FileCodec],
    preserve_special_bits: bool,
    progress: PackProgress | None,
) -> UnpackResult:
    """``_unpack_group``, removing what it created when the disk fills or refuses half-way."""
    fresh = not dest.exists()
    try:
        with typed_storage_errors(dest, "unpacking"):
            return _unpack_group(top, dest, codecs, preserve_special_bits, progress)
    except StorageError:
        _remove_unpacked(dest, fresh)
        raise


def _remove_unpacked(dest: Path, fresh: bool) -> None:
    """Remove what a failed unpack created at ``dest`` (new, or empty before it began)."""
    with contextlib.suppress(FileNotFoundError):
        if fresh:
            shutil.rmtree(dest)
            return
        for entry in os.scandir(dest):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def _unpack_group(
    top: IH5Group,
    dest: Path,
    codecs: Sequence[FileCodec],
    preserve_special_bits: bool,
    progress: PackProgress | None,
) -> UnpackResult:
    """Restore what is below ``top`` (a directory of the archive) into ``dest``."""
    items: list[tuple[str, IH5Group | IH5Dataset]] = []
    top.visititems(lambda path, obj: items.append((path, obj)))
    datasets = [obj for _, obj in items if isinstance(obj, IH5Dataset)]
    if progress is not None:
        progress.phase("unpacking", sum(int(obj.attrs.get("size", 0)) for obj in datasets))
    dest.mkdir(parents=True, exist_ok=True)
    _check_names(items, dest)
    root_fd = open_root(dest)
    try:
        run = _Unpacking(dest, dest.resolve(), root_fd, codecs, preserve_special_bits, progress)
        try:
            with DirectoryWalker(root_fd) as walker:
                for path, obj in items:
                    try:
                        run.make(walker, path, obj)
                    except (PackError, IntegrityError, StorageError):
                        raise
                    except OSError as exc:
                        typed = storage_error(exc, dest, f"unpacking {path}")
                        if typed is not None:
                            raise typed from exc
                        raise _swapped(path, dest, exc) from exc
        finally:
            # Also after a failure half-way: no link may be left pointing outside.
            _check_links(run.root, root_fd, run.links)
        try:
            run.finish_directories()
        except OSError as exc:
            typed = storage_error(exc, dest, "finishing the unpacked directories")
            if typed is not None:
                raise typed from exc
            raise _swapped(str(exc.filename or dest), dest, exc) from exc
    finally:
        os.close(root_fd)
    return UnpackResult(
        dest, len(datasets) - len(run.links), len(run.directories), len(run.links), run.written
    )


def _packed_group(rec: IH5Record, member: str | None) -> IH5Group:
    """The group of directory ``member`` (the root for None); a clear error otherwise."""
    if member is None or member.strip("/") == "":
        return rec
    obj = _member(rec, member)
    if not isinstance(obj, IH5Group):
        raise PackError(f"{member} is a file, not a directory, in {rec.location}", member)
    return obj


def _member(rec: IH5Record, member: str) -> IH5Group | IH5Dataset:
    path = "/" + member.strip("/")
    if path not in rec:
        raise PackError(
            f"{path} is not in {rec.location} (as of patch {rec.user_block.patch_index}); "
            f"list what is there with 'ih5 tree {rec.location}'",
            path,
        )
    obj = rec[path]
    assert isinstance(obj, (IH5Group, IH5Dataset))
    return obj


def write_packed_file(
    record: RecordSource,
    member: str,
    out: BinaryIO,
    *,
    at: int | None = None,
    codecs: Sequence[FileCodec] | None = None,
) -> int:
    """Write the original bytes of packed file ``member`` of ``record`` to ``out``."""
    with IH5Record(record, at=at) as rec:
        obj = _member(rec, member)
        if isinstance(obj, IH5Group):
            raise PackError(
                f"{obj.name} is a directory in {rec.location}; extract it with 'ih5 get'",
                obj.name,
            )
        return copy_packed_file(obj, out, codecs)


def copy_packed_file(
    dataset: IH5Dataset, out: BinaryIO, codecs: Sequence[FileCodec] | None = None
) -> int:
    """Write the original bytes of the packed file ``dataset`` to ``out``; return how many.

    The bytes are hashed on the way; an IntegrityError follows the last of them if
    they do not match the hashsum the file was packed with.
    """
    if dataset.attrs.get(CODEC_ATTR) == SYMLINK_CODEC:
        raise PackError(
            f"{dataset.name} is a symlink to {dataset.attrs[TARGET_ATTR]!s}", dataset.name
        )
    if not is_packed_file(dataset):
        raise PackError(
            f"{dataset.name} was not written by 'ih5 pack' (no hashsum); read its values "
            "with 'ih5 cat --values'",
            dataset.name,
        )
    codecs = list(codecs) if codecs is not None else installed_codecs()
    return _decode_checked(dataset, codecs, out, "reads back as")


def extract_member(
    record: RecordSource,
    member: str,
    destination: str | os.PathLike[str],
    *,
    at: int | None = None,
    progress: PackProgress | None = None,
    codecs: Sequence[FileCodec] | None = None,
) -> UnpackResult:
    """Extract one packed file (to the new file ``destination``, or into it when it is a
    directory) or one packed directory (into ``destination``, new or empty)."""
    codecs = list(codecs) if codecs is not None else installed_codecs()
    with IH5Record(record, at=at) as rec:
        obj = _member(rec, member)
        if isinstance(obj, IH5Group):
            return _unpack_taking_back(
                obj, _empty_destination(destination), codecs, False, progress
            )
        dest = Path(destination)
        if dest.is_dir():
            dest = dest / obj.name.rpartition("/")[2]
        if os.path.lexists(dest):
            raise PackError(f"{dest} exists; choose a new file name", dest)
        if progress is not None:
            progress.phase("unpacking", int(obj.attrs.get("size", 0)))
        with StagedFile(dest.parent, label=UNPACK_TEMP_LABEL) as staged:
            advancing = _Advancing(staged.stream, progress)
            size = copy_packed_file(obj, advancing, codecs)  # type: ignore[arg-type]
            staged.seal(_mode(obj, DEFAULT_FILE_MODE, False), _mtime(obj))
            staged.publish(dest.name, replace=False)
    return UnpackResult(dest, 1, 0, 0, size)


class _Advancing:
    """A write-only stream that tells ``progress`` how many bytes passed to ``out``."""

    def __init__(self, out: BinaryIO, progress: PackProgress | None) -> None:
        self._out = out
        self._progress = progress

    def write(self, data: Any) -> int:
        written = self._out.write(data)
        if self._progress is not None:
            self._progress.advance(written)
        return written


def recorded_state(rec: IH5Record) -> TreeState:
    """The source state 'ih5 pack' recorded for the state ``rec`` shows, read back from its
    nodes (what a lost manifest's ``ih5_pack`` section said)."""
    entries: dict[str, EntryState] = {}

    def visit(path: str, obj: IH5Group | IH5Dataset) -> None:
        if isinstance(obj, IH5Group):
            entries[path] = EntryState(kind="dir")
        elif obj.attrs.get(CODEC_ATTR) == SYMLINK_CODEC:
            entries[path] = EntryState(kind="symlink", target=str(obj.attrs[TARGET_ATTR]))
        else:
            mode = obj.attrs.get(MODE_ATTR)
            entries[path] = EntryState(
                kind="file",
                size=int(obj.attrs["size"]),
                mtime_ns=int(obj.attrs.get(MTIME_ATTR, 0)),
                hashsum=str(obj.attrs["hashsum"]),
                mode=None if mode is None else int(mode),
            )

    rec.visititems(visit)
    return TreeState(entries=dict(sorted(entries.items())))


def rebuild_pack_manifests(record: str | os.PathLike[str]) -> list[RebuiltManifest]:
    """``rebuild_manifests`` for a packed record: its lost ``ih5_pack`` state is read back
    from the packed files' attributes."""

    def candidates(rec: IH5Record) -> list[dict[str, Any]]:
        try:
            return [recorded_state(rec).to_ext()]
        except (KeyError, ValueError):
            return []  # not a packed record

    return rebuild_manifests(record, candidates)


def is_packed_file(dataset: IH5Dataset) -> bool:
    """True for a dataset 'ih5 pack' wrote for a regular file (original bytes recoverable)."""
    return (
        "hashsum" in dataset.attrs
        and CODEC_ATTR in dataset.attrs
        and dataset.attrs.get(CODEC_ATTR) != SYMLINK_CODEC
    )
