"""The state of a source directory: what ``ih5 pack`` records in the manifest to find changes.

Each entry is keyed by its POSIX path relative to the source root. Files carry
size, modification time and content hashsum; symlinks their target; directories
nothing. The state travels in ``manifest_exts["ih5_pack"]``, so a later run can
compare a directory with the newest manifest alone.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ih5.errors import PackError
from ih5.fs import HashingReader, open_file_beneath, open_root
from ih5.pack._exclusion import Excluded, exclusion

EXT_KEY = "ih5_pack"
STATE_VERSION = 1


class EntryState(BaseModel):
    """One path of the source tree."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["file", "dir", "symlink"]
    size: int = 0
    mtime_ns: int = 0
    hashsum: str | None = None
    target: str | None = None
    mode: int | None = None
    """Permission bits of a file (absent in states written before modes were kept)."""

    def looks_unchanged(self, info: os.stat_result) -> bool:
        """The rule of ``trust_mtime``: a file of the recorded size and mtime is unchanged."""
        return self.kind == "file" and (self.size, self.mtime_ns) == (
            info.st_size,
            info.st_mtime_ns,
        )

    def same_content(self, other: EntryState) -> bool:
        """Equal kind and content, and equal file modes where both are known (times do not matter).

        A changed mode makes a file changed, so the archive restores the new one.
        """
        if (self.kind, self.hashsum, self.target) != (other.kind, other.hashsum, other.target):
            return False
        return self.mode is None or other.mode is None or self.mode == other.mode


class TreeState(BaseModel):
    """Every path of a source tree (parents before children)."""

    model_config = ConfigDict(frozen=True)

    version: int = STATE_VERSION
    entries: dict[str, EntryState] = {}

    def to_ext(self) -> dict[str, Any]:
        """The ``manifest_exts`` section."""
        return {EXT_KEY: self.model_dump(mode="json", exclude_none=True)}

    @classmethod
    def from_exts(cls, exts: dict[str, Any], where: str) -> TreeState:
        """Read the state back from a manifest's extensions."""
        if EXT_KEY not in exts:
            raise PackError(
                f"{where} was not written by 'ih5 pack' (no {EXT_KEY!r} in its manifest); "
                "pack into a new record instead",
                where,
            )
        try:
            return cls.model_validate(exts[EXT_KEY])
        except ValidationError as exc:
            raise PackError(
                f"the {EXT_KEY!r} section in the manifest of {where} is damaged "
                f"({exc.error_count()} problems); pack into a new record instead",
                where,
            ) from exc


def file_identity(info: os.stat_result) -> tuple[int, ...]:
    """What must not change while a file is packed: which file, its size and its times."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def changed_while_packed(path: Path, what: str = "changed") -> PackError:
    """The error for a source file that ``what`` (changed, was replaced) during packing."""
    return PackError(
        f"{path} {what} while it was being packed; nothing was published; retry when it is quiet",
        path,
    )


def _check_link(root: Path, link: Path) -> str:
    target = os.readlink(link)
    try:
        resolved = (link.parent / target).resolve()
    except (OSError, RuntimeError) as exc:  # a link loop (RuntimeError up to Python 3.12)
        raise PackError(
            f"symlink {link} cannot be resolved ({exc}); remove the link loop before packing",
            link,
        ) from exc
    if os.path.isabs(target) or not resolved.is_relative_to(root.resolve()):
        raise PackError(
            f"symlink {link} points outside {root} (to {target}); replace it with the file "
            "or remove it before packing",
            link,
        )
    return target


def scan_directory(root: Path, excluded: Excluded | None = None) -> dict[str, os.stat_result | str]:
    """List every path below ``root``: stat results for files and dirs, targets for links.

    Links leaving the tree and unreadable files are refused here, before
    anything is written. ``excluded`` (default: ih5's own lock and staging
    files) leaves paths out; an excluded directory is not entered.
    """
    excluded = excluded or exclusion()
    if not root.is_dir():
        raise PackError(f"{root} is not a directory; pass the directory to pack", root)
    found: dict[str, os.stat_result | str] = {}
    # Relative paths are built as strings: one Path per entry would cost more than its stat.
    pending = [("", os.fspath(root))]
    while pending:
        prefix, directory = pending.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as exc:
            raise PackError(f"cannot list {directory}: {exc.strerror}", directory) from exc
        siblings = {entry.name for entry in entries}
        for entry in entries:
            relative = prefix + entry.name
            _check_name(root, relative)
            if excluded(relative, entry.is_dir(follow_symlinks=False), siblings):
                continue
            try:
                if entry.is_symlink():
                    found[relative] = _check_link(root, Path(entry.path))
                    continue
                info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                # Listed a moment ago, gone or replaced now: someone is changing the tree.
                path = Path(entry.path)
                raise PackError(
                    f"{path} changed while the source was scanned ({exc.strerror or exc}); "
                    "nothing was published; retry when it is quiet",
                    path,
                ) from exc
            if stat.S_ISDIR(info.st_mode):
                found[relative] = info
                pending.append((relative + "/", entry.path))
            elif stat.S_ISREG(info.st_mode):
                if not os.access(entry.path, os.R_OK):
                    path = Path(entry.path)
                    raise PackError(f"cannot read {path}: permission denied", path)
                found[relative] = info
            else:
                path = Path(entry.path)
                raise PackError(f"{path} is not a regular file, directory or symlink", path)
    return dict(sorted(found.items()))


def _hash_source(
    root: Path, relative: str, scanned: os.stat_result, progress: Callable[[int], None] | None
) -> str:
    """Hash the scanned file without following links; refuse it if it is another file now."""
    path = root / relative
    try:
        root_fd = open_root(root)
        try:
            fd = open_file_beneath(root_fd, relative)
        finally:
            os.close(root_fd)
        try:
            before = os.fstat(fd)
            if file_identity(before) == file_identity(scanned):
                with open(fd, "rb", buffering=0, closefd=False) as stream:
                    reader = HashingReader(stream, progress, limit=before.st_size)
                    hashsum = reader.hashsum()
                if reader.count == before.st_size and file_identity(os.fstat(fd)) == file_identity(
                    before
                ):
                    return hashsum
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT, errno.ENXIO):
            raise PackError(f"cannot read {path}: {exc.strerror or exc}", path) from exc
    raise changed_while_packed(path)


def _check_name(root: Path, relative: str) -> None:
    """Refuse names HDF5 cannot store: member names are UTF-8."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError as exc:
        shown = os.fsencode(relative).decode("utf-8", "backslashreplace")
        raise PackError(
            f"the name of {root}/{shown} is not valid UTF-8, which HDF5 names must be; "
            "rename it (e.g. `convmv -f latin1 -t utf8 --notest`) and pack again",
            root / relative,
        ) from exc


def current_state(
    root: Path,
    listing: dict[str, os.stat_result | str],
    previous: TreeState,
    trust_mtime: bool,
    progress: Callable[[int], None] | None = None,
) -> TreeState:
    """Hash what may have changed; with ``trust_mtime`` equal size and mtime mean unchanged."""
    entries: dict[str, EntryState] = {}
    for relative, info in listing.items():
        if isinstance(info, str):
            entries[relative] = EntryState(kind="symlink", target=info)
        elif stat.S_ISDIR(info.st_mode):
            entries[relative] = EntryState(kind="dir")
        else:
            old = previous.entries.get(relative)
            if trust_mtime and old is not None and old.looks_unchanged(info):
                entries[relative] = old
                continue
            entries[relative] = EntryState(
                kind="file",
                size=info.st_size,
                mtime_ns=info.st_mtime_ns,
                hashsum=_hash_source(root, relative, info, progress),
                mode=stat.S_IMODE(info.st_mode),
            )
    return TreeState(entries=entries)
