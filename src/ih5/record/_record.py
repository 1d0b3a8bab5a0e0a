"""``IH5Record``: a chain of immutable HDF5 containers behaving like one h5py file.

Life cycle: open with r+/a (which starts a patch at once) or create, change
things through the overlay, ``commit_patch`` (or ``discard_patch``), then
``create_patch`` for the next change set, or ``close``. The handle is
thin: the committed containers, their resolved tree and the open files live
in a :class:`~ih5.record._chain.Chain`; staging, sealing and publishing go
through the one commit protocol (:mod:`ih5.record._commit`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import h5py

from ih5.errors import (
    ConflictError,
    FileLockTimeoutError,
    IntegrityError,
    NoContainersGivenError,
    NotAnIH5ContainerError,
    RecordDirectoryError,
    RecordExistsError,
    RecordLockedError,
    RecordModeError,
    RecordNotFoundError,
    StrayFileWarning,
    UnknownKeywordError,
)
from ih5.format import (
    CONTAINER_SUFFIX,
    USER_BLOCK_SIZE,
    ContainerRef,
    IH5UserBlock,
    check_hashsums,
    discover_containers,
    manifest_name,
    parse_container_name,
    read_user_block_with_size,
    split_record_path,
    write_user_block,
)
from ih5.fs import Progress, file_lock, lock_holder, sweep_stale_temps_in, typed_storage_errors
from ih5.record._chain import Chain
from ih5.record._commit import CommitProtocol, Sealed, Sidecar, file_index
from ih5.record._facts import read_facts
from ih5.record._merge import merge_record
from ih5.record._opening import (
    RecordSource,
    Verify,
    files_up_to,
    locate,
    locate_listed,
    lock_target,
    open_container,
    read_chain,
    read_remote_chain,
)
from ih5.record._overlay import IH5Group, with_metador_compatibility
from ih5.record._parked import complete_remote
from ih5.record._patch import PatchWriter
from ih5.record._strays import Stray, find_strays
from ih5.record._tree import apply_container, walk
from ih5.store import (
    LocalStore,
    ObjectStore,
    RemoteOptions,
    Store,
    is_remote,
    is_url,
    local_path,
    open_store,
    split_record_url,
)

MODES = ("r", "r+", "a", "w", "w-", "x")
WAIT_NOTICE_AFTER = 1.0
"""Seconds a writer waits for the lock before saying who holds it."""

RecordT = TypeVar("RecordT", bound="IH5Record")
_log = logging.getLogger("ih5")


@dataclass(frozen=True)
class ContainerInfo:
    """One committed container in a record's history."""

    index: int
    patch_uuid: str
    hashsum: str
    size: int
    files: tuple[Path, ...]


class _WriterRegistry:
    """Records open for writing in this process (file locks are re-entrant per thread)."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._released = threading.Condition()

    def claim(self, key: str, timeout: float | None) -> bool:
        """Claim ``key``, waiting up to ``timeout`` seconds for its holder to release it."""
        with self._released:
            if key not in self._held:
                self._held.add(key)
                return True
        # The holder may be a dropped handle not yet collected: collecting releases it.
        gc.collect()
        with self._released:
            if not self._released.wait_for(lambda: key not in self._held, timeout):
                return False
            self._held.add(key)
            return True

    def release(self, key: str) -> None:
        with self._released:
            self._held.discard(key)
            self._released.notify_all()

    def forget_all(self) -> None:
        """Drop every claim: a forked child holds none of its parent's record locks."""
        self._held = set()
        self._released = threading.Condition()


_WRITERS = _WriterRegistry()
os.register_at_fork(after_in_child=_WRITERS.forget_all)


class _OpenPatch:
    """The staging file of the open patch (shared with the handle's finalizer)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.user_block: IH5UserBlock | None = None
        self.block_size = USER_BLOCK_SIZE


def _abandon(chain: Chain, patch: _OpenPatch, stack: ExitStack) -> None:
    """Finalizer of a handle dropped without close(): its change set is discarded."""
    try:
        chain.close()
        if patch.path is not None:
            patch.path.unlink(missing_ok=True)
            patch.path = None
    finally:
        stack.close()


class IH5Record(IH5Group):
    """An IH5 record opened in one of h5py's modes (r, r+, a, w, w-/x).

    ``record`` is ``DIR/NAME``, a list of container files, or the URL of a remote
    record (``s3://BUCKET/PREFIX/NAME``, ``https://HOST/PATH/NAME``; read-only, with
    ``remote`` options): a remote record fetches only the bytes it reads, so it
    checks hashsums only with ``verify=True`` or :meth:`verify` (the default
    ``verify=None`` means True for local records). ``verify=True`` checks
    hashsums but trusts a container unchanged since it was last verified (see
    ``ih5.fs._verified``); ``verify="full"`` re-hashes every byte. ``verify=False``
    skips hashsum checks for trusted local data (on damaged bytes, reading values
    may then raise DamagedPayloadError, return wrong values, or crash or hang
    inside libhdf5, which no Python code can prevent); ``at=K`` opens the state as
    of patch index K, read-only. ``base_user_block`` sets the identity of a
    base created by this call (default: fresh uuids, index 0).
    ``metador_compatible=True`` on creating a record keeps it readable by
    metador-core 0.1.1 for good: writes into datasets of older patches then
    raise (call ``copy_into_patch()``) instead of becoming chunk-level patches.

    An exception inside ``with`` discards the open patch; ``close(commit=False)``
    keeps it for the next writer to resume. A closed record, and every view of
    it, raises RecordClosedError.
    """

    _writers: ClassVar[_WriterRegistry] = _WRITERS

    def __init__(
        self,
        record: RecordSource,
        mode: str = "r",
        *,
        lock_timeout: float | None = 30.0,
        verify: Verify | None = None,
        at: int | None = None,
        progress: Progress | None = None,
        base_user_block: IH5UserBlock | None = None,
        remote: RemoteOptions | None = None,
        metador_compatible: bool = False,
    ) -> None:
        if mode not in MODES:
            raise RecordModeError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if at is not None and mode != "r":
            raise RecordModeError("a past state (at=...) can only be opened read-only (mode 'r')")
        if not isinstance(record, (str, os.PathLike)):
            record = list(record)
            if not record:
                raise NoContainersGivenError(
                    "no container files were given; pass at least the base"
                )
            if mode in ("w", "w-", "x"):
                raise RecordModeError(
                    f"mode {mode!r} creates a record: give it as DIR/NAME, not as a list of "
                    "container files"
                )
        self._mode = mode
        if isinstance(record, str) and is_url(record) and not is_remote(record):
            record = local_path(record)
        self._remote: ObjectStore | None = None
        files: list[Path] = []
        listing: list[str] | None = None
        self._name: str | None
        if isinstance(record, str) and is_remote(record):
            self._remote, name = _open_remote(record, mode, remote)
            self._directory, self._name = Path(), name
            self._label = self._remote.describe(name)
        else:
            self._directory, self._name, files, listing = locate_listed(record)
            self._label = str(self._directory / (self._name or "?"))
        verify = self._remote is None if verify is None else verify
        super().__init__(Chain(self._label, read_only=mode == "r"), "/")
        if mode != "r" and not self._directory.is_dir():
            raise RecordNotFoundError(
                f"directory {self._directory} does not exist; create it first", self._directory
            )
        self._store: Store = self._remote or LocalStore(self._directory)
        self._protocol = (
            CommitProtocol(self._store, self._name) if self._name and not self._remote else None
        )
        self._stack = ExitStack()
        self._patch = _OpenPatch()
        self._truncating: list[str] | None = None
        self._lock_timeout = lock_timeout
        self._finalizer = weakref.finalize(self, _abandon, self._chain, self._patch, self._stack)
        try:
            refs, foreign = self._open(record, mode, files, verify, progress, at)
            self._chain.reset(refs)
            # A reader's chain comes from the scan that found its containers: its strays too.
            self._report_strays(listing if mode == "r" else None)
            self._check_opened()
            if mode != "r":
                base = base_user_block or IH5UserBlock.create()
                if metador_compatible:
                    base = with_metador_compatibility(base)
                self._start_writing(foreign, base)
        except BaseException:
            self._finalizer.detach()
            self._chain.close()
            self._stack.close()
            raise

    # --- opening --------------------------------------------------------------

    def _open(
        self,
        record: RecordSource,
        mode: str,
        files: list[Path],
        verify: Verify,
        progress: Progress | None,
        at: int | None,
    ) -> tuple[list[ContainerRef], ContainerRef | None]:
        """Lock (writers), recover, and read the committed chain and a trailing foreign one."""
        if self._remote is not None:
            assert self._name is not None
            committed, trailing = read_remote_chain(
                self._remote, self._name, bool(verify), progress
            )
            complete_remote(self._remote, self._name)
            return (self._chain_until(committed, at) if at is not None else committed), trailing
        if mode != "r":
            self._lock(self._lock_timeout)
        refs: list[ContainerRef] = []
        foreign: ContainerRef | None = None
        while True:
            if mode != "r" and isinstance(record, (str, os.PathLike)):
                # Look again: the record may have grown while we waited for the lock.
                files = locate(record)[2]
            if files:
                # A past state needs (and hashes) only the containers up to it, so a
                # damaged newer patch does not hide the states before it.
                wanted = files if at is None else files_up_to(files, at)
                refs, foreign = read_chain(wanted, verify, progress)
            if mode == "r" or self._protocol is None:
                break
            newest = refs[-1].user_block if refs else None
            if self._protocol.roll_forward(newest, holding_lock=True) is None:
                break
            verify = False  # the rolled-forward container was checked before publishing
        if refs and self._protocol is not None:
            self._complete_manifest(refs[-1])
        if mode in ("w-", "x") and refs:
            raise RecordExistsError(
                f"record {self._label} already exists; open it with mode 'a' or 'r+'",
                refs[0].path,
            )
        if mode == "w":
            # The old record stays until the new base is committed (then it is replaced).
            self._truncating = []
            for suspended in self._protocol.suspended(0) if self._protocol else []:
                suspended.unlink(missing_ok=True)
            return [], None
        if not refs and foreign is None and mode in ("r", "r+"):
            raise RecordNotFoundError(
                f"no containers of record {self._label} found; check the path", self._label
            )
        if at is not None:
            refs = self._chain_until(refs, at)
        return refs, foreign

    def _check_opened(self) -> None:
        """Check the committed chain just read, before any patch is started (a subclass hook)."""

    def _complete_manifest(self, ref: ContainerRef) -> None:
        """Publish the staged manifest of a newest container a killed writer left without it."""
        assert self._protocol is not None
        try:
            self._protocol.complete_manifest(ref)
        except OSError:
            # A reader of a read-only directory cannot complete it; opening says what is missing.
            if self._mode != "r":
                raise

    def _require_name(self) -> str:
        if self._name is None:
            raise RecordModeError(
                "the container files do not carry a record name (NAME.ih5, NAME.pK.ih5); "
                "rename them to write patches",
                self._label,
            )
        return self._name

    def _require_protocol(self) -> CommitProtocol:
        self._require_name()
        assert self._protocol is not None
        return self._protocol

    def _lock(self, timeout: float | None) -> None:
        target = lock_target(self._directory, self._require_name())
        key = os.path.realpath(target)
        start = time.monotonic()
        if not self._writers.claim(key, timeout):
            raise RecordLockedError(
                f"record {self._label} is locked by another writer in this process "
                f"(waited {timeout} s); close it first",
                target,
            )
        self._stack.callback(self._writers.release, key)
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        first = WAIT_NOTICE_AFTER if remaining is None else min(remaining, WAIT_NOTICE_AFTER)
        try:
            try:
                self._stack.enter_context(file_lock(target, first))
            except FileLockTimeoutError:
                if remaining is not None and remaining <= first:
                    raise
                _log.warning(
                    "waiting for the writer of record %s (%s) to finish",
                    self._label,
                    lock_holder(target),
                )
                rest = None if remaining is None else remaining - first
                self._stack.enter_context(file_lock(target, rest))
        except FileLockTimeoutError as exc:
            raise RecordLockedError(
                f"record {self._label} is locked by another writer ({lock_holder(target)}; "
                f"waited {timeout} s); retry when it is done",
                target,
            ) from exc
        # Temp files of the record's containers and sidecars left by killed writers.
        prefix = f"{self._require_name()}."
        sweep_stale_temps_in(self._directory, lambda name: name.startswith(prefix))

    def _chain_until(self, refs: list[ContainerRef], at: int) -> list[ContainerRef]:
        chain = [ref for ref in refs if ref.user_block.patch_index <= at]
        if not chain or chain[-1].user_block.patch_index != at:
            known = [ref.user_block.patch_index for ref in refs]
            raise RecordNotFoundError(
                f"record {self._label} has no committed state {at}; known: {known}",
                self._label,
            )
        return chain

    def _report_strays(self, listing: list[str] | None = None) -> None:
        # A remote record's opening listed its prefix already: its strays cost no request.
        listed = self._remote.listed if self._remote is not None else listing
        for stray in self._strays(listed):
            warnings.warn(
                f"{stray.location or stray.path}: {stray.reason}; it is not part of record "
                f"{self._label}",
                StrayFileWarning,
                stacklevel=4,
            )

    def strays(self) -> list[Stray]:
        """Files that look like this record's but do not fit its chain (copies, orphans)."""
        return self._strays(None)

    def _strays(self, names: list[str] | None) -> list[Stray]:
        if self._name is None or not self._chain.refs:
            return []
        return find_strays(self._store, self._name, self._chain.refs, names)

    def _start_writing(self, foreign: ContainerRef | None, base: IH5UserBlock) -> None:
        """Resume an uncommitted container (a suspended or foreign one) or create the base."""
        protocol = self._require_protocol()
        newest = self._chain.newest
        index = self._next_file_index()
        candidates = [foreign.path] if foreign is not None else []
        candidates += protocol.suspended(index) if self._truncating is None else []
        for path in candidates:
            if self._resumable(path, newest) is None:
                continue
            taken = protocol.take(path, index)
            if taken is None:
                continue
            try:
                user_block, size = read_user_block_with_size(taken)
                self._open_patch(taken, user_block, size)
            except (OSError, IntegrityError, NotAnIH5ContainerError):
                if foreign is not None and path == foreign.path:
                    raise
                # Its writer was killed before closing it, so HDF5 never wrote its metadata.
                taken.unlink(missing_ok=True)
                continue
            return
        if newest is None:
            self._create_container(base)
        else:
            # As in metador-core: a writer opening a committed record can write at once.
            self._new_patch(newest)

    def _next_file_index(self) -> int:
        newest = self._chain.newest
        return newest.patch_index + 1 if newest is not None else 0

    def _resumable(self, path: Path, newest: IH5UserBlock | None) -> IH5UserBlock | None:
        try:
            user_block, _ = read_user_block_with_size(path)
        except (NotAnIH5ContainerError, FileNotFoundError):
            return None
        expected_prev = newest.patch_uuid if newest is not None else None
        if user_block.hdf5_hashsum is None and user_block.prev_patch == expected_prev:
            return user_block
        return None

    # --- the open patch -------------------------------------------------------

    @property
    def chain(self) -> Chain:
        """The committed containers, resolved tree and open files this handle shows."""
        return self._chain

    @property
    def location(self) -> Path:
        """``DIR/NAME`` of the record."""
        return self._directory / self._require_name()

    @property
    def url(self) -> str | None:
        """The URL of a remote record (None for a local one)."""
        return self._label if self._remote is not None else None

    @property
    def store(self) -> Store:
        """Where the record's files live (a local directory or a remote store)."""
        return self._store

    @property
    def has_patch(self) -> bool:
        """True while an uncommitted container is open for changes."""
        return self._chain.writer is not None

    @property
    def mode(self) -> str:
        """``"r"`` (read-only) or ``"r+"`` (patches allowed), whatever mode opened it."""
        return "r" if self._mode == "r" else "r+"

    @property
    def ih5_uuid(self) -> uuid.UUID:
        """The record uuid (known before the first commit, from the open base)."""
        self._chain.check_open()
        block = self._chain.newest or self._patch.user_block
        if block is None:
            raise RecordNotFoundError(f"record {self._label} has no container", self._label)
        return block.record_uuid

    @property
    def ih5_files(self) -> list[Path]:
        """Every container file, oldest first, the open (uncommitted) one last."""
        self._chain.check_open()
        files = [ref.path for ref in self._chain.refs]
        if self._chain.writer is not None and self._patch.path is not None:
            files.append(self._patch.path)
        return files

    @property
    def ih5_meta(self) -> list[IH5UserBlock]:
        """Copies of the user blocks, in the order of ``ih5_files``."""
        self._chain.check_open()
        blocks = [ref.user_block for ref in self._chain.refs]
        if self._chain.writer is not None and self._patch.user_block is not None:
            blocks.append(self._patch.user_block)
        return [block.model_copy(deep=True) for block in blocks]

    @classmethod
    def find_files(cls, record: str | os.PathLike[str]) -> list[Path]:
        """The container files of record ``DIR/NAME`` found by name, in chain order."""
        directory, name = split_record_path(record)
        return discover_containers(directory, name)

    @classmethod
    def list_records(cls, directory: str | os.PathLike[str]) -> list[Path]:
        """The records (``DIR/NAME``) whose containers are in ``directory``, sorted by name."""
        where = Path(directory)
        if not where.is_dir():
            raise RecordDirectoryError(
                f"{where} is not a directory; give the directory holding the records", where
            )
        names = set()
        for entry in os.listdir(where):
            parsed = parse_container_name(entry)
            if parsed is not None and (where / entry).is_file():
                names.add(parsed[0])
        return [where / name for name in sorted(names)]

    @classmethod
    def delete_files(
        cls, record: str | os.PathLike[str], *, lock_timeout: float | None = 30.0
    ) -> None:
        """Delete every container of record ``DIR/NAME``, newest first, under its writer lock.

        Also deletes what a subclass keeps beside each container (manifests) and
        the staged files of writers that are gone. This cannot be undone.
        """
        directory, name = split_record_path(record)
        if not directory.is_dir():
            return
        with _writer_lock(cls._writers, directory, name, lock_timeout):
            store = LocalStore(directory)
            for container in reversed(discover_containers(directory, name)):
                container.unlink(missing_ok=True)
                for beside in cls._files_beside(container):
                    beside.unlink(missing_ok=True)
            for staged in CommitProtocol(store, name).staged_files():
                if not staged.owner_alive(holding_lock=True):
                    (store.staging_dir / staged.name).unlink(missing_ok=True)
            store.sync()

    @classmethod
    def _files_beside(cls, container: Path) -> list[Path]:
        """Files a record of this class keeps beside ``container`` (none for plain records)."""
        return []

    def _open_patch(self, path: Path, user_block: IH5UserBlock, block_size: int) -> None:
        file = open_container(path, "r+")
        try:
            facts = read_facts(file)
        except BaseException:
            file.close()
            raise
        chain = self._chain
        is_base = not chain.refs
        chain.root = apply_container(
            chain.root if chain.refs else None, facts, user_block.patch_index, is_base
        )
        self._patch.path = path
        self._patch.user_block = user_block
        self._patch.block_size = block_size
        self._require_protocol().claim(path)
        chain.writer = PatchWriter(file, user_block.patch_index, is_base, chain.root)

    def _create_container(self, user_block: IH5UserBlock) -> None:
        path = self._require_protocol().staging_path(file_index(user_block))
        try:
            with typed_storage_errors(self._directory, f"creating a patch of {self._label}"):
                h5py.File(path, "w-", userblock_size=USER_BLOCK_SIZE).close()
                # Durable when sealed: before that no reader looks at the file.
                write_user_block(path, user_block, durable=False)
                self._open_patch(path, user_block, USER_BLOCK_SIZE)
        except BaseException:
            with contextlib.suppress(OSError):  # a read-only directory has nothing to remove
                path.unlink(missing_ok=True)
            raise

    def _check_newest_on_disk(self) -> None:
        """Refuse to fork the chain when the directory holds a newer container than our view."""
        if self._truncating is not None:
            return
        name = self._require_name()
        newest = self._chain.newest
        newest_index = newest.patch_index if newest is not None else -1
        names = self._store.names()  # one listing for both checks: this runs on every commit
        for entry in names:
            parsed = parse_container_name(entry)
            if parsed is not None and parsed[0] == name and parsed[1] > newest_index:
                raise ConflictError(
                    f"record {self._label} has a newer container {entry} than this "
                    "writer has seen; reopen the record and retry",
                    self._store.describe(entry),
                )
        index = self._next_file_index()
        strays = find_strays(self._store, name, self._chain.refs, names) if self._chain.refs else []
        for stray in strays:
            if stray.claims == index:
                raise ConflictError(
                    f"{stray.path} claims patch index {index} ({stray.reason}); nothing is "
                    "published over it: move it away and retry",
                    stray.path,
                )

    def create_patch(self) -> None:
        """Start a new change set on top of the newest committed container.

        Opening with r+ or a already does this; call it after ``commit_patch`` or
        ``discard_patch`` to go on writing.
        """
        self._chain.check_open()
        if self._mode == "r":
            self._chain.require_writer()
        if self._chain.writer is not None:
            raise RecordModeError(
                f"record {self._label} already has an open patch; commit or discard it first"
            )
        newest = self._chain.newest
        if newest is None:
            raise RecordNotFoundError(f"record {self._label} has no committed base yet")
        self._new_patch(newest)

    def _new_patch(self, newest: IH5UserBlock) -> None:
        self._check_newest_on_disk()
        self._create_container(IH5UserBlock.create(newest))

    def _patch_is_empty(self) -> bool:
        """True for an open patch (not a base) without any change: closing drops it."""
        writer = self._chain.writer
        if writer is None or writer.is_base or not writer.file:
            # A file a failed commit left closed: committing again reports what is wrong.
            return False
        return len(writer.file) == 0 and len(writer.file.attrs) == 0

    def _sidecar(self) -> Sidecar | None:
        """What a commit publishes beside its container (a manifest); none for plain records."""
        return None

    def commit_patch(self, **kwargs: Any) -> None:
        """Hash the open container, seal its user block and publish it under its final name."""
        self._chain.check_open()
        if kwargs:
            raise UnknownKeywordError(
                f"commit_patch() got unknown keyword(s) {', '.join(sorted(kwargs))}", self._label
            )
        writer = self._chain.require_writer()
        protocol = self._require_protocol()
        patch = self._patch
        assert patch.path is not None and patch.user_block is not None
        self._check_newest_on_disk()
        unsealed = patch.user_block
        with typed_storage_errors(self._directory, f"committing a patch of {self._label}"):
            writer.room.close()
            try:
                sealed = protocol.seal(
                    patch.path, unsealed, patch.block_size, file_index(unsealed), self._sidecar()
                )
            except BaseException:
                self._reopen_patch(patch.path, unsealed, patch.block_size)
                raise
            try:
                ref = self._publish(protocol, sealed)
            except BaseException:
                if not os.path.lexists(sealed.path):
                    # Published; only making it durable or publishing the manifest failed.
                    self._committed(_published_ref(sealed, self._directory))
                    raise
                # Nothing was published: the change set stays open for its writer (to retry
                # or discard). Should that fail too, the sealed file is rolled forward later.
                protocol.unseal(sealed, unsealed)
                self._reopen_patch(patch.path, unsealed, patch.block_size)
                raise
        self._committed(ref)

    def _reopen_patch(self, path: Path, user_block: IH5UserBlock, block_size: int) -> None:
        """Open our closed, unpublished patch again after a failed commit, to retry or discard."""
        self._chain.writer = None
        self._require_protocol().release(path)
        self._open_patch(path, user_block, block_size)

    def _publish(self, protocol: CommitProtocol, sealed: Sealed) -> ContainerRef:
        if self._truncating is not None:
            names = set(self._store.names())
            old = [path.name for path in discover_containers(self._directory, protocol.name)]
            old += [manifest_name(name) for name in old if manifest_name(name) in names]
            if old or manifest_name(sealed.final) in names:
                ref = protocol.replace_published(sealed, old)
                self._truncating = None
                return ref
            self._truncating = None
        return protocol.publish(sealed)

    def _committed(self, ref: ContainerRef) -> None:
        self._chain.append(ref)
        self._chain.writer = None
        if self._patch.path is not None:
            self._require_protocol().release(self._patch.path)
        self._patch.path = None
        self._patch.user_block = None

    def _suspend_patch(self) -> None:
        """Close the open container uncommitted, for a later writer to resume."""
        writer = self._chain.require_writer()
        assert self._patch.path is not None
        self._chain.writer = None
        path, self._patch.path = self._patch.path, None
        self._require_protocol().release(path)
        writer.room.close()
        self._require_protocol().suspend(path)

    def discard_patch(self) -> None:
        """Throw the open patch away; the overlay returns to the last committed state.

        The uncommitted base of a new record cannot be discarded (as in metador-core):
        ``close(commit=False)`` keeps it, ``delete_files`` removes it.
        """
        self._chain.check_open()
        writer = self._chain.require_writer()
        if writer.is_base:
            raise RecordModeError(
                f"record {self._label} has no committed container: its open base cannot be "
                "discarded; close(commit=False) keeps it, delete_files() removes it",
                self._label,
            )
        self._drop_patch()

    def _drop_patch(self) -> None:
        """Throw the open container (a patch or the base) away."""
        writer = self._chain.require_writer()
        path, self._patch.path = self._patch.path, None
        # Forget the patch first: should closing or removing its file fail, closing the
        # record must not suspend the discarded changes for the next writer to resume.
        self._chain.writer = None
        self._chain.rebuild()
        try:
            writer.room.close_discarded()
        finally:
            if path is not None:
                self._require_protocol().release(path)
                self._require_protocol().drop(path)

    # --- reading --------------------------------------------------------------

    @property
    def user_block(self) -> IH5UserBlock:
        """A copy of the user block of the newest committed container."""
        self._chain.check_open()
        newest = self._chain.newest
        if newest is None:
            raise RecordNotFoundError(f"record {self._label} has no committed container")
        # A copy: IH5UBExtManifest.update() changes a user block in place (as in metador-core).
        return newest.model_copy(deep=True)

    @property
    def containers(self) -> list[Path]:
        """The committed container files, oldest first."""
        self._chain.check_open()
        return [ref.path for ref in self._chain.refs]

    def history(self) -> list[ContainerInfo]:
        """One entry per committed container: index, uuid, hashsum, size and files."""
        self._chain.check_open()
        entries = []
        remote_names = set(self._store.names()) if self._remote and self._remote.listable else None
        for ref in self._chain.refs:
            manifest = ref.path.with_name(manifest_name(ref.path.name))
            if ref.source is None:
                has_manifest, size = manifest.exists(), ref.path.stat().st_size
            else:
                has_manifest = (
                    manifest.name in remote_names
                    if remote_names is not None
                    else ref.source.exists(manifest.name)
                )
                size = ref.source.size(ref.path.name)
            files = (ref.path, manifest) if has_manifest else (ref.path,)
            assert ref.user_block.hdf5_hashsum is not None
            entries.append(
                ContainerInfo(
                    ref.user_block.patch_index,
                    str(ref.user_block.patch_uuid),
                    ref.user_block.hdf5_hashsum,
                    size,
                    files,
                )
            )
        return entries

    def node_counts(self) -> tuple[int, int]:
        """(groups, datasets) of the state this handle shows, the root group included."""
        self._chain.check_open()
        groups = datasets = 0
        for _path, node in walk(self._chain.root):
            if node.is_group:
                groups += 1
            else:
                datasets += 1
        return groups, datasets

    def verify(self, progress: Progress | None = None) -> None:
        """Re-hash every committed container; raise IntegrityError on the first mismatch."""
        self._chain.check_open()
        check_hashsums(self._chain.refs, progress)

    def merge_files(self, target: str | os.PathLike[str]) -> Path:
        """Write the committed state into one new base container; return its path.

        ``target`` is ``DIR/NAME`` (written as ``DIR/NAME.ih5``, as in metador-core)
        or a file name ending in ``.ih5``.
        """
        self._chain.check_open()
        path = Path(target)
        if not path.name.endswith(CONTAINER_SUFFIX):
            path = path.with_name(path.name + CONTAINER_SUFFIX)
        return merge_record(self._chain, path, self._sidecar())

    # --- closing --------------------------------------------------------------

    def close(self, commit: bool = True) -> None:
        """Commit (or keep uncommitted, ``commit=False``) an open patch, then release all.

        A patch without any change is dropped rather than published as an empty container.
        """
        if self._chain.closed:
            return
        try:
            if self._chain.writer is not None:
                if commit and self._patch_is_empty():
                    # Opening r+ just to read publishes nothing (metador-core adds an empty patch).
                    self._drop_patch()
                elif commit:
                    self.commit_patch()
                else:
                    self._suspend_patch()
        finally:
            self._finalizer()

    def __enter__(self: RecordT) -> RecordT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None and self._chain.writer is not None and not self._chain.closed:
            # An exception inside ``with`` abandons the change set: it is never published.
            try:
                self._drop_patch()
            finally:
                self.close()
            return
        self.close(commit=exc is None)

    def __repr__(self) -> str:
        state = "closed" if self._chain.closed else f"mode {self._mode!r}"
        return f"<IH5Record {self._label} ({len(self._chain.refs)} containers, {state})>"


@contextmanager
def _writer_lock(
    writers: _WriterRegistry, directory: Path, name: str, timeout: float | None
) -> Iterator[None]:
    """Hold the writer lock of record ``directory/name`` (this process's and the file lock)."""
    target = lock_target(directory, name)
    key = os.path.realpath(target)
    if not writers.claim(key, timeout):
        raise RecordLockedError(
            f"record {directory / name} is open for writing in this process; close it first",
            target,
        )
    try:
        with file_lock(target, timeout):
            yield
    except FileLockTimeoutError as exc:
        raise RecordLockedError(
            f"record {directory / name} is locked by another writer ({lock_holder(target)}; "
            f"waited {timeout} s); retry when it is done",
            target,
        ) from exc
    finally:
        writers.release(key)


def _open_remote(url: str, mode: str, options: RemoteOptions | None) -> tuple[ObjectStore, str]:
    """The store and name of a remote record, which opens read-only."""
    if mode != "r":
        raise RecordModeError(
            f"remote record {url} opens read-only (mode 'r'); publish to it with "
            "'ih5 pack DIR URL' or 'ih5 push RECORD URL'",
            url,
        )
    location, name = split_record_url(url)
    store = open_store(location, options)
    assert isinstance(store, ObjectStore)
    return store, name


def _published_ref(sealed: Sealed, directory: Path) -> ContainerRef:
    """The committed container a published ``sealed`` became."""
    return ContainerRef(directory / sealed.final, sealed.user_block, sealed.block_size)
