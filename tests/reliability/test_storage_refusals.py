"""A read-only filesystem or a denied permission gives a typed error naming the location.

Read-only: a small tmpfs remounted read-only (root only; skipped elsewhere).
Permission: a child process dropped to ``nobody`` writes into a root-owned
directory, because permission bits stop nothing for root.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ih5 import (
    IH5Record,
    LocationPermissionError,
    ReadOnlyLocationError,
    atomic_update_json,
    pack_directory,
    unpack_record,
)
from tests.helpers.nodes import as_dataset
from tests.helpers.tmpfs import mounted_tmpfs

NOBODY = 65534


def _create(where: Path) -> None:
    with IH5Record(where / "new", "w") as rec:
        rec["a"] = 1


def _patch(where: Path) -> None:
    with IH5Record(where / "rec", "r+") as rec:
        rec["b"] = 2


def _merge(where: Path) -> None:
    with IH5Record(where / "rec") as rec:
        rec.merge_files(where / "merged.ih5")


def _pack(where: Path) -> None:
    source = Path(tempfile.mkdtemp())
    try:
        (source / "f.txt").write_text("x")
        pack_directory(source, where / "packed")
    finally:
        shutil.rmtree(source)


def _unpack(where: Path) -> None:
    unpack_record(where / "rec", where / "out")


def _update(where: Path) -> None:
    atomic_update_json(where / "doc.json", lambda doc: {**doc, "k": 1})


WRITES: dict[str, Callable[[Path], None]] = {
    "create": _create,
    "patch": _patch,
    "merge": _merge,
    "pack": _pack,
    "unpack": _unpack,
    "metadata update": _update,
}


def _seed(where: Path) -> None:
    with IH5Record(where / "rec", "w") as rec:
        rec["a"] = np.arange(3)
    (where / "doc.json").write_text("{}")


@pytest.fixture(scope="module")
def read_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tmpfs holding a record and a JSON document, remounted read-only."""
    readonly = tmp_path_factory.mktemp("readonly")
    with mounted_tmpfs(readonly, "4m", "remounting a tmpfs read-only") as mount:
        _seed(mount)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount


@pytest.mark.parametrize("name", list(WRITES))
def test_read_only_filesystem_gives_typed_error(read_only: Path, name: str) -> None:
    """Every write on a read-only mount raises ReadOnlyLocationError (an OSError, EROFS)."""
    with pytest.raises(ReadOnlyLocationError, match="read-only filesystem") as caught:
        WRITES[name](read_only)
    assert caught.value.errno == errno.EROFS
    assert str(read_only) in str(caught.value)


def test_reading_a_record_on_a_read_only_filesystem_works(read_only: Path) -> None:
    """Reading needs no write: a record on a read-only mount opens and reads."""
    with IH5Record(read_only / "rec") as rec:
        assert list(as_dataset(rec["a"])[()]) == [0, 1, 2]


def _as_nobody(sender: Any, func: Callable[[Path], None], where: Path) -> None:
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        func(where)
        sender.send(None)
    except BaseException as exc:
        sender.send(exc)


def run_as_nobody(func: Callable[[Path], None], where: Path) -> BaseException | None:
    """Run ``func(where)`` in a forked child as ``nobody``; return what it raised."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_as_nobody, args=(sender, func, where))
    child.start()
    try:
        assert receiver.poll(60), "the child process did not answer"
        outcome: BaseException | None = receiver.recv()
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join()
    return outcome


@pytest.fixture
def root_owned() -> Iterator[Path]:
    """A root-owned 0755 directory with a record and a document: others may only read."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to drop a child to an unprivileged user")
    where = Path(tempfile.mkdtemp(prefix="ih5-denied-"))
    try:
        where.chmod(0o755)
        _seed(where)
        for path in where.iterdir():
            path.chmod(0o644)
        yield where
    finally:
        shutil.rmtree(where)


@pytest.mark.parametrize("name", list(WRITES))
def test_permission_denied_gives_typed_error(root_owned: Path, name: str) -> None:
    """A user who may not write the directory gets LocationPermissionError (a PermissionError)."""
    raised = run_as_nobody(WRITES[name], root_owned)
    assert isinstance(raised, LocationPermissionError), repr(raised)
    assert isinstance(raised, PermissionError)
    assert str(root_owned) in str(raised)
