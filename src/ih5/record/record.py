"""``IH5Record``: a chain of immutable HDF5 containers behaving like one h5py file.

Life cycle: open or create, ``create_patch``, change things through the
overlay, ``commit_patch`` (or ``discard_patch``), ``close``. Our writer keeps
an uncommitted container under a hidden pending name and gives it its final
name only once it is committed, so readers never see uncommitted data and a
crash leaves the record in its last committed state.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import ClassVar, TypeVar

import h5py

from ih5.errors import (
    ConflictError,
    FileLockTimeoutError,
    IntegrityError,
    NodeNotFoundError,
    NotAnIH5ContainerError,
    RecordExistsError,
    RecordLockedError,
    RecordModeError,
    RecordNotFoundError,
    StubError,
)
from ih5.format import (
    USER_BLOCK_SIZE,
    ContainerRef,
    IH5UserBlock,
    check_hashsums,
    container_name,
    discover_containers,
    hashsum_container,
    parse_container_name,
    read_user_block_with_size,
    write_user_block,
)
from ih5.format.extensions import is_stub_container
from ih5.fs import file_lock, fsync_directory, replace_file
from ih5.fs.atomic import sweep_stale_temps_in
from ih5.fs.hashing import Progress
from ih5.record.facts import read_facts
from ih5.record.opening import (
    PENDING_SUFFIX,
    WRITING_SUFFIX,
    RecordSource,
    build_tree,
    container_facts,
    locate,
    lock_target,
    open_container,
    pending_path,
    read_chain,
    writing_path,
)
from ih5.record.overlay import IH5Group
from ih5.record.patch import PatchWriter
from ih5.record.tree import Node, apply_container, split_path

MODES = ("r", "r+", "a", "w", "w-", "x")

RecordT = TypeVar("RecordT", bound="IH5Record")


@dataclass(frozen=True)
class ContainerInfo:
    """One committed container in a record's history."""

    index: int
    patch_uuid: str
    hashsum: str
    size: int
    files: tuple[Path, ...]


def _file_index(user_block: IH5UserBlock) -> int:
    """The index in a container's file name: 0 for the first of a chain (base or stub)."""
    return 0 if user_block.prev_patch is None else user_block.patch_index


class _WriterRegistry:
    """Records open for writing in this process (file locks are re-entrant per thread)."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._released = threading.Condition()

    def claim(self, key: str, timeout: float | None) -> bool:
        """Claim ``key``, waiting up to ``timeout`` seconds for its holder to release it."""
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


class IH5Record(IH5Group):
    """An IH5 record opened in one of h5py's modes (r, r+, a, w, w-/x).

    ``record`` is ``DIR/NAME`` or a list of container files. ``verify=False``
    skips hashsum checks for trusted local data (on damaged bytes, reading values
    may then raise DamagedPayloadError, return wrong values, or crash or hang
    inside libhdf5, which no Python code can prevent); ``at=K`` opens the state as
    of patch index K, read-only. ``base_user_block`` sets the identity of a
    base created by this call (default: fresh uuids, index 0).
    """

    _writers: ClassVar[_WriterRegistry] = _WRITERS

    def __init__(
        self,
        record: RecordSource,
        mode: str = "r",
        *,
        lock_timeout: float | None = 30.0,
        verify: bool = True,
        at: int | None = None,
        progress: Progress | None = None,
        base_user_block: IH5UserBlock | None = None,
    ) -> None:
        if mode not in MODES:
            raise RecordModeError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if at is not None and mode != "r":
            raise RecordModeError("a past state (at=...) can only be opened read-only (mode 'r')")
        super().__init__(self, "/")
        self._mode = mode
        self._directory, self._name, files = locate(record)
        if mode != "r" and not self._directory.is_dir():
            raise RecordNotFoundError(
                f"directory {self._directory} does not exist; create it first", self._directory
            )
        self._stack = ExitStack()
        self._files: dict[int, h5py.File] = {}
        self._writer: PatchWriter | None = None
        self._patch_ref: ContainerRef | None = None
        self._chain: list[ContainerRef] = []
        self._closed = False
        foreign: ContainerRef | None = None
        try:
            if mode != "r":
                self._lock(lock_timeout)
                if isinstance(record, (str, os.PathLike)):
                    # Look again: the record may have grown while we waited for the lock.
                    files = locate(record)[2]
                files = self._prepare_for_writing(mode, files)
            if files:
                self._chain, foreign = read_chain(files, verify, progress)
                if at is not None:
                    self._chain = self._chain_until(at)
            elif mode in ("r", "r+"):
                raise RecordNotFoundError(
                    f"no containers of record {self._record_label} found; check the path",
                    self._record_label,
                )
            self._root = build_tree(self._chain)
            if mode != "r":
                self._start_writing(foreign, base_user_block or IH5UserBlock.create())
        except BaseException:
            self._release()
            raise

    # --- opening --------------------------------------------------------------

    @property
    def _record_label(self) -> str:
        return str(self._directory / (self._name or "?"))

    def _require_name(self) -> str:
        if self._name is None:
            raise RecordModeError(
                "the container files do not carry a record name (NAME.ih5, NAME.pK.ih5); "
                "rename them to write patches",
                self._record_label,
            )
        return self._name

    def _lock(self, timeout: float | None) -> None:
        target = lock_target(self._directory, self._require_name())
        key = os.path.realpath(target)
        start = time.monotonic()
        if not self._writers.claim(key, timeout):
            raise RecordLockedError(
                f"record {self._record_label} is locked by another writer in this process "
                f"(waited {timeout} s); close it first",
                target,
            )
        self._stack.callback(self._writers.release, key)
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        try:
            self._stack.enter_context(file_lock(target, remaining))
        except FileLockTimeoutError as exc:
            raise RecordLockedError(
                f"record {self._record_label} is locked by another writer "
                f"(waited {timeout} s); retry when it is done",
                target,
            ) from exc
        # Temp files of the record's containers and sidecars left by killed writers.
        prefix = f"{self._require_name()}."
        sweep_stale_temps_in(self._directory, lambda name: name.startswith(prefix))

    def _prepare_for_writing(self, mode: str, files: list[Path]) -> list[Path]:
        """Apply the create/truncate rules of ``mode``; return the files to open."""
        if files and mode in ("w-", "x"):
            raise RecordExistsError(
                f"record {self._record_label} already exists; open it with mode 'a' or 'r+'",
                files[0],
            )
        if mode == "w":
            # ".*ih5" matches the base's names (.NAME.ih5.pending) and the patches'.
            uncommitted = [
                *self._directory.glob(f".{self._name}.*ih5{PENDING_SUFFIX}"),
                *self._directory.glob(f".{self._name}.*ih5{WRITING_SUFFIX}"),
            ]
            for path in [*files, *uncommitted]:
                path.unlink()
            fsync_directory(self._directory)
            return []
        return files

    def _chain_until(self, at: int) -> list[ContainerRef]:
        chain = [ref for ref in self._chain if ref.user_block.patch_index <= at]
        if not chain or chain[-1].user_block.patch_index != at:
            known = [ref.user_block.patch_index for ref in self._chain]
            raise RecordNotFoundError(
                f"record {self._record_label} has no committed state {at}; known: {known}",
                self._record_label,
            )
        return chain

    def _start_writing(self, foreign: ContainerRef | None, base: IH5UserBlock) -> None:
        """Resume an uncommitted container (ours or a foreign one) or create the base."""
        name = self._require_name()
        while self._roll_forward(writing_path(self._directory, name, self._next_file_index())):
            pass
        if self._chain and self._mode in ("w-", "x"):
            raise RecordExistsError(
                f"record {self._record_label} already exists: a writer that died while "
                "creating it had sealed it, so it was completed; open it with mode 'a' or 'r+'",
                self._chain[0].path,
            )
        newest = self._chain[-1].user_block if self._chain else None
        index = self._next_file_index()
        candidates = [foreign.path] if foreign is not None else []
        candidates.append(pending_path(self._directory, name, index))
        for path in candidates:
            if not path.exists():
                continue
            ref = self._resumable(path, newest)
            if ref is None:
                continue
            if path.name.endswith(PENDING_SUFFIX):
                ref = replace(ref, path=writing_path(self._directory, name, index))
                os.replace(path, ref.path)
                path = ref.path
            try:
                self._open_patch(ref)
            except (OSError, IntegrityError):
                if foreign is not None and path == foreign.path:
                    raise
                # Our writer was killed before closing it, so HDF5 never wrote its metadata.
                path.unlink()
                continue
            return
        if newest is None:
            self._create_container(base)

    def _next_file_index(self) -> int:
        return self._chain[-1].user_block.patch_index + 1 if self._chain else 0

    def _roll_forward(self, path: Path) -> bool:
        """Finish the commit of a writer that died after sealing ``path``; drop anything else.

        A container a dead writer still had open holds an unknown part of its
        change set, so it is never resumed. One whose user block was sealed
        (hashsum written, matching the bytes) only missed its rename.
        """
        if not path.exists():
            return False
        newest = self._chain[-1].user_block.patch_uuid if self._chain else None
        try:
            user_block, size = read_user_block_with_size(path)
            sealed = (
                user_block.hdf5_hashsum is not None
                and user_block.prev_patch == newest
                and hashsum_container(path, user_block.hdf5_hashsum.split(":")[0])
                == user_block.hdf5_hashsum
            )
        except NotAnIH5ContainerError:
            sealed = False
        final = self._directory / container_name(self._require_name(), self._next_file_index())
        if not sealed or final.exists():
            path.unlink()
            fsync_directory(self._directory)
            return False
        replace_file(path, final)
        ref = ContainerRef(final, user_block, size)
        self._root = apply_container(
            self._root if self._chain else None,
            container_facts(ref),
            user_block.patch_index,
            is_base=not self._chain,
        )
        self._chain.append(ref)
        return True

    def _resumable(self, path: Path, newest: IH5UserBlock | None) -> ContainerRef | None:
        try:
            user_block, size = read_user_block_with_size(path)
        except NotAnIH5ContainerError:
            # A writer died between creating the file and writing its user block.
            path.unlink()
            return None
        expected_prev = newest.patch_uuid if newest is not None else None
        if user_block.hdf5_hashsum is None and user_block.prev_patch == expected_prev:
            return ContainerRef(path, user_block, size)
        path.unlink()
        return None

    # --- the open patch -------------------------------------------------------

    @property
    def has_patch(self) -> bool:
        """True while an uncommitted container is open for changes."""
        return self._writer is not None

    @property
    def mode(self) -> str:
        """The mode the record was opened in."""
        return self._mode

    def _require_writer(self) -> PatchWriter:
        if self._writer is None:
            if self._mode == "r":
                raise RecordModeError(
                    f"record {self._record_label} is open read-only; open it with mode 'r+'"
                )
            raise RecordModeError(
                f"record {self._record_label} has no open patch; call create_patch() first"
            )
        return self._writer

    def _open_patch(self, ref: ContainerRef) -> None:
        file = open_container(ref.path, "r+")
        try:
            facts = read_facts(file)
        except BaseException:
            file.close()
            raise
        is_base = not self._chain
        self._root = apply_container(
            self._root if self._chain else None,
            facts,
            ref.user_block.patch_index,
            is_base,
        )
        self._patch_ref = ref
        self._writer = PatchWriter(file, ref.user_block.patch_index, is_base, self._root)

    def _create_container(self, user_block: IH5UserBlock) -> None:
        path = writing_path(self._directory, self._require_name(), _file_index(user_block))
        path.unlink(missing_ok=True)
        h5py.File(path, "w-", userblock_size=USER_BLOCK_SIZE).close()
        write_user_block(path, user_block)
        self._open_patch(ContainerRef(path, user_block, USER_BLOCK_SIZE))

    def _check_newest_on_disk(self) -> None:
        """Refuse to fork the chain when the directory holds a newer container than our view."""
        newest = self._chain[-1].user_block.patch_index if self._chain else -1
        own = self._patch_ref.path if self._patch_ref is not None else None
        for path in discover_containers(self._directory, self._require_name()):
            parsed = parse_container_name(path.name)
            if parsed is not None and parsed[1] > newest and path != own:
                raise ConflictError(
                    f"record {self._record_label} has a newer container {path.name} than this "
                    "writer has seen; reopen the record and retry",
                    path,
                )

    def create_patch(self) -> None:
        """Start a new change set on top of the newest committed container."""
        if self._mode == "r":
            self._require_writer()
        if self._writer is not None:
            raise RecordModeError(f"record {self._record_label} already has an open patch")
        if not self._chain:
            raise RecordNotFoundError(f"record {self._record_label} has no committed base yet")
        self._check_newest_on_disk()
        self._create_container(IH5UserBlock.create(self._chain[-1].user_block))

    def _finalize_user_block(self, user_block: IH5UserBlock, final: Path) -> IH5UserBlock:
        """Hook run after hashing, before the user block of ``final`` is sealed (for manifests)."""
        return user_block

    def commit_patch(self) -> None:
        """Hash the open container, seal its user block and make it visible under its name."""
        writer = self._require_writer()
        assert self._patch_ref is not None
        self._check_newest_on_disk()
        writer.file.close()
        path = self._patch_ref.path
        user_block = self._patch_ref.user_block.model_copy(
            update={"hdf5_hashsum": hashsum_container(path)}
        )
        final = self._directory / container_name(self._require_name(), _file_index(user_block))
        user_block = self._finalize_user_block(user_block, final)
        write_user_block(path, user_block)
        try:
            if path != final:
                if final.exists():
                    raise ConflictError(
                        f"{final} appeared while committing; reopen the record and retry", final
                    )
                replace_file(path, final)
            else:
                fsync_directory(self._directory)
        finally:
            # Renamed means committed, even if making the rename durable failed: the
            # record goes on from it (closing must not suspend a file that is gone),
            # and that error still reaches the caller.
            if path == final or not path.exists():
                self._chain.append(ContainerRef(final, user_block, self._patch_ref.block_size))
                self._writer = None
                self._patch_ref = None

    def _suspend_patch(self) -> None:
        """Close the open container uncommitted, for a later writer to resume."""
        assert self._writer is not None and self._patch_ref is not None
        self._writer.file.close()
        path = self._patch_ref.path
        if path.name.endswith(WRITING_SUFFIX):
            os.replace(path, path.with_name(path.name[: -len(WRITING_SUFFIX)] + PENDING_SUFFIX))
            fsync_directory(self._directory)
        self._writer = None
        self._patch_ref = None

    def discard_patch(self) -> None:
        """Throw the open container away; the overlay returns to the last committed state."""
        writer = self._require_writer()
        assert self._patch_ref is not None
        path = self._patch_ref.path
        # Forget the patch first: should closing or removing its file fail, closing the
        # record must not suspend the discarded changes for the next writer to resume.
        # A ".writing" file left behind is dropped by the next writer.
        self._writer = None
        self._patch_ref = None
        self._root = build_tree(self._chain)
        try:
            writer.file.close()
        finally:
            path.unlink()
        fsync_directory(self._directory)

    # --- reading --------------------------------------------------------------

    def _resolve(self, path: str) -> Node:
        node = self._root
        for name in split_path(path):
            child = node.members().get(name)
            if child is None:
                raise NodeNotFoundError(
                    f"no object at {path!r} in record {self._record_label}", path
                )
            node = child
        return node

    def _data_file(self, index: int, path: str) -> h5py.File:
        """The file holding data written by container ``index``; refuses stub placeholders."""
        first = self._chain[0] if self._chain else None
        if (
            first is not None
            and index == first.user_block.patch_index
            and is_stub_container(first.user_block.ub_exts)
        ):
            raise StubError(
                f"{path!r} is a placeholder of the stub {first.path}: its data is "
                "not here; replace or delete it, or work on the real record",
                path,
            )
        return self._h5(index)

    def _h5(self, index: int) -> h5py.File:
        if self._writer is not None and index == self._writer.index:
            return self._writer.file
        file = self._files.get(index)
        if file is None:
            ref = next(r for r in self._chain if r.user_block.patch_index == index)
            file = self._files[index] = open_container(ref.path)
        return file

    @property
    def user_block(self) -> IH5UserBlock:
        """The user block of the newest committed container."""
        if not self._chain:
            raise RecordNotFoundError(f"record {self._record_label} has no committed container")
        return self._chain[-1].user_block

    @property
    def containers(self) -> list[Path]:
        """The committed container files, oldest first."""
        return [ref.path for ref in self._chain]

    def history(self) -> list[ContainerInfo]:
        """One entry per committed container: index, uuid, hashsum, size and files."""
        entries = []
        for ref in self._chain:
            manifest = ref.path.with_name(ref.path.name + "mf.json")
            files = (ref.path, manifest) if manifest.exists() else (ref.path,)
            assert ref.user_block.hdf5_hashsum is not None
            entries.append(
                ContainerInfo(
                    ref.user_block.patch_index,
                    str(ref.user_block.patch_uuid),
                    ref.user_block.hdf5_hashsum,
                    ref.path.stat().st_size,
                    files,
                )
            )
        return entries

    def verify(self, progress: Progress | None = None) -> None:
        """Re-hash every committed container; raise IntegrityError on the first mismatch."""
        check_hashsums(self._chain, progress)

    def merge_files(self, target: str | os.PathLike[str]) -> Path:
        """Write the current committed state into one new base container at ``target``."""
        from ih5.record.merge import merge_record

        return merge_record(self, Path(target))

    # --- closing --------------------------------------------------------------

    def _release(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()
        self._stack.close()

    def close(self, commit: bool = True) -> None:
        """Commit (or keep uncommitted, ``commit=False``) an open patch, then release all."""
        if self._closed:
            return
        try:
            if self._writer is not None:
                if commit:
                    self.commit_patch()
                else:
                    self._suspend_patch()
        finally:
            self._closed = True
            self._release()

    def __enter__(self: RecordT) -> RecordT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(commit=exc is None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"mode {self._mode!r}"
        return f"<IH5Record {self._record_label} ({len(self._chain)} containers, {state})>"
