"""Lock files that others made: links are refused, foreign owners work, nothing is written.

Archives are packed as root in directories other people write into, so a lock
file may be a symlink to any file on the machine or belong to another user.
Taking a lock must never create, write or truncate anything through a link,
and must work on a read-only descriptor.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ih5 import FileLockTimeoutError, atomic_update_json, atomic_write_json, file_lock, locked_json
from ih5.errors import FileLockError, FileLockSymlinkError
from ih5.fs import lock_path_for, read_json

NOBODY = 65534
OTHER_UID = NOBODY - 1
"""An owner that is neither root nor the unprivileged writer (``nobody``)."""

SECRET = b"root:secret-hash:19000:0:99999:7:::\n"


def _lock_once(target: Path) -> None:
    with file_lock(target, timeout=5):
        pass


def _update_once(target: Path) -> None:
    atomic_update_json(target, lambda doc: {**doc, "n": doc.get("n", 0) + 1}, 5.0, {})


def _update_in_block(target: Path) -> None:
    with locked_json(target, 5.0) as document:
        document["n"] = document.get("n", 0) + 1


LOCKERS = pytest.mark.parametrize(
    "locker",
    [_lock_once, _update_once, _update_in_block],
    ids=["file_lock", "atomic_update_json", "locked_json"],
)


@LOCKERS
def test_regression_lock_file_symlink_to_a_file_is_refused_and_the_file_kept(
    tmp_path: Path, locker: Callable[[Path], None]
) -> None:
    """A lock link to another file got that file truncated to 0 bytes (the in-flight note)."""
    victim = tmp_path / "shadow"
    victim.write_bytes(SECRET)
    target = tmp_path / "openhcs_metadata.json"
    atomic_write_json(target, {"n": 1})
    os.symlink(victim, lock_path_for(target))
    with pytest.raises(FileLockSymlinkError, match=r"openhcs_metadata\.json\.lock"):
        locker(target)
    assert victim.read_bytes() == SECRET
    assert read_json(target) == {"n": 1}


@LOCKERS
def test_regression_dangling_lock_file_symlink_creates_nothing(
    tmp_path: Path, locker: Callable[[Path], None]
) -> None:
    """A dangling ``rec.ih5.lock`` link made a writer create the file it points at."""
    target = tmp_path / "rec.ih5"
    pointee = tmp_path / "elsewhere" / "created-by-root"
    pointee.parent.mkdir()
    os.symlink(pointee, lock_path_for(target))
    with pytest.raises(FileLockSymlinkError):
        locker(target)
    assert not pointee.exists()
    assert sorted(os.listdir(pointee.parent)) == []


def test_lock_file_symlink_error_is_a_file_lock_error_naming_the_link(tmp_path: Path) -> None:
    """Callers catching FileLockError (the metadata writer does) see the refusal too."""
    target = tmp_path / "doc.json"
    os.symlink(tmp_path / "x", lock_path_for(target))
    with pytest.raises(FileLockError) as caught:
        _lock_once(target)
    assert isinstance(caught.value, FileLockSymlinkError)
    assert caught.value.path == str(lock_path_for(target))


def test_lock_file_replaced_by_a_symlink_later_is_refused(tmp_path: Path) -> None:
    """A lock file swapped for a link between two writers is refused, not followed."""
    target = tmp_path / "doc.json"
    victim = tmp_path / "victim"
    victim.write_bytes(SECRET)
    _lock_once(target)
    os.unlink(lock_path_for(target))
    os.symlink(victim, lock_path_for(target))
    with pytest.raises(FileLockSymlinkError):
        _lock_once(target)
    assert victim.read_bytes() == SECRET


@LOCKERS
def test_lock_file_is_never_written(tmp_path: Path, locker: Callable[[Path], None]) -> None:
    """Lock files stay empty, whatever the writer does (no note kept in them)."""
    target = tmp_path / "doc.json"
    locker(target)
    locker(target)
    lock = lock_path_for(target)
    assert lock.read_bytes() == b""
    assert lock.stat().st_size == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a file of another user")
@LOCKERS
def test_regression_lock_file_of_another_user_does_not_block_writers(
    world_dir: Path, run_in_child: Callable[..., Any], locker: Callable[[Path], None]
) -> None:
    """A 0644 lock file owned by someone else blocked every writer (it was opened read-write)."""
    world_dir.chmod(0o777)
    target = world_dir / "openhcs_metadata.json"
    lock = lock_path_for(target)
    lock.touch(mode=0o644)
    lock.chmod(0o644)
    os.chown(lock, OTHER_UID, OTHER_UID)
    run_in_child(locker, target, unprivileged=True)
    assert lock.stat().st_uid == OTHER_UID
    assert lock.read_bytes() == b""


_FOREIGN_HOLDER = textwrap.dedent(
    """
    import fcntl, sys, time
    # What portalocker does: open the lock file for appending and flock it exclusively.
    with open(sys.argv[1], "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        print("held", flush=True)
        sys.stdin.readline()
    """
)

_FOREIGN_PROBE = textwrap.dedent(
    """
    import fcntl, sys
    with open(sys.argv[1], "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("busy")
        else:
            print("free")
    """
)


def test_lock_excludes_a_portalocker_style_flock_held_by_another_process(tmp_path: Path) -> None:
    """Another tool's flock(LOCK_EX) on the same lock file keeps ih5 out until released."""
    target = tmp_path / "openhcs_metadata.json"
    lock = str(lock_path_for(target))
    with subprocess.Popen(
        [sys.executable, "-c", _FOREIGN_HOLDER, lock],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert holder.stdout.readline() == "held\n"
            started = time.monotonic()
            with pytest.raises(FileLockTimeoutError):
                _lock_once_with_timeout(target, 0.3)
            assert time.monotonic() - started >= 0.25
        finally:
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(10)
    _lock_once_with_timeout(target, 5)


def _lock_once_with_timeout(target: Path, timeout: float) -> None:
    with file_lock(target, timeout=timeout):
        pass


def test_portalocker_style_flock_in_another_process_waits_for_ih5s_lock(tmp_path: Path) -> None:
    """While ih5 holds the lock, another tool's flock on the lock file is refused."""
    target = tmp_path / "openhcs_metadata.json"
    lock = str(lock_path_for(target))

    def probe() -> str:
        return subprocess.run(
            [sys.executable, "-c", _FOREIGN_PROBE, lock],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    with file_lock(target, timeout=5):
        assert probe() == "busy"
    assert probe() == "free"
