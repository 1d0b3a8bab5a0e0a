"""Merging a record's chain into one base container, copying at the HDF5 level."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import h5py

from ih5.errors import RecordExistsError, RecordModeError, RecordNotFoundError, StubError
from ih5.format import (
    USER_BLOCK_SIZE,
    is_stub_container,
    manifest_name,
    parse_container_name,
    write_user_block,
)
from ih5.fs import sweep_stale_temp_files, temp_path_for, typed_storage_errors
from ih5.record._chain import Chain
from ih5.record._chunks import write_plain
from ih5.record._commit import CommitProtocol, Sidecar, publish_container, seal_container
from ih5.record._opening import WRITE_METADATA_BLOCK
from ih5.record._room import Room
from ih5.record._tree import walk
from ih5.store import LocalStore


def _write_tree(chain: Chain, out: h5py.File, room: Room) -> None:
    """Recreate the committed overlay in ``out``: groups, datasets (storage kept), attributes."""
    for path, node in walk(chain.root):
        if node.is_group:
            target = out if path == "/" else out.create_group(path)
        else:
            parent, name = path.rsplit("/", 1)
            if node.deltas:
                # Chunk deltas become a plain dataset again: the merged file is ih5_v01 only.
                write_plain(out[parent or "/"], name, chain.chunked(path, node), room.ensure)
            else:
                source = chain.h5(node.created)[path]
                out.copy(source, out[parent or "/"], name=name, without_attrs=True)
            target = out[path]
        for key, index in sorted(node.attrs.items()):
            target.attrs[key] = chain.h5(index)[path].attrs[key]


def _write_merged(chain: Chain, temp: Path, target: Path) -> None:
    """Write the merged tree to ``temp`` with its disk space reserved ahead (see room.py)."""
    out = h5py.File(
        temp, "w-", userblock_size=USER_BLOCK_SIZE, meta_block_size=WRITE_METADATA_BLOCK
    )
    room = Room(out, f"merging into {target.name}")
    try:
        room.ensure(_merged_bytes(chain))
        _write_tree(chain, out, room)
        room.close()
    except BaseException:
        room.close_discarded()
        raise


def _merged_bytes(chain: Chain) -> int:
    """An upper bound of the merged file's size: every dataset's storage plus its metadata."""
    total = WRITE_METADATA_BLOCK  # the unused rest of the last metadata block
    for path, node in walk(chain.root):
        total += 4096 + 1024 * len(node.attrs)
        if node.deltas:
            total += chain.chunked(path, node).storage_bound()
        elif not node.is_group:
            total += chain.h5(node.created)[path].id.get_storage_size()
    return total


def merge_record(chain: Chain, target: Path, sidecar: Sidecar | None = None) -> Path:
    """Write ``chain``'s committed state to ``target`` as a single base container.

    The user block keeps the newest container's record uuid, patch uuid,
    patch index and extensions with ``prev_patch`` null, so later patches of
    the chain still apply on top of the merged file (FORMAT.md section 7).
    ``target`` is published create-if-absent through the commit protocol, with
    the manifest ``sidecar`` makes, if any. A full disk or a refusal of the
    target's directory raises a typed StorageError.
    """
    with typed_storage_errors(target.parent, f"merging into {target.name}"):
        return _merge_record(chain, target, sidecar)


def _merge_record(chain: Chain, target: Path, sidecar: Sidecar | None) -> Path:
    if chain.writer is not None:
        raise RecordModeError("commit or discard the open patch before merging", target)
    if not chain.refs:
        raise RecordNotFoundError("an empty record cannot be merged", target)
    store = LocalStore(target.parent)
    if store.exists(target.name):
        raise RecordExistsError(f"{target} already exists; choose a new file name", target)
    if not target.parent.is_dir():
        raise RecordNotFoundError(
            f"directory {target.parent} does not exist; create it first", target.parent
        )
    first = chain.refs[0]
    if is_stub_container(first.user_block.ub_exts):
        raise StubError(
            f"cannot merge: {first.path} is a stub without data; merge the real record",
            first.path,
        )
    newest = chain.refs[-1].user_block
    # A merge killed before left its temp copy, as big as the record: nobody else drops it.
    sweep_stale_temp_files(target)
    sweep_stale_temp_files(target.with_name(manifest_name(target.name)))
    temp = temp_path_for(target)
    parsed = parse_container_name(target.name)
    # A merged record's manifest waits under the commit protocol's staging name, so that
    # the first opening completes a merge killed between publishing the two files.
    manifest_temp = (
        CommitProtocol(store, parsed[0]).staged_manifest_path(target.name)
        if parsed is not None
        else temp_path_for(target.with_name(manifest_name(target.name)))
    )
    try:
        _write_merged(chain, temp, target)
        user_block = newest.model_copy(update={"prev_patch": None, "hdf5_hashsum": None})
        write_user_block(temp, user_block)
        sealed = seal_container(
            temp, user_block, USER_BLOCK_SIZE, target.name, sidecar, manifest_temp
        )
        publish_container(store, sealed)
    except BaseException:
        published = not os.path.lexists(temp)
        for path in (temp,) if published else (temp, manifest_temp):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        raise
    return target
