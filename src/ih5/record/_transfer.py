"""``push`` and ``pull``: copy the containers and manifests that one side of a record lacks.

Both sides must hold the same chain as far as the shorter one goes (the same
patch uuid at every file index); the missing files are then published in chain
order, each container before its manifest, create-if-absent through the commit
protocol. Each is checked by hashsum: a local record is verified before it is
pushed, a pulled container and manifest are checked before they are published.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ih5.errors import ConflictError, IntegrityError, RemoteReadOnlyError
from ih5.format import (
    ContainerRef,
    container_name,
    discover_containers,
    hashsum_container,
    load_refs,
    manifest_name,
    named_manifest_hashsum,
    split_record_path,
    split_uncommitted,
    validate_chain,
)
from ih5.fs import Progress, hashsum_bytes, parse_hashsum
from ih5.record._commit import CommitProtocol, Sealed, file_index, publish_container
from ih5.record._opening import remote_refs
from ih5.record._record import IH5Record
from ih5.store import (
    LocalStore,
    ObjectStore,
    RemoteOptions,
    is_remote,
    local_path,
    open_store,
    split_record_url,
)


@dataclass(frozen=True)
class TransferResult:
    """What one push or pull copied."""

    source: str
    target: str
    copied: tuple[str, ...]
    """File names published on the target, in the order they were published."""
    present: int
    """Containers the target held already."""
    bytes_transferred: int
    requests: int


def _remote_store(url: str, options: RemoteOptions | None) -> tuple[ObjectStore, str]:
    if not is_remote(url):
        raise ValueError(f"{url} is not a remote URL (s3://, http://, https://)")
    location, name = split_record_url(url)
    store = open_store(location, options)
    assert isinstance(store, ObjectStore)
    return store, name


def _check_same_chain(
    source: Sequence[ContainerRef], target: Sequence[ContainerRef], where: str, other: str
) -> None:
    """Refuse when both sides hold different containers at one file index (a fork)."""
    theirs = {file_index(ref.user_block): ref for ref in target}
    for ref in source:
        found = theirs.get(file_index(ref.user_block))
        if found is not None and found.user_block.patch_uuid != ref.user_block.patch_uuid:
            raise ConflictError(
                f"{found.label} is patch {found.user_block.patch_uuid}, but {ref.label} is "
                f"patch {ref.user_block.patch_uuid}: {where} and {other} hold different "
                "histories of the record; copy neither over the other, keep them apart",
                found.label,
            )


def _stage_copy(path: Path, staged: Path) -> None:
    """Put a copy of ``path`` at ``staged`` for publishing (a hard link when possible)."""
    try:
        os.link(path, staged)
    except OSError:
        shutil.copyfile(path, staged)


def push(
    record: str | os.PathLike[str],
    url: str,
    *,
    remote: RemoteOptions | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Copy the containers and manifests of the local ``record`` (``DIR/NAME``) that the
    remote record at ``url`` lacks; ConflictError if the two histories differ."""
    store, name = _remote_store(url, remote)
    if not store.writable:
        raise RemoteReadOnlyError(
            f"{url} is read-only (HTTP); push to object storage (s3://...)", url
        )
    if progress is not None:
        sent: dict[str, int] = {}

        def report(file: str, done: int, _total: int) -> None:
            progress(done - sent.get(file, 0))
            sent[file] = done

        store.progress = report
    try:
        with IH5Record(record) as rec:  # verifies every hashsum before anything is sent
            refs = list(rec.chain.refs)
            label = str(rec.location)
        there = remote_refs(store, name)
        _check_same_chain(refs, there, label, url)
        present = {file_index(ref.user_block) for ref in there}
        names = set(store.names())
        protocol = CommitProtocol(store, name)
        copied: list[str] = []
        for ref in refs:
            index = file_index(ref.user_block)
            final = container_name(name, index)
            local_manifest = ref.path.with_name(manifest_name(ref.path.name))
            staged_manifest = None
            if local_manifest.exists() and manifest_name(final) not in names:
                staged_manifest = protocol.staged_manifest_path(final)
                _stage_copy(local_manifest, staged_manifest)
                store.upload_bytes(staged_manifest.name, staged_manifest.read_bytes())
            if index in present:
                if staged_manifest is not None:
                    # A container pushed before without its manifest (a push killed between).
                    store.publish(staged_manifest, manifest_name(final))
                    store.remove(staged_manifest.name)
                    copied.append(manifest_name(final))
                continue
            staged = protocol.staging_path(index)
            _stage_copy(ref.path, staged)
            try:
                publish_container(
                    store, Sealed(staged, ref.user_block, ref.block_size, final, staged_manifest)
                )
            finally:
                if staged_manifest is not None:
                    store.remove(staged_manifest.name)
            copied += [final] + ([manifest_name(final)] if staged_manifest is not None else [])
        return TransferResult(
            label,
            url,
            tuple(copied),
            len(present),
            store.stats.bytes_uploaded,
            store.stats.requests,
        )
    finally:
        store.close()


def _matches(raw: bytes, expected: str) -> bool:
    return hashsum_bytes(raw, parse_hashsum(expected)[0]) == expected


def pull(
    url: str,
    directory: str | os.PathLike[str],
    *,
    remote: RemoteOptions | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Copy the containers and manifests of the remote record at ``url`` that ``directory``
    lacks (the record keeps its name); ConflictError if the two histories differ."""
    store, name = _remote_store(url, remote)
    target = local_path(directory)
    target.mkdir(parents=True, exist_ok=True)
    split_record_path(target / name)
    try:
        there, _ = split_uncommitted(
            validate_chain(remote_refs(store, name), verify_hashsums=False)
        )
        here = load_refs(discover_containers(target, name))
        _check_same_chain(there, here, url, str(target / name))
        present = {file_index(ref.user_block) for ref in here}
        names = set(store.names()) if store.listable else None
        local = LocalStore(target)
        protocol = CommitProtocol(local, name)
        copied: list[str] = []
        staged_manifest: Path | None
        for ref in there:
            index = file_index(ref.user_block)
            final = container_name(name, index)
            manifest = manifest_name(final)
            has_manifest = manifest in names if names is not None else store.exists(manifest)
            if index in present:
                if has_manifest and not local.exists(manifest):
                    staged_manifest = _pull_manifest(store, protocol, ref, final)
                    local.publish(staged_manifest, manifest)
                    copied.append(manifest)
                continue
            staged = protocol.staging_path(index)
            protocol.claim(staged)
            staged_manifest = None
            try:
                store.download(ref.path.name, staged, progress)
                expected = ref.user_block.hdf5_hashsum
                assert expected is not None
                actual = hashsum_container(staged, parse_hashsum(expected)[0])
                if actual != expected:
                    raise IntegrityError(
                        f"{ref.label} downloaded with hashsum {actual}, but its user block "
                        f"says {expected}; it is damaged there (or changed while read): "
                        "nothing was published, restore it from a copy and pull again",
                        ref.label,
                    )
                if has_manifest:
                    staged_manifest = _pull_manifest(store, protocol, ref, final)
                publish_container(
                    local, Sealed(staged, ref.user_block, ref.block_size, final, staged_manifest)
                )
            except BaseException:
                for path in (staged, staged_manifest):
                    if path is not None:
                        with contextlib.suppress(OSError):
                            path.unlink()
                raise
            finally:
                protocol.release(staged)
            copied += [final] + ([manifest] if staged_manifest is not None else [])
        return TransferResult(
            url,
            str(target / name),
            tuple(copied),
            len(present),
            store.stats.bytes_downloaded,
            store.stats.requests,
        )
    finally:
        store.close()


def _pull_manifest(
    store: ObjectStore, protocol: CommitProtocol, ref: ContainerRef, final: str
) -> Path:
    """Download the manifest of ``final`` to its staging name, checked against the container."""
    raw = store.read_bytes(manifest_name(final))
    expected = named_manifest_hashsum(ref.user_block.ub_exts)
    if expected is not None and not _matches(raw, expected):
        raise IntegrityError(
            f"{store.describe(manifest_name(final))} does not match {ref.label} (the "
            "container names another manifest hashsum); nothing was published",
            store.describe(manifest_name(final)),
        )
    staged = protocol.staged_manifest_path(final)
    staged.write_bytes(raw)
    return staged
