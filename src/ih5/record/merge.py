"""Merging a record's chain into one base container, copying at the HDF5 level."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import h5py

from ih5.errors import RecordExistsError, RecordModeError, RecordNotFoundError, StubError
from ih5.format import USER_BLOCK_SIZE, hashsum_container, write_user_block
from ih5.format.extensions import is_stub_container
from ih5.fs import replace_file, sweep_stale_temp_files, temp_path_for
from ih5.record.tree import walk

if TYPE_CHECKING:
    from ih5.record.record import IH5Record


def _write_tree(record: IH5Record, out: h5py.File) -> None:
    """Recreate the committed overlay in ``out``: groups, datasets (storage kept), attributes."""
    for path, node in walk(record._root):
        if node.is_group:
            target = out if path == "/" else out.create_group(path)
        else:
            source = record._h5(node.created)[path]
            parent, name = path.rsplit("/", 1)
            out.copy(source, out[parent or "/"], name=name, without_attrs=True)
            target = out[path]
        for key, index in sorted(node.attrs.items()):
            target.attrs[key] = record._h5(index)[path].attrs[key]


def merge_record(record: IH5Record, target: Path) -> Path:
    """Write ``record``'s committed state to ``target`` as a single base container.

    The user block keeps the newest container's record uuid, patch uuid,
    patch index and extensions with ``prev_patch`` null, so later patches of
    the chain still apply on top of the merged file (FORMAT.md section 7).
    """
    if record.has_patch:
        raise RecordModeError("commit or discard the open patch before merging", target)
    if target.exists():
        raise RecordExistsError(f"{target} already exists; choose a new file name", target)
    if not target.parent.is_dir():
        raise RecordNotFoundError(
            f"directory {target.parent} does not exist; create it first", target.parent
        )
    newest = record.user_block
    first = record._chain[0]
    if is_stub_container(first.user_block.ub_exts):
        raise StubError(
            f"cannot merge: {first.path} is a stub without data; merge the real record",
            first.path,
        )
    if not record.containers:
        raise RecordNotFoundError("an empty record cannot be merged", target)
    # A merge killed before left its temp copy, as big as the record: nobody else drops it.
    sweep_stale_temp_files(target)
    temp = temp_path_for(target)
    try:
        with h5py.File(temp, "w-", userblock_size=USER_BLOCK_SIZE) as out:
            _write_tree(record, out)
        user_block = newest.model_copy(update={"prev_patch": None, "hdf5_hashsum": None})
        write_user_block(temp, user_block)
        user_block = user_block.model_copy(update={"hdf5_hashsum": hashsum_container(temp)})
        write_user_block(temp, record._finalize_user_block(user_block, target))
        if target.exists():
            raise RecordExistsError(f"{target} appeared while merging; nothing was replaced")
        replace_file(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return target
