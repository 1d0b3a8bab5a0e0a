"""The state of every file of a record (ok, damaged, missing, stray) and rebuilding manifests.

``check_record`` never stops at the first problem: it reads each container's
user block, walks the chain, re-hashes the payloads (``verify=True``), checks
each named manifest against its container and lists strays, so that one
report says everything that is wrong. ``rebuild_manifests`` recreates a
missing or damaged manifest from the containers, and publishes it only when
its bytes are exactly the ones the container's user block names.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ih5.errors import (
    ManifestError,
    NotAnIH5ContainerError,
    RecordNotFoundError,
    StrayFileWarning,
)
from ih5.format import (
    MANIFEST_EXT,
    ContainerRef,
    container_name,
    discover_containers,
    parse_container_name,
    read_user_block_with_size,
    split_record_path,
)
from ih5.fs import Progress, atomic_write_bytes, hashsum_bytes, hashsum_file, parse_hashsum
from ih5.manifest._manifest import IH5Manifest, IH5UBExtManifest, check_manifest
from ih5.manifest._sidecar import manifest_path, without_manifest_ext
from ih5.manifest._skeleton import IH5Skeleton
from ih5.record import CommitProtocol, IH5Record, find_strays
from ih5.store import LocalStore

Status = Literal["ok", "damaged", "missing", "stray", "uncommitted"]
ExtsCandidates = Callable[[IH5Record], Iterable[dict[str, Any]]]
"""Given the record at one state, the ``manifest_exts`` its manifest may have carried."""


@dataclass(frozen=True)
class ManifestHealth:
    """The manifest a container names: ok, missing, or damaged (does not match)."""

    path: Path
    status: Literal["ok", "damaged", "missing"]
    reason: str = ""


@dataclass(frozen=True)
class ContainerHealth:
    """One file of the record (or one that should be there), with what is wrong with it."""

    path: Path
    status: Status
    reason: str = ""
    index: int | None = None
    """Patch index from the user block (from the file name where the block is unreadable)."""
    patch_uuid: str | None = None
    hashsum: str | None = None
    size: int | None = None
    hashed: bool = False
    """True when the payload was re-hashed; False when only the user block was read."""
    manifest: ManifestHealth | None = None
    """The manifest the container names (None for a plain container)."""

    @property
    def ok(self) -> bool:
        """True for a sound container with a sound manifest (or none)."""
        return self.status in ("ok", "uncommitted") and (
            self.manifest is None or self.manifest.status == "ok"
        )


@dataclass(frozen=True)
class RecordHealth:
    """Every container of one record, in chain order, then the strays."""

    location: Path
    containers: list[ContainerHealth] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is damaged, missing or stray."""
        return all(entry.ok for entry in self.containers)

    @property
    def problems(self) -> list[ContainerHealth]:
        """The entries that are not ok."""
        return [entry for entry in self.containers if not entry.ok]

    @property
    def newest_sound(self) -> int | None:
        """The newest patch index up to which every container is sound (None if none is)."""
        sound = None
        for entry in self.containers:
            if entry.status == "stray":
                continue
            if entry.status not in ("ok", "uncommitted") or entry.index is None:
                break
            sound = entry.index
        return sound


@dataclass(frozen=True)
class RebuiltManifest:
    """What ``rebuild_manifests`` did for one container."""

    container: Path
    manifest: Path
    rebuilt: bool
    reason: str
    set_aside: Path | None = None
    """Where the damaged manifest was moved before the rebuilt one took its name."""


def _read(path: Path) -> ContainerHealth | ContainerRef:
    try:
        user_block, block_size = read_user_block_with_size(path)
    except (NotAnIH5ContainerError, ValueError, OSError) as exc:
        parsed = parse_container_name(path.name)
        return ContainerHealth(
            path,
            "damaged",
            f"its user block cannot be read ({exc})",
            index=parsed[1] if parsed else None,
            size=_size(path),
        )
    return ContainerRef(path, user_block, block_size)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _manifest_health(ref: ContainerRef) -> ManifestHealth | None:
    if MANIFEST_EXT not in ref.user_block.ub_exts:
        return None  # a plain container names no manifest
    path = manifest_path(ref.path)
    try:
        check_manifest(ref.path, ref.user_block)
    except ManifestError as exc:
        status: Literal["damaged", "missing"] = (
            "missing" if not os.path.lexists(path) else "damaged"
        )
        return ManifestHealth(path, status, str(exc))
    return ManifestHealth(path, "ok")


def _hash_problem(ref: ContainerRef, progress: Progress | None) -> str:
    expected = ref.user_block.hdf5_hashsum
    assert expected is not None
    algorithm, _ = parse_hashsum(expected)
    try:
        actual = hashsum_file(ref.path, algorithm, skip=ref.block_size, progress=progress)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if actual != expected:
        return f"its payload hashes to {actual} but its user block says {expected}"
    return ""


def _entry(ref: ContainerRef, status: Status, reason: str, hashed: bool) -> ContainerHealth:
    user_block = ref.user_block
    return ContainerHealth(
        ref.path,
        status,
        reason,
        index=user_block.patch_index,
        patch_uuid=str(user_block.patch_uuid),
        hashsum=user_block.hdf5_hashsum,
        size=_size(ref.path),
        hashed=hashed,
        manifest=_manifest_health(ref) if status in ("ok", "damaged") else None,
    )


def _missing(directory: Path, name: str, index: int, why: str) -> ContainerHealth:
    return ContainerHealth(directory / container_name(name, index), "missing", why, index=index)


def _walk(
    directory: Path, name: str, refs: list[ContainerRef], verify: bool, progress: Progress | None
) -> tuple[list[ContainerHealth], list[ContainerRef]]:
    """Entries in chain order, and the refs of the chain (for strays)."""
    entries: list[ContainerHealth] = []
    chain: list[ContainerRef] = []
    refs = sorted(refs, key=lambda ref: ref.user_block.patch_index)
    base = next((ref for ref in refs if ref.user_block.prev_patch is None), None)
    record_uuid = (base or refs[0]).user_block.record_uuid
    previous: ContainerRef | None = None
    for ref in refs:
        user_block = ref.user_block
        if user_block.record_uuid != record_uuid:
            entries.append(
                _entry(
                    ref, "stray", f"it belongs to another record ({user_block.record_uuid})", False
                )
            )
            continue
        if previous is None and user_block.prev_patch is not None:
            entries.append(
                _missing(directory, name, 0, "the base is missing: nothing older is present")
            )
            entries += [
                _missing(directory, name, index, "not present")
                for index in range(1, user_block.patch_index)
            ]
        elif previous is not None:
            if user_block.prev_patch is None or user_block.patch_index == (
                previous.user_block.patch_index
            ):
                entries.append(
                    _entry(
                        ref, "stray", f"a second base or copy beside {previous.path.name}", False
                    )
                )
                continue
            entries += [
                _missing(directory, name, index, "not present")
                for index in range(previous.user_block.patch_index + 1, user_block.patch_index)
            ]
            if (
                user_block.patch_index == previous.user_block.patch_index + 1
                and user_block.prev_patch != previous.user_block.patch_uuid
            ):
                entries.append(
                    _entry(
                        ref,
                        "damaged",
                        f"it follows patch {user_block.prev_patch}, not {previous.path.name} "
                        f"({previous.user_block.patch_uuid}): a container of another branch",
                        False,
                    )
                )
                previous = ref
                continue
        previous = ref
        chain.append(ref)
        if user_block.hdf5_hashsum is None:
            entries.append(
                _entry(ref, "uncommitted", "a patch not committed yet (no hashsum)", False)
            )
            continue
        problem = _hash_problem(ref, progress) if verify else ""
        entries.append(_entry(ref, "damaged" if problem else "ok", problem, verify))
    return entries, chain


def check_record(
    record: str | os.PathLike[str], *, verify: bool = True, progress: Progress | None = None
) -> RecordHealth:
    """Report every container of ``record`` (DIR/NAME) and its manifest; raise nothing on damage.

    With ``verify=False`` only user blocks and manifests are read (fast, as ``ih5 log``).
    ``progress`` is called with the bytes hashed. RecordNotFoundError when no file of
    the record is there at all.
    """
    directory, name = split_record_path(record)
    location = directory / name
    read = [_read(path) for path in discover_containers(directory, name)]
    unreadable = [item for item in read if isinstance(item, ContainerHealth)]
    refs = [item for item in read if isinstance(item, ContainerRef)]
    entries: list[ContainerHealth] = []
    chain: list[ContainerRef] = []
    if refs:
        entries, chain = _walk(directory, name, refs, verify, progress)
    entries = sorted([*entries, *unreadable], key=lambda entry: (entry.index is None, entry.index))
    if chain:
        entries += [
            ContainerHealth(stray.path, "stray", stray.reason, index=stray.claims)
            for stray in find_strays(LocalStore(directory), name, chain)
        ]
    if not entries:
        raise RecordNotFoundError(
            f"no containers of record {location} found; check the path", location
        )
    return RecordHealth(location, entries)


def rebuild_manifests(
    record: str | os.PathLike[str], candidates: ExtsCandidates | None = None
) -> list[RebuiltManifest]:
    """Recreate every missing or damaged manifest of ``record`` from its containers.

    The skeleton and user block come from the containers; ``manifest_exts`` are
    not stored in them, so ``candidates`` proposes what they were (default: none).
    A manifest is published only when its bytes hash to what its container names,
    so a rebuilt manifest is the lost one, byte for byte; a damaged one is kept
    beside it as ``...ih5mf.json.damaged``.
    """
    health = check_record(record, verify=True)
    directory, name = split_record_path(record)
    done: list[RebuiltManifest] = []
    for entry in health.containers:
        if entry.manifest is None or entry.manifest.status == "ok":
            continue
        if entry.status != "ok":
            done.append(
                RebuiltManifest(
                    entry.path,
                    entry.manifest.path,
                    False,
                    f"the container is {entry.status} ({entry.reason}); restore it first",
                )
            )
            continue
        done.append(_rebuild_one(directory, name, entry, candidates))
    return done


def _rebuild_one(
    directory: Path, name: str, entry: ContainerHealth, candidates: ExtsCandidates | None
) -> RebuiltManifest:
    assert entry.manifest is not None and entry.index is not None
    user_block, block_size = read_user_block_with_size(entry.path)
    ext = IH5UBExtManifest.get(user_block)
    assert ext is not None
    algorithm, _ = parse_hashsum(ext.manifest_hashsum)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StrayFileWarning)  # the report lists them
        rec = IH5Record(directory / name, at=entry.index)
    with rec:
        skeleton = IH5Skeleton.for_record(rec)
        proposals = [{}, *(candidates(rec) if candidates is not None else [])]
    for exts in proposals:
        raw = IH5Manifest(
            manifest_uuid=ext.manifest_uuid,
            user_block=without_manifest_ext(user_block),
            skeleton=skeleton,
            manifest_exts=exts,
        ).to_bytes()
        if hashsum_bytes(raw, algorithm) == ext.manifest_hashsum:
            return _publish(
                directory, name, entry, ContainerRef(entry.path, user_block, block_size), raw
            )
    return RebuiltManifest(
        entry.path,
        entry.manifest.path,
        False,
        "its manifest carried extensions the containers do not hold, so it cannot be "
        "rebuilt byte for byte; restore it from a copy of the record",
    )


def _publish(
    directory: Path, name: str, entry: ContainerHealth, ref: ContainerRef, raw: bytes
) -> RebuiltManifest:
    assert entry.manifest is not None
    protocol = CommitProtocol(LocalStore(directory), name)
    target = entry.manifest.path
    set_aside = None
    if os.path.lexists(target):
        set_aside = target.with_name(target.name + ".damaged")
        counter = 1
        while os.path.lexists(set_aside):
            counter += 1
            set_aside = target.with_name(f"{target.name}.damaged-{counter}")
        os.rename(target, set_aside)
    staged = protocol.staged_manifest_path(ref.path.name)
    atomic_write_bytes(staged, raw)
    try:
        protocol.complete_manifest(ref)
    finally:
        staged.unlink(missing_ok=True)
    if not os.path.lexists(target):
        raise ManifestError(f"could not publish the rebuilt manifest {target}", target)
    return RebuiltManifest(
        entry.path, target, True, "rebuilt from the containers; matches its container", set_aside
    )
