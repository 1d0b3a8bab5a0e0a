"""Checking that containers form one record's chain (FORMAT.md section 3).

Order comes from the user blocks, never from file names; a broken chain is
refused with an error naming the files involved.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO, Protocol
from uuid import UUID

from ih5.errors import (
    ChainError,
    IntegrityError,
    MixedRecordsError,
    NotAnIH5ContainerError,
    RecordNotFoundError,
)
from ih5.format._extensions import is_stub_container
from ih5.format._knownblocks import KnownUserBlocks
from ih5.format._userblock import IH5UserBlock, read_user_block_with_size
from ih5.fs import Progress, StatMemo, VerifiedHashsums, hashsum_file, hashsum_stream, parse_hashsum


class ContainerSource(Protocol):
    """Where a remote container's bytes come from (a store, which satisfies this)."""

    def describe(self, name: str) -> str: ...

    def open_binary(self, name: str) -> BinaryIO: ...

    def size(self, name: str) -> int: ...

    def exists(self, name: str) -> bool: ...

    def read_bytes(self, name: str) -> bytes: ...


@dataclass(frozen=True)
class ContainerRef:
    """A container file with its parsed user block and that block's size.

    A remote container has a ``source``; its ``path`` then holds only its file name.
    """

    path: Path
    user_block: IH5UserBlock
    block_size: int
    source: ContainerSource | None = field(default=None, compare=False)
    state: str | None = field(default=None, compare=False)
    """The local file's stat key when its user block was read (``ih5.fs.stat_key``)."""

    @property
    def label(self) -> str:
        """The container's path or URL, for messages."""
        return self.source.describe(self.path.name) if self.source else str(self.path)

    def open(self) -> BinaryIO:
        """A binary reader of the container's bytes (remote ones fetch what is read)."""
        return self.source.open_binary(self.path.name) if self.source else open(self.path, "rb")


USER_BLOCKS: StatMemo[tuple[IH5UserBlock, int]] = StatMemo()
"""The user blocks this process parsed, kept while their files are unchanged: reopening
a record of N containers parses only those that are new or changed."""


def load_refs(paths: Iterable[str | os.PathLike[str]]) -> list[ContainerRef]:
    """Read the user block of each container file (NotAnIH5ContainerError on a bad one).

    Blocks this process, or through the per-user cache an earlier one, read from a
    file unchanged since are not read again.
    """
    files = [path if isinstance(path, Path) else Path(path) for path in paths]
    if not files:
        return []
    known = KnownUserBlocks(files[0]) if len(files) >= KNOWN_FROM else None
    refs = []
    for path in files:
        try:
            read = partial(known.read if known else _read_user_block, path)
            (user_block, block_size), state = USER_BLOCKS.get_keyed(path, read)
        except FileNotFoundError as exc:
            raise RecordNotFoundError(f"container {path} does not exist", path) from exc
        except IsADirectoryError as exc:
            raise NotAnIH5ContainerError(
                f"{path} is a directory, not an IH5 container; pass container files", path
            ) from exc
        refs.append(ContainerRef(path, user_block, block_size, state=state))
    if known is not None:
        known.save()
    return refs


KNOWN_FROM = 8
"""Records of this many containers or more keep their user blocks in the per-user cache:
for fewer, reading the blocks costs no more than reading (and writing) a cache entry."""


def _read_user_block(path: Path, info: os.stat_result, taken: int) -> tuple[IH5UserBlock, int]:
    return read_user_block_with_size(path)


def _check_records(chain: list[ContainerRef]) -> None:
    base = chain[0]
    for ref in chain[1:]:
        if ref.user_block.record_uuid != base.user_block.record_uuid:
            raise MixedRecordsError(
                f"{ref.label} belongs to record {ref.user_block.record_uuid}, but {base.label} "
                f"to record {base.user_block.record_uuid}; pass the containers of one record only",
                ref.label,
            )


def _check_unique(chain: list[ContainerRef]) -> None:
    seen: dict[UUID, ContainerRef] = {}
    for ref in chain:
        other = seen.setdefault(ref.user_block.patch_uuid, ref)
        if other is not ref:
            raise ChainError(
                f"{other.label} and {ref.label} share patch_uuid {ref.user_block.patch_uuid}; "
                "one is a copy of the other: keep only one of them",
                ref.label,
            )
    for prev, ref in pairwise(chain):
        if ref.user_block.patch_index == prev.user_block.patch_index:
            raise ChainError(
                f"{prev.label} and {ref.label} both have patch_index "
                f"{ref.user_block.patch_index}; "
                "keep only one of them (a merged or stub container replaces the chain it "
                "was made from)",
                ref.label,
            )


def _check_links(chain: list[ContainerRef]) -> None:
    first = chain[0]
    if first.user_block.prev_patch is not None:
        raise ChainError(
            f"{first.label} (patch_index {first.user_block.patch_index}) follows patch "
            f"{first.user_block.prev_patch}, which was not given; pass the whole chain "
            "from its base container",
            first.label,
        )
    for prev, ref in pairwise(chain):
        ub, prev_ub = ref.user_block, prev.user_block
        if ub.prev_patch is None:
            raise ChainError(
                f"{ref.label} is a base container (no prev_patch) but comes after "
                f"{prev.label}; "
                "a record has exactly one base: move the extra base away",
                ref.label,
            )
        if ub.patch_index != prev_ub.patch_index + 1:
            raise ChainError(
                f"patch_index {prev_ub.patch_index + 1} is missing between {prev.label} and "
                f"{ref.label}; restore the missing container",
                ref.label,
            )
        if ub.prev_patch != prev_ub.patch_uuid:
            raise ChainError(
                f"{ref.label} follows patch {ub.prev_patch}, but its predecessor {prev.label} "
                f"is patch {prev_ub.patch_uuid}; they belong to different branches of the "
                "record: keep the containers of one branch only",
                ref.label,
            )


def _check_committed(chain: list[ContainerRef]) -> None:
    for ref in chain[:-1]:
        if ref.user_block.hdf5_hashsum is None:
            raise ChainError(
                f"{ref.label} is uncommitted (no hdf5_hashsum) but newer containers "
                "follow it; "
                "only the newest container may be uncommitted: remove the newer ones or "
                "this one",
                ref.label,
            )


def _check_stubs(chain: list[ContainerRef]) -> None:
    for ref in chain[1:]:
        if is_stub_container(ref.user_block.ub_exts):
            raise ChainError(
                f"{ref.label} is a stub but not the first container of the chain; a stub can "
                "only be a base: remove it from the files given",
                ref.label,
            )


def check_hashsums(
    chain: Sequence[ContainerRef],
    progress: Progress | None = None,
    *,
    trust_unchanged: bool = False,
) -> None:
    """Re-hash every committed container; raise IntegrityError on the first mismatch.

    With ``trust_unchanged``, a container unchanged since it was last verified (same
    identity and stat, see ``ih5.fs._verified``) is not hashed again.
    """
    known = None
    if trust_unchanged and chain:
        known = VerifiedHashsums(str(chain[0].user_block.record_uuid))
    try:
        for ref in chain:
            _check_hashsum(ref, known, progress)
    finally:
        if known is not None:
            known.save()


def _check_hashsum(
    ref: ContainerRef, known: VerifiedHashsums | None, progress: Progress | None
) -> None:
    expected = ref.user_block.hdf5_hashsum
    if expected is None:
        return
    local = ref.source is None
    if (
        local
        and known is not None
        and known.is_verified(ref.path, ref.block_size, expected, ref.state)
    ):
        return
    algorithm, _ = parse_hashsum(expected)
    if ref.source is not None:
        # A remote container is streamed once; the verified cache knows local files only.
        with ref.open() as stream:
            stream.seek(ref.block_size)
            actual = hashsum_stream(stream, algorithm, progress)  # type: ignore[arg-type]
    elif known is None:
        actual = hashsum_file(ref.path, algorithm, skip=ref.block_size, progress=progress)
    else:
        actual = known.hash(ref.path, algorithm, ref.block_size, progress)
    if actual != expected:
        raise IntegrityError(
            f"{ref.label} is damaged: its payload hashes to {actual} but its user block "
            f"says {expected}; restore the file from a backup or a copy",
            ref.label,
        )


def validate_chain(
    refs: Sequence[ContainerRef],
    *,
    verify_hashsums: bool = True,
    progress: Progress | None = None,
    trust_unchanged: bool = False,
) -> list[ContainerRef]:
    """Check that ``refs`` form one record's chain; return them ordered by patch_index.

    ``progress`` is called with the number of bytes hashed as hashsums are verified;
    ``trust_unchanged`` skips containers verified before and unchanged since.
    """
    if not refs:
        raise RecordNotFoundError(
            "no IH5 containers were found or given; check the record's directory and name"
        )
    chain = sorted(refs, key=lambda ref: ref.user_block.patch_index)
    _check_records(chain)
    _check_unique(chain)
    _check_links(chain)
    _check_committed(chain)
    _check_stubs(chain)
    if verify_hashsums:
        check_hashsums(chain, progress, trust_unchanged=trust_unchanged)
    return chain


def split_uncommitted(
    refs: Sequence[ContainerRef],
) -> tuple[list[ContainerRef], ContainerRef | None]:
    """Split a validated chain into its committed containers and a trailing uncommitted one."""
    if refs and refs[-1].user_block.hdf5_hashsum is None:
        return list(refs[:-1]), refs[-1]
    return list(refs), None
