"""``unpack_record``: restore a packed directory byte for byte, checking every file's hashsum."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ih5.errors import IntegrityError, PackError
from ih5.fs import fsync_directory, temp_path_for
from ih5.pack.codecs import CODEC_ATTR, FileCodec, codec_named, installed_codecs
from ih5.pack.packer import SYMLINK_CODEC, TARGET_ATTR, PackProgress
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


class _HashingFile:
    """A write-only file that hashes what passes through it."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._hasher = hashlib.new("sha256")
        self.size = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self._hasher.update(view)
        self.size += len(view)
        while view:
            view = view[os.write(self._fd, view) :]
        return len(data)

    def finish(self) -> str:
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


def _restore_file(dataset: IH5Dataset, target: Path, codecs: Sequence[FileCodec]) -> int:
    """Write one file through a temp name; refuse it unless its hashsum matches."""
    name = str(dataset.attrs.get(CODEC_ATTR, "raw"))
    codec = codec_named(codecs, name)
    if codec is None:
        raise PackError(
            f"{dataset.name} was packed with codec {name!r}, which is not installed; "
            "install the plug-in that provides it",
            dataset.name,
        )
    temp = temp_path_for(target)
    out = _HashingFile(temp)
    try:
        codec.read(dataset, out)  # type: ignore[arg-type]
        actual = out.finish()
        expected = str(dataset.attrs["hashsum"])
        if actual != expected:
            raise IntegrityError(
                f"{dataset.name} unpacks to {actual}, but was packed as {expected}; "
                "the record is damaged or the codec is broken",
                dataset.name,
            )
        os.replace(temp, target)
    except BaseException:
        out.abandon()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
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


def _check_links(root: Path, links: list[tuple[str, Path]]) -> None:
    """Refuse the record if a link leaves ``root`` now that all exist, removing every link.

    Each link was checked when made, but a later link can redirect an earlier one
    (``a -> b/../x`` made before ``b -> .``).
    """
    for path, link in links:
        target = os.readlink(link)
        if not _link_stays_inside(root, link, target):
            for _, made in links:
                made.unlink()
            raise PackError(
                f"{path!r} links to {target!r}, which leaves the destination or loops; "
                "refusing (the record was not made by 'ih5 pack'); no link was kept",
                path,
            )


def unpack_record(
    record: RecordSource,
    destination: str | os.PathLike[str],
    *,
    progress: PackProgress | None = None,
    codecs: Sequence[FileCodec] | None = None,
) -> UnpackResult:
    """Restore the directory packed into ``record`` at ``destination`` (new or empty)."""
    dest = Path(destination)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PackError(f"{dest} exists and is not an empty directory; choose a new one", dest)
    codecs = list(codecs) if codecs is not None else installed_codecs()
    with IH5Record(record) as rec:
        items: list[tuple[str, IH5Group | IH5Dataset]] = []
        rec.visititems(lambda path, obj: items.append((path, obj)))
        datasets = [obj for _, obj in items if isinstance(obj, IH5Dataset)]
        if progress is not None:
            progress.phase("unpacking", sum(int(obj.attrs.get("size", 0)) for obj in datasets))
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        written = 0
        links: list[tuple[str, Path]] = []
        try:
            for path, obj in items:
                target = dest / path
                if not target.parent.resolve().is_relative_to(root):
                    raise PackError(f"{path!r} would be written outside {dest}; refusing", path)
                if isinstance(obj, IH5Group):
                    target.mkdir()
                elif obj.attrs.get(CODEC_ATTR) == SYMLINK_CODEC:
                    link_target = str(obj.attrs[TARGET_ATTR])
                    if not _link_stays_inside(root, target, link_target):
                        raise PackError(
                            f"{path!r} links to {link_target!r}, which leaves {dest} or loops; "
                            "refusing",
                            path,
                        )
                    os.symlink(link_target, target)
                    links.append((path, target))
                else:
                    size = _restore_file(obj, target, codecs)
                    written += size
                    if progress is not None:
                        progress.advance(size)
        finally:
            # Also after a failure half-way: no link may be left pointing outside.
            _check_links(root, links)
        groups = [dest / path for path, obj in items if isinstance(obj, IH5Group)]
        for directory in [dest, *groups]:
            fsync_directory(directory)
    return UnpackResult(dest, len(datasets) - len(links), len(groups), len(links), written)
