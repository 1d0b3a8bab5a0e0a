"""``pack_directory``: archive a directory as a record, later as one patch per change set.

The first run creates a manifest-backed record: every directory a group,
every file a dataset. Later runs compare the directory with the source
state kept in the newest manifest and write one patch with exactly the
added, changed and removed paths; when only that manifest is at hand, the
patch is written on a stub and placed beside the manifest, ready to be
copied next to the real record.
"""

from __future__ import annotations

import errno
import gc
import io
import os
import random
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from ih5.errors import (
    ConflictError,
    ManifestError,
    PackError,
    RemoteReadOnlyError,
    StorageError,
)
from ih5.format import (
    CONTAINER_SUFFIX,
    MANIFEST_SUFFIX,
    container_name,
    discover_containers,
    load_refs,
    manifest_name,
    named_manifest_hashsum,
    parse_container_name,
    split_record_path,
    validate_record_name,
)
from ih5.fs import HashingReader, hashsum_stream, open_file_beneath, open_root, pid_alive
from ih5.manifest import IH5MFRecord, manifest_path
from ih5.pack._codecs import (
    CODEC_ATTR,
    FileCodec,
    NpyCodec,
    PackOptions,
    RawCodec,
    choose_codec,
    installed_codecs,
)
from ih5.pack._exclusion import exclusion
from ih5.pack._media import media_type
from ih5.pack._newest import Newest, find_newest, remember
from ih5.pack._tree_state import (
    EntryState,
    TreeState,
    changed_while_packed,
    current_state,
    file_identity,
    scan_directory,
)
from ih5.record import (
    CommitProtocol,
    IH5Dataset,
    IH5Group,
    Sealed,
    complete_parked,
    file_index,
    publish_container,
    remote_names,
)
from ih5.store import (
    LocalStore,
    ObjectStore,
    RemoteOptions,
    TransferStats,
    is_remote,
    open_store,
    split_record_url,
)

HEAD_SIZE = 1 << 16
WRITE_BACK = 64 << 20
"""Bytes packed between two write-backs of the patch file started in the background."""
BUILTIN_TYPES = (RawCodec, NpyCodec)
SYMLINK_CODEC = "symlink"
TARGET_ATTR = "target"

Action = Literal["created", "patched", "patched-on-stub", "unchanged"]
Listing = dict[str, os.stat_result | str]
"""Source paths -> stat results (files, directories) or link targets (symlinks)."""


class PackProgress(Protocol):
    """Told how many bytes a phase ("hashing", "packing") will handle, then as they pass."""

    def phase(self, name: str, total_bytes: int) -> None:
        """A new phase starts."""
        ...

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes were handled."""
        ...


@dataclass(frozen=True)
class PackResult:
    """What one packing run did."""

    record: Path
    action: Action
    record_uuid: str
    patch_index: int
    written: tuple[Path, ...] = ()
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    bytes_packed: int = 0
    file_count: int = 0
    total_bytes: int = 0
    manifest_hashsum: str | None = field(default=None)
    url: str | None = None
    """The remote record's URL, when packed into object storage (``written`` are names)."""
    transfer: TransferStats | None = None
    """Requests made and bytes moved, when packed into object storage."""


@dataclass(frozen=True)
class Changes:
    """Paths to add, change and remove, found by comparing two source states."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def compare_states(old: TreeState, new: TreeState) -> Changes:
    """Added, changed (content or kind) and removed paths, sorted."""
    added = tuple(path for path in new.entries if path not in old.entries)
    removed = tuple(path for path in old.entries if path not in new.entries)
    changed = tuple(
        path
        for path, entry in new.entries.items()
        if path in old.entries and not entry.same_content(old.entries[path])
    )
    return Changes(added, changed, removed)


def _topmost(paths: Sequence[str]) -> list[str]:
    """Drop paths below another path of the list (deleting a group deletes its members)."""
    kept: list[str] = []
    # By components: as text, "n.bin" sorts between "n" and "n/a.bin".
    for path in sorted(paths, key=lambda path: path.split("/")):
        if not kept or not path.startswith(kept[-1] + "/"):
            kept.append(path)
    return kept


MODE_ATTR = "mode"
"""Permission bits of a packed file or directory (``stat.S_IMODE``)."""
MTIME_ATTR = "mtime_ns"
"""Modification time of a packed file or directory, in nanoseconds."""


def _open_error(path: Path, exc: OSError) -> PackError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT, errno.ENXIO):
        # Scanned as a file below plain directories: a link, a file or nothing is
        # there now, so something was swapped in (never followed).
        return changed_while_packed(path, "or a directory above it was replaced")
    if exc.errno == errno.ENAMETOOLONG:
        return PackError(f"{path}: name too long for this system; rename it and pack again", path)
    return PackError(f"cannot read {path}: {exc.strerror or exc}", path)


def _core_free() -> bool:
    """Whether a second thread would get a core of its own: on a busy machine, handing
    bytes to another thread only adds waiting for it to be scheduled."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores > 1
    return load <= cores - 1


class _Writer:
    """Writes source paths into the open patch of a record.

    Every source file is opened below the source root without following any
    link (``ih5.fs._beneath``), read for exactly the size ``fstat`` gives, and
    refused if it is not the file the scan saw or changed while it was read:
    nothing acknowledged may fail to unpack byte for byte.
    """

    def __init__(
        self,
        root: Path,
        record: IH5MFRecord,
        codecs: Sequence[FileCodec],
        options: PackOptions,
        progress: PackProgress | None,
    ) -> None:
        self.root = root
        self.record = record
        self.codecs = codecs
        self.options = options
        self.progress = progress
        # Hashing runs beside the HDF5 writes when a core is free for it, and the patch
        # file is written back to disk while later files are packed, so the commit's
        # fsync finds little left to do.
        self._hashing = (
            ThreadPoolExecutor(1, thread_name_prefix="ih5-pack-hash") if _core_free() else None
        )
        self._flushing = ThreadPoolExecutor(1, thread_name_prefix="ih5-pack-flush")
        self._flush: Future[None] | None = None
        self._unflushed = 0
        self._patch_fd: int | None = None

    def close(self) -> None:
        """Wait for the hashing and write-back threads and let them go."""
        if self._hashing is not None:
            self._hashing.shutdown()
        self._flushing.shutdown()
        if self._patch_fd is not None:
            os.close(self._patch_fd)
            self._patch_fd = None

    def _written(self, nbytes: int) -> None:
        """Start writing the patch file back to disk after every WRITE_BACK bytes packed."""
        self._unflushed += nbytes
        writer = self.record.chain.writer
        if self._unflushed < WRITE_BACK or writer is None:
            return
        if self._flush is not None and not self._flush.done():
            return  # the disk is behind: the next file asks again
        if self._flush is not None:
            self._flush.result()
        if self._patch_fd is None:
            self._patch_fd = os.open(writer.file.filename, os.O_RDONLY)
        self._unflushed = 0
        self._flush = self._flushing.submit(os.fdatasync, self._patch_fd)

    def _parent(self, relative: str) -> tuple[IH5Group, str]:
        parent, _, name = relative.rpartition("/")
        return (self.record.require_group(parent) if parent else self.record), name

    def _advance(self, nbytes: int) -> None:
        if self.progress is not None:
            self.progress.advance(nbytes)

    def _open_source(self, relative: str) -> int:
        root_fd = open_root(self.root)
        try:
            return open_file_beneath(root_fd, relative)
        finally:
            os.close(root_fd)

    def write_file(self, relative: str, scanned: os.stat_result | None = None) -> EntryState:
        """Pack one file with the first codec that accepts it; return its state.

        ``scanned`` is what the scan saw; a different file or size or time now is refused.
        """
        path = self.root / relative
        group, name = self._parent(relative)
        try:
            fd = self._open_source(relative)
        except OSError as exc:
            raise _open_error(path, exc) from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or (
                scanned is not None and file_identity(info) != file_identity(scanned)
            ):
                raise changed_while_packed(path, "was replaced or changed")
            attrs = {
                "size": info.st_size,
                "media_type": media_type(relative),
                MODE_ATTR: stat.S_IMODE(info.st_mode),
                MTIME_ATTR: info.st_mtime_ns,
            }
            hashsum = self._read_into(fd, info, group, name, path, attrs)
        finally:
            os.close(fd)
        self._written(info.st_size)
        return EntryState(
            kind="file",
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
            hashsum=hashsum,
            mode=stat.S_IMODE(info.st_mode),
        )

    def _read_into(
        self,
        fd: int,
        before: os.stat_result,
        group: IH5Group,
        name: str,
        path: Path,
        attrs: dict[str, Any],
    ) -> str:
        """Write the file's ``before.st_size`` bytes as dataset ``name``; refuse if it changes."""
        size = before.st_size
        try:
            head = os.pread(fd, min(HEAD_SIZE, size), 0)
            codec = choose_codec(self.codecs, name, head, size)
            with open(fd, "rb", buffering=0, closefd=False) as stream:
                hashsum = self._write_with(codec, group, name, stream, size, path, attrs)
            after = os.fstat(fd)
        except StorageError:
            raise  # the record's side: a full disk or a refusal there, already named
        except OSError as exc:
            if file_identity(os.fstat(fd)) != file_identity(before):
                raise changed_while_packed(path) from exc
            raise PackError(f"cannot read {path}: {exc.strerror or exc}", path) from exc
        if file_identity(after) != file_identity(before):
            raise changed_while_packed(path)
        return hashsum

    def _write_with(
        self,
        codec: FileCodec,
        group: IH5Group,
        name: str,
        stream: io.RawIOBase,
        size: int,
        path: Path,
        attrs: dict[str, Any],
    ) -> str:
        """Write with ``codec``, give the dataset ``attrs``, its codec and its hashsum."""
        stream.seek(0)
        # Built-in codecs leave the buffers they read into alone: their bytes can be
        # hashed while they are written. A plug-in's are hashed as they are read.
        background = self._hashing if isinstance(codec, BUILTIN_TYPES) else None
        reader = HashingReader(stream, self._advance, limit=size, background=background)  # type: ignore[arg-type]
        try:
            dataset = codec.write(group, name, reader, size, self.options)  # type: ignore[arg-type]
        except (OSError, PackError):
            raise
        except Exception as exc:
            if name in group:
                del group[name]
            raise PackError(
                f"codec {codec.name!r} failed on {path} ({type(exc).__name__}: {exc}); "
                "fix or uninstall the plug-in that provides it, or rename the file so "
                "that the codec does not take it",
                path,
            ) from exc
        # The hashsum comes last: the other attributes are set while the bytes are hashed.
        dataset.attrs[CODEC_ATTR] = codec.name
        for key, value in attrs.items():
            dataset.attrs[key] = value
        hashsum = reader.hashsum()
        if reader.count != size:
            raise OSError(errno.EIO, f"read {reader.count} of {size} bytes", str(path))
        if not isinstance(codec, RawCodec) and _decoded_hashsum(codec, dataset) != hashsum:
            # A codec that cannot give the bytes back exactly must not be trusted with them.
            del group[name]
            return self._write_with(RawCodec(), group, name, stream, size, path, attrs)
        dataset.attrs["hashsum"] = hashsum
        return hashsum

    def write_dir(self, relative: str, scanned: os.stat_result | None = None) -> EntryState:
        """Create the group of a directory, with its mode and time as the scan saw them."""
        group = self.record.require_group(relative)
        if scanned is not None:
            group.attrs[MODE_ATTR] = stat.S_IMODE(scanned.st_mode)
            group.attrs[MTIME_ATTR] = scanned.st_mtime_ns
        return EntryState(kind="dir")

    def write_symlink(self, relative: str, target: str) -> EntryState:
        """Keep an in-tree symlink as an empty dataset naming its target."""
        group, name = self._parent(relative)
        dataset = group.create_dataset(name, shape=(0,), dtype="u1")
        dataset.attrs[CODEC_ATTR] = SYMLINK_CODEC
        dataset.attrs[TARGET_ATTR] = target
        return EntryState(kind="symlink", target=target)


def _decoded_hashsum(codec: FileCodec, dataset: IH5Dataset) -> str:
    buffer = io.BytesIO()
    codec.read(dataset, buffer)
    buffer.seek(0)
    return hashsum_stream(buffer)


def _newest_manifest(directory: Path, name: str) -> Path | None:
    """The manifest with the highest patch index among ``NAME*.ih5mf.json`` in ``directory``.

    A patch's file name carries its index (FORMAT.md section 1), so only the
    newest patch manifest and the base's (whose index may be above 0 for a
    stub or merged base) are read, not every manifest a packer ever wrote.
    """
    patches: list[tuple[int, Path]] = []
    base: Path | None = None
    for path in directory.glob(manifest_name(f"{name}*.ih5")):
        parsed = parse_container_name(path.name.removesuffix(MANIFEST_SUFFIX))
        if parsed is None or parsed[0] != name:
            continue
        if parsed[1] == 0:
            base = path
        else:
            patches.append((parsed[1], path))
    candidates = [max(patches)] if patches else []
    if base is not None:
        from ih5.manifest import IH5Manifest  # the models, only when packing on a stub

        candidates.append((IH5Manifest.load(base).user_block.patch_index, base))
    return max(candidates)[1] if candidates else None


def _apply(writer: _Writer, listing: Listing, changes: Changes, previous: TreeState) -> TreeState:
    """Delete and (re)create what changed; return the source state the patch records."""
    for path in _topmost([*changes.removed, *changes.changed]):
        del writer.record[path]
    entries = {
        path: entry for path, entry in previous.entries.items() if path not in changes.removed
    }
    for path in sorted({*changes.added, *changes.changed}):
        info = listing[path]
        if isinstance(info, str):
            entries[path] = writer.write_symlink(path, info)
        elif stat.S_ISDIR(info.st_mode):
            entries[path] = writer.write_dir(path, info)
        else:
            entries[path] = writer.write_file(path, info)
    return TreeState(entries=dict(sorted(entries.items())))


def _is_file(info: os.stat_result | str) -> bool:
    return not isinstance(info, str) and stat.S_ISREG(info.st_mode)


def _bytes_to_hash(listing: Listing, previous: TreeState, trust_mtime: bool) -> int:
    total = 0
    for path, info in listing.items():
        if not _is_file(info):
            continue
        assert not isinstance(info, str)
        old = previous.entries.get(path)
        same = old is not None and old.looks_unchanged(info)
        total += 0 if trust_mtime and same else info.st_size
    return total


def _bytes_to_pack(listing: Listing, paths: Sequence[str]) -> int:
    return sum(
        info.st_size
        for path in paths
        if not isinstance(info := listing[path], str) and _is_file(info)
    )


def _result(
    record: IH5MFRecord, where: Path, action: Action, changes: Changes, state: TreeState
) -> PackResult:
    files = [entry for entry in state.entries.values() if entry.kind == "file"]
    user_block = record.user_block
    return PackResult(
        record=where,
        action=action,
        record_uuid=str(user_block.record_uuid),
        patch_index=user_block.patch_index,
        written=record.history()[-1].files if action != "unchanged" else (),
        added=changes.added,
        changed=changes.changed,
        removed=changes.removed,
        bytes_packed=sum(state.entries[path].size for path in (*changes.added, *changes.changed)),
        file_count=len(files),
        total_bytes=sum(entry.size for entry in files),
        manifest_hashsum=named_manifest_hashsum(user_block.ub_exts),
    )


@dataclass(frozen=True)
class _Job:
    """One packing run's inputs."""

    root: Path
    listing: Listing
    options: PackOptions
    trust_mtime: bool
    progress: PackProgress | None
    codecs: Sequence[FileCodec] | None
    """None: the installed ones, looked up only when a file is to be written."""
    refuse_full_replace: bool = False
    record: Path | None = None
    """DIR/NAME as asked for (a patch on a stub is written elsewhere first)."""


def _refuse_record_inside(root: Path, where: Path) -> None:
    """A record inside its own source would archive itself: refuse before writing anything."""
    try:
        inside = where.parent.resolve().is_relative_to(root.resolve())
    except OSError:
        return
    if inside and root.is_dir():
        raise PackError(
            f"{where} is inside the source {root}, so the record would archive itself; "
            f"write it outside, e.g. {root.resolve().parent / where.name}",
            where,
        )


def _refuse_replacing(where: Path, previous: TreeState, changes: Changes) -> None:
    """Refuse a patch that removes everything packed before: most likely a different source."""
    if not previous.entries or len(changes.removed) < len(previous.entries):
        return
    shown = ", ".join(sorted(changes.removed)[:5])
    more = f" and {len(changes.removed) - 5} more" if len(changes.removed) > 5 else ""
    raise PackError(
        f"packing this source into {where} would remove every path packed before "
        f"({shown}{more}) and add {len(changes.added)}; if this is a different source, "
        "pack it into a new record, or pass --replace to replace the content",
        where,
    )


def pack_directory(
    source: str | os.PathLike[str],
    record: str | os.PathLike[str],
    *,
    options: PackOptions | None = None,
    trust_mtime: bool = False,
    progress: PackProgress | None = None,
    codecs: Sequence[FileCodec] | None = None,
    exclude: Sequence[str] = (),
    refuse_full_replace: bool = False,
    remote: RemoteOptions | None = None,
) -> PackResult:
    """Pack ``source`` into the record at ``record`` (``DIR/NAME``): create it or add a patch.

    ``trust_mtime`` treats files whose size and modification time match the
    newest manifest as unchanged without hashing them. ``exclude`` holds
    gitignore-style patterns of paths to leave out (ih5's own lock and staging
    files always are). ``refuse_full_replace`` refuses a patch that would remove
    every path packed before (a different source, as ``ih5 pack`` asks first). ``record`` may be an
    ``s3://BUCKET/PREFIX/NAME`` URL: then only the newest manifest is fetched
    (``remote`` sets the connection; default: the ``AWS_*`` environment).
    """
    if isinstance(record, str) and is_remote(record):
        return _pack_remote(Path(source), record, remote, trust_mtime, progress, codecs, options)
    directory, name = split_record_path(record)
    validate_record_name(name)
    root = Path(source)
    _refuse_record_inside(root, directory / name)
    job = _Job(
        root,
        scan_directory(root, exclusion(exclude)),
        options or PackOptions(),
        trust_mtime,
        progress,
        list(codecs) if codecs is not None else None,
        refuse_full_replace,
        directory / name,
    )
    if any(path.name == f"{name}.ih5" for path in discover_containers(directory, name)):
        # A patch needs the newest manifest (still checked against its container), never
        # older data: re-hashing every container would make a small re-pack cost the
        # whole record.
        with IH5MFRecord(directory / name, "r+", verify=False) as rec:
            return _pack_into(rec, job, "patched")
    _recover_stub_runs(directory / name)
    # A manifest is published only after its container, so a manifest here without a
    # base is a copy of the real record's newest one: patch on a stub built from it.
    newest_manifest = _newest_manifest(directory, name)
    if newest_manifest is not None:
        return _pack_on_stub(newest_manifest, directory / name, job)
    directory.mkdir(parents=True, exist_ok=True)
    # Not "x": opening may roll forward a base that a killed run sealed, and then patches it.
    with IH5MFRecord(directory / name, "a") as rec:
        return _pack_into(rec, job, "patched" if rec.containers else "created")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (process-wide) while a pack runs.

    A pack allocates a few objects per file and frees them by reference counting;
    meanwhile the collector would scan the growing tree again and again (about a
    sixth of the CPU time of packing 1,000 small files). Cycles made meanwhile are
    collected once it runs again; a collector the caller had turned off stays off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _pack_into(rec: IH5MFRecord, job: _Job, action: Action) -> PackResult:
    """Write the changes of ``job`` as the open base or as a new patch of ``rec``."""
    with _collector_paused():
        return _pack_changes(rec, job, action)


def _pack_changes(rec: IH5MFRecord, job: _Job, action: Action) -> PackResult:
    """``_pack_into`` with the collector paused."""
    where = rec.location
    # Opening resumes an uncommitted container a killed run left behind (the lock says
    # its writer is gone); what it holds is unknown, so this run starts it afresh. The
    # empty patch opening started is kept: making it again would cost a file and a sync.
    if rec.containers and rec.has_patch and not _empty_patch(rec):
        rec.discard_patch()
    elif not rec.containers:
        for name in list(rec):
            del rec[name]
    if rec.containers:
        previous = TreeState.from_exts(rec.manifest_exts, str(where))
        if job.progress is not None:
            job.progress.phase("hashing", _bytes_to_hash(job.listing, previous, job.trust_mtime))
        advance = job.progress.advance if job.progress is not None else None
        current = current_state(job.root, job.listing, previous, job.trust_mtime, advance)
        changes = compare_states(previous, current)
        if not changes:
            return _result(rec, where, "unchanged", changes, previous)
        if job.refuse_full_replace:
            _refuse_replacing(job.record or where, previous, changes)
        if not rec.has_patch:
            rec.create_patch()
    else:
        previous = TreeState()
        changes = Changes(tuple(job.listing), (), ())
    if job.progress is not None:
        job.progress.phase(
            "packing", _bytes_to_pack(job.listing, [*changes.added, *changes.changed])
        )
    codecs = job.codecs if job.codecs is not None else installed_codecs()
    writer = _Writer(job.root, rec, codecs, job.options, job.progress)
    try:
        try:
            state = _apply(writer, job.listing, changes, previous)
        finally:
            writer.close()
        rec.commit_patch(manifest_exts={**rec.manifest_exts, **state.to_ext()})
    except BaseException:
        # Nothing of a failed run is published (a manifest only follows its container);
        # a new base cannot be discarded: the ``with`` that opened it drops it.
        if rec.has_patch and rec.containers:
            rec.discard_patch()
        raise
    return _result(rec, where, action, changes, state)


def _empty_patch(rec: IH5MFRecord) -> bool:
    """Whether the open patch holds nothing: no member, no attribute (a deletion is a
    marker member), so it is as good as a new one."""
    writer = rec.chain.writer
    return writer is not None and len(writer.file) == 0 and len(writer.file.attrs) == 0


_STAGING = re.compile(r"\.(?P<name>[A-Za-z0-9-]+)\.stub-(?P<pid>[0-9]+)-.+")
"""The staging directory of a run packing on a stub: ``.NAME.stub-PID-RANDOM``."""


def _recover_stub_runs(where: Path) -> None:
    """Complete what runs killed while publishing a patch made on a stub left; drop their staging.

    A run killed between publishing its patch and publishing the patch's manifest
    left the manifest staged: it is published now (containers first, always).
    """
    protocol = CommitProtocol(LocalStore(where.parent), where.name)
    containers = discover_containers(where.parent, where.name)
    for ref in load_refs(path for path in containers if not manifest_path(path).exists()):
        protocol.complete_manifest(ref)
    for staging in where.parent.glob(f".{where.name}.stub-*"):
        match = _STAGING.fullmatch(staging.name)
        if match is None or match["name"] != where.name or pid_alive(int(match["pid"])):
            continue
        shutil.rmtree(staging, ignore_errors=True)
    protocol.drop_dead_staged_manifests(holding_lock=False)


def _publish_beside(written: Sequence[Path], where: Path, manifest: Path) -> tuple[Path, ...]:
    """Publish a patch made on a stub, and its manifest, beside ``manifest`` (create-if-absent)."""
    (container,) = [path for path in written if path.name.endswith(CONTAINER_SUFFIX)]
    store = LocalStore(where.parent)
    protocol = CommitProtocol(store, where.name)
    try:
        protocol.check_free(container.name)
    except ConflictError as exc:
        raise ConflictError(
            f"{exc} (the record moved on since {manifest} was written; copy the newest "
            "manifest here and pack again)",
            exc.path,
        ) from exc
    (ref,) = load_refs([container])
    staged = protocol.staged_manifest_path(container.name)
    # The manifest waits under the protocol's staging name, so that a run killed after
    # publishing the container is completed by the next one.
    os.link(manifest_path(container), staged)
    try:
        publish_container(
            store, Sealed(container, ref.user_block, ref.block_size, container.name, staged)
        )
    except BaseException:
        if not store.exists(container.name):
            staged.unlink(missing_ok=True)
        raise
    return (where.parent / container.name, where.parent / manifest_name(container.name))


def _pack_on_stub(manifest: Path, where: Path, job: _Job) -> PackResult:
    """Write the patch on a stub built from ``manifest`` and publish it beside the manifest."""
    prefix = f".{where.name}.stub-{os.getpid()}-"
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=where.parent))
    try:
        with IH5MFRecord.create_stub(staging / where.name, manifest) as rec:
            result = _pack_into(rec, job, "patched-on-stub")
        if result.action == "unchanged":
            return replace(result, record=where)
        written = _publish_beside(result.written, where, manifest)
        return replace(result, record=where, written=written)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- packing into a remote record -----------------------------------------------------

REMOTE_ATTEMPTS = 8
"""Publishing races a remote packer may lose before it gives up with ConflictError."""


def _pack_remote(
    root: Path,
    url: str,
    remote: RemoteOptions | None,
    trust_mtime: bool,
    progress: PackProgress | None,
    codecs: Sequence[FileCodec] | None,
    options: PackOptions | None,
) -> PackResult:
    """Pack into a remote record from its newest manifest alone; rebuild on a lost race."""
    location, name = split_record_url(url)
    validate_record_name(name)
    store = open_store(location, remote)
    assert isinstance(store, ObjectStore)
    if not store.writable:
        raise RemoteReadOnlyError(
            f"{url} is read-only (HTTP); pack into object storage (s3://...) instead", url
        )
    job = _Job(
        root,
        scan_directory(root),
        options or PackOptions(),
        trust_mtime,
        progress,
        list(codecs) if codecs is not None else None,
    )
    try:
        for attempt in range(REMOTE_ATTEMPTS):
            try:
                return _pack_remote_once(store, name, job)
            except ConflictError:
                if attempt == REMOTE_ATTEMPTS - 1:
                    raise
                # Another packer published first: wait a little, then rebuild on its patch.
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
        raise AssertionError("unreachable")
    finally:
        store.close()


def _newest_listed(store: ObjectStore, name: str) -> Newest:
    """The newest manifest-backed container from a listing (completing parked manifests)."""
    listing = store.names()
    containers, manifests = remote_names(listing, name)
    if set(containers) - set(manifests):
        containers, manifests = complete_parked(store, name, listing)
    usable = sorted(index for index in manifests if index in containers)
    if containers and not usable:
        url = store.describe(name)
        raise ManifestError(
            f"{url} has containers but no manifest: a packer needs a manifest-backed "
            "record; pull it ('ih5 pull'), pack it locally, and push it",
            url,
        )
    if not usable:
        return Newest(-1, None)
    return Newest(usable[-1], store.read_bytes(manifests[usable[-1]]))


def _pack_remote_once(store: ObjectStore, name: str, job: _Job) -> PackResult:
    """One attempt: newest manifest -> stub (or a new base) -> patch -> publish."""
    newest = find_newest(store, name) or _newest_listed(store, name)
    url = store.describe(name)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.remote-"))
    try:
        if newest.manifest is None:
            with IH5MFRecord(staging / name, "x") as rec:
                result = _pack_into(rec, job, "created")
        else:
            manifest = staging / manifest_name(container_name(name, newest.index))
            manifest.write_bytes(newest.manifest)
            (staging / "stub").mkdir()
            IH5MFRecord.create_stub(staging / "stub" / name, manifest)
            with IH5MFRecord(staging / "stub" / name, "r+") as rec:
                result = _pack_into(rec, job, "patched")
        if result.action == "unchanged":
            remember(store, name, newest.index)
            return replace(result, record=Path(name), url=url, transfer=store.stats)
        (container,) = [path for path in result.written if path.name.endswith(CONTAINER_SUFFIX)]
        _publish_remote(store, name, container)
        published = parse_container_name(container.name)
        if published is not None:
            remember(store, name, published[1])
        written = (Path(container.name), Path(manifest_name(container.name)))
        return replace(result, record=Path(name), written=written, url=url, transfer=store.stats)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish_remote(store: ObjectStore, name: str, container: Path) -> None:
    """Park the manifest, publish the container if absent, then the manifest if absent.

    The parked copy lets the next packer complete a run killed between the two steps.
    """
    (ref,) = load_refs([container])
    final = container.name
    if file_index(ref.user_block) != parse_container_name(final)[1]:  # type: ignore[index]
        raise AssertionError(f"{final} does not carry its own index")
    protocol = CommitProtocol(store, name)
    staged = protocol.staged_manifest_path(final)
    shutil.copyfile(manifest_path(container), staged)
    store.upload_bytes(staged.name, staged.read_bytes())
    try:
        # As a local commit: refused when the name, or a stray manifest claiming it, is taken.
        protocol.publish(Sealed(container, ref.user_block, ref.block_size, final, staged))
    except ConflictError:
        store.remove(staged.name)
        raise
    if store.exists(manifest_name(final)):
        store.remove(staged.name)
