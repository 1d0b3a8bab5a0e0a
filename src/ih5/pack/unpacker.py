"""``unpack_record``: restore a packed directory byte for byte, checking every file's hashsum."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ih5.errors import IntegrityError, PackError, StorageError
from ih5.fs import storage_error, typed_storage_errors
from ih5.fs.atomic import TEMP_SUFFIX
from ih5.fs.beneath import DirectoryWalker, open_directory_beneath, open_root
from ih5.pack.codecs import CODEC_ATTR, FileCodec, codec_named, installed_codecs
from ih5.pack.packer import MODE_ATTR, MTIME_ATTR, SYMLINK_CODEC, TARGET_ATTR, PackProgress
from ih5.record import IH5Dataset, IH5Group, IH5Record
from ih5.record.opening import RecordSource


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
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class _HashingFile:
    """A write-only file that hashes what passes through it."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._hasher = hashlib.new("sha256")
        self.size = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self._hasher.update(view)
        self.size += len(view)
        while view:
            view = view[os.write(self._fd, view) :]
        return len(data)

    def finish(self, mode: int, mtime_ns: int | None) -> str:
        # Mode after the last write: a write by a non-root user clears setuid bits.
        os.fchmod(self._fd, mode)
        if mtime_ns is not None:
            os.utime(self._fd, ns=(mtime_ns, mtime_ns))
        os.fsync(self._fd)
        fd, self._fd = self._fd, -1
        os.close(fd)
        return f"sha256:{self._hasher.hexdigest()}"

    def abandon(self) -> None:
        # Close only once: after finish() the number may already belong to another file
        # (HDF5 opens containers lazily while the hashsum attribute is read).
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def _mode(obj: IH5Group | IH5Dataset, default: int, special: bool) -> int:
    value = obj.attrs.get(MODE_ATTR)
    if value is None:
        return default
    return int(value) & (0o7777 if special else 0o7777 & ~_SPECIAL_BITS)


def _mtime(obj: IH5Group | IH5Dataset) -> int | None:
    value = obj.attrs.get(MTIME_ATTR)
    return None if value is None else int(value)


def _temp_name() -> str:
    # Short, whatever the target's name: a temp name derived from a 250-byte name
    # would not fit NAME_MAX.
    return f".ih5-unpack.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _restore_file(
    dataset: IH5Dataset,
    parent_fd: int,
    name: str,
    codecs: Sequence[FileCodec],
    special: bool,
) -> int:
    """Write one file through a temp name in ``parent_fd``; refuse it unless its hashsum matches."""
    codec_name = str(dataset.attrs.get(CODEC_ATTR, "raw"))
    codec = codec_named(codecs, codec_name)
    if codec is None:
        raise PackError(
            f"{dataset.name} was packed with codec {codec_name!r}, which is not installed; "
            "install the plug-in that provides it",
            dataset.name,
        )
    temp = _temp_name()
    out = _HashingFile(os.open(temp, _CREATE, 0o600, dir_fd=parent_fd))
    try:
        codec.read(dataset, out)  # type: ignore[arg-type]
        actual = out.finish(_mode(dataset, DEFAULT_FILE_MODE, special), _mtime(dataset))
        expected = str(dataset.attrs["hashsum"])
        if actual != expected:
            raise IntegrityError(
                f"{dataset.name} unpacks to {actual}, but was packed as {expected}; "
                "the record is damaged or the codec is broken",
                dataset.name,
            )
        os.rename(temp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except BaseException:
        out.abandon()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=parent_fd)
        raise
    return out.size


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
) -> UnpackResult:
    """Restore the directory packed into ``record`` at ``destination`` (new or empty).

    Files and directories get their packed modes and modification times back
    (as ``tar -x`` does), without setuid and setgid bits unless
    ``preserve_special_bits``; records packed before modes were kept give
    0644 files and 0755 directories. Everything is created relative to
    directory descriptors without following links, so nothing that changes
    the destination meanwhile can redirect a write outside it.
    """
    dest = Path(destination)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PackError(f"{dest} exists and is not an empty directory; choose a new one", dest)
    codecs = list(codecs) if codecs is not None else installed_codecs()
    fresh = not dest.exists()
    try:
        with typed_storage_errors(dest, "unpacking"):
            return _unpack(record, dest, progress, codecs, preserve_special_bits)
    except StorageError:
        # A full disk or a refusal half-way: take back what this run created.
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


def _unpack(
    record: RecordSource,
    dest: Path,
    progress: PackProgress | None,
    codecs: list[FileCodec],
    preserve_special_bits: bool,
) -> UnpackResult:
    with IH5Record(record) as rec:
        items: list[tuple[str, IH5Group | IH5Dataset]] = []
        rec.visititems(lambda path, obj: items.append((path, obj)))
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
