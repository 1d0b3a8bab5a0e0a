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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from ih5.errors import PackError
from ih5.fs import HashingReader, open_file_beneath, open_root
from ih5.pack._exclusion import Excluded, exclusion

EXT_KEY = "ih5_pack"
STATE_VERSION = 1


Kind = Literal["file", "dir", "symlink"]
_KINDS = get_args(Kind)


@dataclass(frozen=True, slots=True)
class EntryState:
    """One path of the source tree."""

    kind: Kind
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

    def to_json(self) -> dict[str, Any]:
        """The entry as the manifest keeps it: fields in order, those without a value left out."""
        data: dict[str, Any] = {"kind": self.kind, "size": self.size, "mtime_ns": self.mtime_ns}
        if self.hashsum is not None:
            data["hashsum"] = self.hashsum
        if self.target is not None:
            data["target"] = self.target
        if self.mode is not None:
            data["mode"] = self.mode
        return data

    @classmethod
    def from_json(cls, data: object) -> EntryState | None:
        """The entry :meth:`to_json` wrote; None for anything else."""
        if not isinstance(data, dict):
            return None
        kind = data.get("kind")
        size = data.get("size", 0)
        mtime_ns = data.get("mtime_ns", 0)
        hashsum = data.get("hashsum")
        target = data.get("target")
        mode = data.get("mode")
        if (
            kind not in _KINDS
            or type(size) is not int
            or type(mtime_ns) is not int
            or not (hashsum is None or isinstance(hashsum, str))
            or not (target is None or isinstance(target, str))
            or not (mode is None or type(mode) is int)
        ):
            return None
        return cls(cast(Kind, kind), size, mtime_ns, hashsum, target, mode)


@dataclass(frozen=True, slots=True)
class TreeState:
    """Every path of a source tree (parents before children)."""

    version: int = STATE_VERSION
    entries: dict[str, EntryState] = field(default_factory=dict)

    def to_ext(self) -> dict[str, Any]:
        """The ``manifest_exts`` section."""
        entries = {path: entry.to_json() for path, entry in self.entries.items()}
        return {EXT_KEY: {"version": self.version, "entries": entries}}

    @classmethod
    def from_exts(cls, exts: dict[str, Any], where: str) -> TreeState:
        """Read the state back from a manifest's extensions."""
        if EXT_KEY not in exts:
            raise PackError(
                f"{where} was not written by 'ih5 pack' (no {EXT_KEY!r} in its manifest); "
                "pack into a new record instead",
                where,
            )
        section = exts[EXT_KEY]
        problems = 0
        entries: dict[str, EntryState] = {}
        version: object = STATE_VERSION
        if isinstance(section, dict):
            version = section.get("version", STATE_VERSION)
            found = section.get("entries", {})
            problems += type(version) is not int
            if isinstance(found, dict):
                for path, data in found.items():
                    entry = EntryState.from_json(data)
                    if entry is None:
                        problems += 1
                    else:
                        entries[path] = entry
            else:
                problems += 1
        else:
            problems += 1
        if problems or not isinstance(version, int):
            raise PackError(
                f"the {EXT_KEY!r} section in the manifest of {where} is damaged "
                f"({problems} problems); pack into a new record instead",
                where,
            )
        return cls(version, entries)


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
