"""The commit protocol: how every writer stages, seals and publishes a container.

One module for every writer (record commit, manifest-backed commit, merge,
stub creation, pack, pack on a stub), so that the order is written once
(docs/FORMAT.md, "Writing"):

1. Stage the container under a name unique to the writer
   (``.NAME.pK.ih5.HOST-PID-TOKEN.writing``): no other writer takes, resumes
   or deletes it while its writer lives.
2. Seal: hash the payload; stage the manifest (if any) under the writer's
   name (``.NAME.pK.ih5mf.json.HOST-PID-TOKEN.staged``); write the user block
   with the hashsum (and the manifest's hashsum); fsync.
3. Publish the container under its final name if absent (create-if-absent:
   a hard link on a local directory), then its manifest if absent.

A reader therefore never sees a manifest whose container is not published;
a container published without its manifest (a writer killed between the two
steps) is completed from the staged manifest by the next reader or writer.
A sealed container of a dead writer is rolled forward; an unsealed one holds
an unknown part of a change set and is dropped. Two writers can never both
publish index K, whatever the lock does: the loser gets ConflictError.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ih5.errors import ConflictError, NotAnIH5ContainerError
from ih5.format import (
    MANIFEST_SUFFIX,
    ContainerRef,
    IH5UserBlock,
    container_name,
    encode_user_block,
    hashsum_container,
    manifest_name,
    named_manifest_hashsum,
    parse_container_name,
    read_user_block_with_size,
    write_user_block,
)
from ih5.fs import hashsum_bytes, parse_hashsum, pid_alive, write_new_file
from ih5.store import ObjectStore, Store

WRITING = "writing"
"""A container its writer has open (or has sealed and is publishing)."""
PENDING = "pending"
"""A container its writer closed uncommitted on purpose: any later writer may resume it."""
STAGED = "staged"
"""A sealed container's manifest, waiting to be published after its container."""
RETIRING = "retiring"
"""A published manifest a truncating writer took down before removing its container."""

_STAGED_NAME = re.compile(
    r"\.(?P<target>[A-Za-z0-9-]+(?:\.p[1-9][0-9]*)?\.ih5(?:mf\.json)?)"
    r"(?:\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>[0-9]+)-(?P<token>[0-9a-f]{8}))?"
    r"\.(?P<state>writing|pending|staged|retiring)"
)
"""Staged file names; names without the writer part are those of ih5 0.1's writers."""

_log = logging.getLogger("ih5")

Sidecar = Callable[[IH5UserBlock], tuple[IH5UserBlock, bytes]]
"""Given the hashed user block, return the sealed one and the manifest bytes it names."""


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


_LIVE: set[str] = set()
"""Names of the staging files this process's writers are using right now."""


def _forget_live_after_fork() -> None:
    _LIVE.clear()


os.register_at_fork(after_in_child=_forget_live_after_fork)


@dataclass(frozen=True)
class StagedFile:
    """A staged file of some writer, parsed from its name."""

    name: str
    target: str
    state: str
    host: str | None
    pid: int | None
    token: str | None

    @property
    def writer(self) -> str | None:
        """The writer part of the name (``HOST-PID-TOKEN``), None for old writers' names."""
        return None if self.token is None else f"{self.host}-{self.pid}-{self.token}"

    def owner_alive(self, holding_lock: bool) -> bool:
        """Tell whether the writer that staged this file may still be at work.

        A writer on another host cannot be checked, so it counts as alive; an
        old writer's name carries no pid, so it counts as dead only under the lock.
        """
        if self.pid is None:
            return not holding_lock
        if self.host != _host():
            return True
        if self.pid == os.getpid():
            return self.name in _LIVE
        return pid_alive(self.pid)


def parse_staged_name(name: str) -> StagedFile | None:
    """Parse a staged file name; None for any other name."""
    match = _STAGED_NAME.fullmatch(name)
    if match is None:
        return None
    pid = match["pid"]
    return StagedFile(
        name,
        match["target"],
        match["state"],
        match["host"],
        int(pid) if pid is not None else None,
        match["token"],
    )


@dataclass(frozen=True)
class Sealed:
    """A sealed, not yet published container and its staged manifest."""

    path: Path
    user_block: IH5UserBlock
    block_size: int
    final: str
    manifest: Path | None


class CommitProtocol:
    """Stage, seal, publish and recover the containers of record ``name`` in ``store``."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.writer = f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}"

    # --- names ------------------------------------------------------------

    def final_name(self, index: int) -> str:
        """The published name of the container with file index ``index``."""
        return container_name(self.name, index)

    def staging_path(self, index: int, state: str = WRITING) -> Path:
        """This writer's staging file for the container with file index ``index``."""
        return self.store.staging_dir / f".{self.final_name(index)}.{self.writer}.{state}"

    def staged_manifest_path(self, final: str) -> Path:
        """This writer's staging name for the manifest of container ``final``."""
        return self.store.staging_dir / f".{manifest_name(final)}.{self.writer}.{STAGED}"

    def _own_names(self, path: Path) -> set[str]:
        """Our staging file ``path`` and, for an open container, its manifest's staging name."""
        staged = parse_staged_name(path.name)
        if staged is None or staged.state != WRITING:
            return {path.name}
        return {path.name, self.staged_manifest_path(staged.target).name}

    def claim(self, path: Path) -> None:
        """Mark our staging file ``path`` as in use (a finished writer calls ``release``)."""
        _LIVE.update(self._own_names(path))

    def release(self, path: Path) -> None:
        """Our staging file ``path`` is published, suspended or dropped."""
        _LIVE.difference_update(self._own_names(path))

    def staged_files(self) -> list[StagedFile]:
        """Every staged file of this record, of any writer."""
        found = []
        for name in self.store.names():
            staged = parse_staged_name(name)
            if staged is None:
                continue
            parsed = parse_container_name(staged.target.removesuffix(MANIFEST_SUFFIX))
            if parsed is not None and parsed[0] == self.name:
                found.append(staged)
        return sorted(found, key=lambda staged: staged.name)

    # --- a writer's own staging file ----------------------------------------

    def take(self, path: Path, index: int) -> Path | None:
        """Move a resumable container (suspended, or uncommitted by another tool) to our name.

        A rename is atomic: when two writers race for one file, one of them gets it
        and the other None.
        """
        target = self.staging_path(index)
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        self.store.sync()
        return target

    def suspend(self, path: Path) -> Path:
        """Keep our closed, uncommitted staging file for a later writer to resume."""
        target = path.with_name(path.name.removesuffix(f".{WRITING}") + f".{PENDING}")
        os.replace(path, target)
        self.store.sync()
        return target

    def drop(self, path: Path) -> None:
        """Remove our staging file (a discarded change set)."""
        path.unlink(missing_ok=True)
        self.store.sync()

    # --- sealing and publishing ---------------------------------------------

    def seal(
        self,
        path: Path,
        user_block: IH5UserBlock,
        block_size: int,
        final_index: int,
        sidecar: Sidecar | None = None,
    ) -> Sealed:
        """Hash the closed container at ``path``, stage its manifest, seal its user block."""
        final = self.final_name(final_index)
        return seal_container(
            path, user_block, block_size, final, sidecar, self.staged_manifest_path(final)
        )

    def unseal(self, sealed: Sealed, user_block: IH5UserBlock) -> None:
        """Undo a seal whose publishing was refused, so that its writer can go on or discard."""
        if sealed.manifest is not None:
            sealed.manifest.unlink(missing_ok=True)
        write_user_block(sealed.path, user_block)

    def check_free(self, final: str) -> None:
        """Refuse to publish ``final`` when it, or a manifest claiming it, is already there."""
        if self.store.exists(final):
            raise _taken(self.store, final)
        orphan = manifest_name(final)
        if self.store.exists(orphan):
            raise ConflictError(
                f"{self.store.describe(orphan)} exists without its container {final}: it is a "
                "stray (run 'ih5 verify' on the record) and nothing is published over it; "
                "move it away and retry",
                self.store.describe(orphan),
            )

    def publish(self, sealed: Sealed) -> ContainerRef:
        """Publish the container if absent, then its manifest; ConflictError if taken."""
        self.check_free(sealed.final)
        return publish_container(self.store, sealed)

    def replace_published(self, sealed: Sealed, old: Sequence[str]) -> ContainerRef:
        """Truncate (mode ``w``): remove the ``old`` published files, then put ``sealed`` there.

        Patches go newest first, each manifest retired before its container is removed
        (see ``_retire``), so that at any crash the location holds a prefix of the old
        record or the new one and no manifest without its container; then the
        base is replaced in one atomic step, then its manifest (a new plain base drops
        the old manifest first: the old base alone still opens as a plain record).
        """
        manifest = manifest_name(sealed.final)
        try:
            for name in sorted(old, key=_newest_first):
                if name not in (sealed.final, manifest):
                    self._retire(name)
            if sealed.manifest is None:
                self.store.remove(manifest)
            self.store.sync()
            self.drop_retired()
        finally:
            # Retiring files left by a failure are the next opening's to recover.
            _LIVE.difference_update(
                n for n in list(_LIVE) if n.endswith(f".{self.writer}.{RETIRING}")
            )
        os.replace(sealed.path, self.store.local_path(sealed.final))
        self.store.sync()
        if sealed.manifest is not None:
            try:
                os.replace(sealed.manifest, self.store.local_path(manifest))
                self.store.sync()
            except OSError as exc:
                _log.warning(
                    "replaced %s, but not yet its manifest (%s); the next opening completes it",
                    self.store.describe(sealed.final),
                    exc,
                )
        path = self.store.local_path(sealed.final)
        return ContainerRef(path, sealed.user_block, sealed.block_size)

    def _retire(self, name: str) -> None:
        """Remove one old published file for a truncation.

        A patch's manifest is first moved to a retiring name of ours, so that a crash
        never leaves a manifest without its container: while the container is still
        there, the next opening puts the manifest back (a dead writer's retiring file
        completes it as a staged one does); once it is gone, the retiring file is dropped.
        """
        if not name.endswith(MANIFEST_SUFFIX):
            self.store.remove(name)
            return
        retiring = self.store.staging_dir / f".{name}.{self.writer}.{RETIRING}"
        try:
            os.replace(self.store.local_path(name), retiring)
        except FileNotFoundError:
            return
        _LIVE.add(retiring.name)
        self.store.sync()

    def drop_retired(self) -> None:
        """Remove this writer's retiring manifests once their containers are gone."""
        for staged in self.staged_files():
            if staged.state == RETIRING and staged.writer == self.writer:
                (self.store.staging_dir / staged.name).unlink(missing_ok=True)

    # --- recovery -------------------------------------------------------------

    def complete_manifest(self, ref: ContainerRef) -> bool:
        """Publish the staged manifest of a published container that lacks its manifest.

        A manifest already in place that does not match is replaced only by a staged
        one that does (left by a truncation killed half-way).
        """
        expected = named_manifest_hashsum(ref.user_block.ub_exts)
        if expected is None:
            return False
        name = manifest_name(ref.path.name)
        candidates = [
            staged
            for staged in self.staged_files()
            if staged.target == name
            and (
                staged.state == STAGED
                or (staged.state == RETIRING and not staged.owner_alive(holding_lock=False))
            )
        ]
        if not candidates:
            return False
        current = _read_or_none(self.store, name)
        if current is not None and _matches(current, expected):
            return False
        for staged in candidates:
            path = self.store.staging_dir / staged.name
            raw = _read_path_or_none(path)
            if raw is None or not _matches(raw, expected):
                continue
            if current is None:
                _publish_manifest(self.store, path, name)
            else:
                os.replace(path, self.store.local_path(name))
                self.store.sync()
            return True
        return False

    def roll_forward(self, newest: IH5UserBlock | None, holding_lock: bool) -> ContainerRef | None:
        """Publish a dead writer's sealed container that follows ``newest``; drop dead leftovers.

        Return the published container, or None when there was none to publish.
        """
        next_index = 0 if newest is None else newest.patch_index + 1
        published: ContainerRef | None = None
        for staged in self.staged_files():
            if staged.state != WRITING or staged.owner_alive(holding_lock):
                continue
            path = self.store.staging_dir / staged.name
            sealed = None if published is not None else _sealed(path, newest)
            if sealed is not None and file_index(sealed[0]) == next_index:
                final = self.final_name(next_index)
                manifest = self._dead_writers_manifest(staged, final, sealed[0])
                if not self.store.exists(final) and not self.store.exists(manifest_name(final)):
                    published = self.publish(Sealed(path, sealed[0], sealed[1], final, manifest))
                    continue
            path.unlink(missing_ok=True)
        self.drop_dead_staged_manifests(holding_lock)
        return published

    def drop_dead_staged_manifests(self, holding_lock: bool) -> None:
        """Remove dead writers' staged manifests that nothing needs any more: their container
        was never published, or their manifest is published already (a leftover link)."""
        removed = False
        files = self.staged_files()
        sealing = {(f.target, f.writer) for f in files if f.state == WRITING}
        for staged in files:
            if staged.state not in (STAGED, RETIRING) or staged.owner_alive(holding_lock):
                continue
            container = staged.target.removesuffix(MANIFEST_SUFFIX)
            if (container, staged.writer) in sealing:
                continue  # its container may still be rolled forward
            path = self.store.staging_dir / staged.name
            if self._still_needed(container, staged.target, path):
                continue  # to be completed by the next opening of its record
            path.unlink(missing_ok=True)
            removed = True
        if removed:
            self.store.sync()

    def _still_needed(self, container: str, name: str, staged: Path) -> bool:
        """Tell whether ``staged`` is the manifest a published ``container`` names but lacks."""
        try:
            user_block, _ = read_user_block_with_size(self.store.local_path(container))
        except (NotAnIH5ContainerError, OSError):
            return False
        expected = named_manifest_hashsum(user_block.ub_exts)
        raw = _read_path_or_none(staged)
        if expected is None or raw is None or not _matches(raw, expected):
            return False
        published = _read_or_none(self.store, name)
        return published is None or not _matches(published, expected)

    def _dead_writers_manifest(
        self, staged: StagedFile, final: str, user_block: IH5UserBlock
    ) -> Path | None:
        expected = named_manifest_hashsum(user_block.ub_exts)
        if expected is None:
            return None
        suffix = f".{staged.writer}.{STAGED}" if staged.writer else f".{STAGED}"
        path = self.store.staging_dir / f".{manifest_name(final)}{suffix}"
        raw = _read_path_or_none(path)
        return path if raw is not None and _matches(raw, expected) else None

    def suspended(self, index: int) -> list[Path]:
        """Suspended containers with file index ``index`` (any writer's), oldest name first."""
        final = self.final_name(index)
        return [
            self.store.staging_dir / staged.name
            for staged in self.staged_files()
            if staged.state == PENDING and staged.target == final
        ]


def seal_container(
    path: Path,
    user_block: IH5UserBlock,
    block_size: int,
    final: str,
    sidecar: Sidecar | None,
    manifest_staging: Path,
) -> Sealed:
    """Hash the closed container at ``path``; stage its manifest; write the sealed user block."""
    hashed = user_block.model_copy(update={"hdf5_hashsum": hashsum_container(path)})
    manifest: Path | None = None
    if sidecar is not None:
        hashed, raw = sidecar(hashed)
        # The manifest extension lengthens the block: refuse an oversized one first.
        encode_user_block(hashed, block_size)
        manifest = manifest_staging
        # The name is this writer's own: created in place, no rename needed.
        write_new_file(manifest, raw)
    try:
        write_user_block(path, hashed)
    except BaseException:
        if manifest is not None:
            manifest.unlink(missing_ok=True)
        raise
    return Sealed(path, hashed, block_size, final, manifest)


def publish_container(store: Store, sealed: Sealed) -> ContainerRef:
    """Publish a sealed container under its final name if absent, then its manifest.

    ConflictError when the name is taken: nothing is replaced, and the sealed file
    stays where it was for its writer.
    """
    if not store.publish(sealed.path, sealed.final):
        raise _taken(store, sealed.final)
    store.sync()
    if sealed.manifest is not None:
        try:
            _publish_manifest(store, sealed.manifest, manifest_name(sealed.final))
        except OSError as exc:
            # The commit is published: its staged manifest completes it on the next opening.
            _log.warning(
                "published %s, but not yet its manifest (%s); the next opening completes it",
                store.describe(sealed.final),
                exc,
            )
    if isinstance(store, ObjectStore):
        # A remote container is read through its store; its path is its name there.
        return ContainerRef(Path(sealed.final), sealed.user_block, sealed.block_size, store)
    return ContainerRef(store.local_path(sealed.final), sealed.user_block, sealed.block_size)


def _taken(store: Store, final: str) -> ConflictError:
    return ConflictError(
        f"{store.describe(final)} was published by another writer meanwhile; "
        "reopen the record and retry",
        store.describe(final),
    )


def _publish_manifest(store: Store, staged: Path, name: str) -> None:
    if not store.publish(staged, name):
        # Another reader or writer completed it from our staged file (same bytes).
        with contextlib.suppress(OSError):
            staged.unlink()
    store.sync()


def file_index(user_block: IH5UserBlock) -> int:
    """The index in a container's file name: 0 for the first of a chain (base or stub)."""
    return 0 if user_block.prev_patch is None else user_block.patch_index


def _newest_first(name: str) -> tuple[int, int]:
    parsed = parse_container_name(name.removesuffix(MANIFEST_SUFFIX))
    index = parsed[1] if parsed is not None else 0
    # A manifest before its container.
    return (-index, 0 if name.endswith(MANIFEST_SUFFIX) else 1)


def _sealed(path: Path, newest: IH5UserBlock | None) -> tuple[IH5UserBlock, int] | None:
    """The user block and block size of a sealed container following ``newest``, else None."""
    try:
        user_block, size = read_user_block_with_size(path)
        expected = user_block.hdf5_hashsum
        if expected is None:
            return None
        if user_block.prev_patch != (newest.patch_uuid if newest else None):
            return None
        algorithm, _ = parse_hashsum(expected)
        if hashsum_container(path, algorithm) != expected:
            return None
    except (NotAnIH5ContainerError, FileNotFoundError):
        return None
    return user_block, size


def _matches(raw: bytes, expected: str) -> bool:
    algorithm, _ = parse_hashsum(expected)
    return hashsum_bytes(raw, algorithm) == expected


def _read_or_none(store: Store, name: str) -> bytes | None:
    try:
        return store.read_bytes(name)
    except (FileNotFoundError, IsADirectoryError):
        return None


def _read_path_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
