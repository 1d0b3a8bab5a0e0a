"""Fixtures for the fs floor: foreign lock holders, descriptor counts, unprivileged runs."""

from __future__ import annotations

import fcntl
import gc
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from ih5.fs import lock_path_for

HERE = Path(__file__).parent
NOBODY = 65534
WAITER_THREAD_PREFIX = "ih5-lock-wait:"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect this floor's slow stress runs unless ``--long`` (or IH5_LONG=1) asks for them."""
    if os.environ.get("IH5_LONG") == "1":
        return
    slow = [item for item in items if HERE in item.path.parents and "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """Where a test's document lives (not created)."""
    return tmp_path / "doc.json"


def open_fd_count() -> int:
    """How many file descriptors this process has open, once garbage is collected.

    Collecting first keeps objects left by earlier tests (open files waiting for the
    collector) from closing their descriptors between two counts.
    """
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def fd_count() -> Callable[[], int]:
    return open_fd_count


def lock_waiter_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WAITER_THREAD_PREFIX)]


def join_lock_waiters(timeout: float = 10.0) -> None:
    """Wait until abandoned lock waits have closed their descriptors.

    A helper thread that is done waiting renames itself idle (it is kept warm for the
    next wait), so this waits for the names, not for the threads to end.
    """
    deadline = time.monotonic() + timeout
    while lock_waiter_threads() and time.monotonic() < deadline:
        time.sleep(0.005)


@pytest.fixture(autouse=True)
def _no_stray_lock_waiters() -> Iterator[None]:
    """Fail a test that leaves a lock wait behind (it would skew the next test's fd counts)."""
    yield
    join_lock_waiters()
    assert not lock_waiter_threads(), "a lock waiter thread is still blocked after the test"


@contextmanager
def hold_foreign_lock(target: Path) -> Iterator[int]:
    """Hold the lock of ``target`` through a descriptor of our own, as another process would."""
    fd = os.open(lock_path_for(target), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)  # explicitly: a forked child may share this open file
    finally:
        os.close(fd)


@pytest.fixture
def foreign_lock() -> Callable[[Path], AbstractContextManager[int]]:
    return hold_foreign_lock


def is_locked(target: Path) -> bool:
    """Tell whether somebody holds the lock of ``target`` (probing through a fresh descriptor)."""
    fd = os.open(lock_path_for(target), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.fixture(name="is_locked")
def is_locked_fixture() -> Callable[[Path], bool]:
    return is_locked


@pytest.fixture(name="lock_waiter_threads")
def lock_waiter_threads_fixture() -> Callable[[], list[threading.Thread]]:
    return lock_waiter_threads


@pytest.fixture(name="join_lock_waiters")
def join_lock_waiters_fixture() -> Callable[[], None]:
    return join_lock_waiters


def _call_in_child(
    sender: Any, func: Callable[..., Any], args: tuple[Any, ...], unprivileged: bool
) -> None:
    try:
        if unprivileged and os.geteuid() == 0:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        sender.send((True, func(*args)))
    except BaseException as exc:
        sender.send((False, exc))


def run_in_child(func: Callable[..., Any], *args: Any, unprivileged: bool = False) -> Any:
    """Run ``func(*args)`` in a forked child process; return or raise its outcome.

    With ``unprivileged=True`` a root child first drops to ``nobody``: tests
    may run as root, where permission bits stop nothing. The child is forked,
    so it needs no access to the interpreter's files; the outcome (value or
    exception) crosses back by pickle.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_call_in_child, args=(sender, func, args, unprivileged))
    child.start()
    try:
        assert receiver.poll(60), "the child process did not answer"
        ok, outcome = receiver.recv()
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join()
    if not ok:
        raise outcome
    return outcome


@pytest.fixture(name="run_in_child")
def run_in_child_fixture() -> Callable[..., Any]:
    return run_in_child


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A fresh directory that an unprivileged user can reach (pytest's tmp_path is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="ih5-fs-test-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        for path in (directory, *directory.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(directory)
