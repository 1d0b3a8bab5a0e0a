"""file_lock: one exclusive lock per target, across processes and threads, honest about errors."""

from __future__ import annotations

import errno
import fcntl
import gc
import inspect
import itertools
import multiprocessing
import os
import resource
import signal
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

import ih5.fs._lock as lock_module
from ih5 import FileLockTimeoutError, file_lock
from ih5.fs import lock_path_for

ForeignLock = Callable[[Path], AbstractContextManager[int]]
FORK = multiprocessing.get_context("fork")


def attempt_lock(target: Path, timeout: float | None) -> tuple[BaseException | None, float]:
    """Try to take the lock once; return what went wrong (or None) and how long it took."""
    began = time.monotonic()
    try:
        with file_lock(target, timeout):
            pass
    except Exception as exc:
        return exc, time.monotonic() - began
    return None, time.monotonic() - began


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


# --- holding and releasing ---------------------------------------------------


def test_file_lock_yields_the_lock_file_beside_the_target(target: Path) -> None:
    with file_lock(target) as lock_path:
        assert lock_path == Path(os.path.realpath(lock_path_for(target)))
        assert lock_path.name == "doc.json.lock"


def test_file_lock_keeps_the_lock_file_after_release(target: Path) -> None:
    with file_lock(target):
        pass
    assert lock_path_for(target).is_file()


def test_file_lock_releases_on_exit(target: Path, is_locked: Callable[[Path], bool]) -> None:
    with file_lock(target):
        assert is_locked(target)
    assert not is_locked(target)


def test_file_lock_releases_when_the_block_raises(
    target: Path, is_locked: Callable[[Path], bool]
) -> None:
    with pytest.raises(KeyError), file_lock(target):
        raise KeyError("boom")
    assert not is_locked(target)


def test_file_lock_is_reentrant_in_one_thread(
    target: Path, is_locked: Callable[[Path], bool]
) -> None:
    with file_lock(target):
        with file_lock(target, timeout=0):
            assert is_locked(target)
        assert is_locked(target)
    assert not is_locked(target)


# --- exclusion ---------------------------------------------------------------


def test_file_lock_times_out_while_another_process_holds_it(
    target: Path, foreign_lock: ForeignLock
) -> None:
    with foreign_lock(target), pytest.raises(FileLockTimeoutError), file_lock(target, 0.1):
        pass


def test_file_lock_timeout_is_a_timeout_error_naming_the_lock_file(
    target: Path, foreign_lock: ForeignLock
) -> None:
    with foreign_lock(target):
        error, _ = attempt_lock(target, timeout=0.05)
    lock_path = os.path.realpath(lock_path_for(target))
    assert isinstance(error, FileLockTimeoutError)
    assert isinstance(error, TimeoutError)
    assert error.path == lock_path
    assert lock_path in str(error)


def test_file_lock_with_zero_timeout_tries_once(target: Path, foreign_lock: ForeignLock) -> None:
    with foreign_lock(target):
        error, seconds = attempt_lock(target, timeout=0)
    assert isinstance(error, FileLockTimeoutError)
    assert seconds < 1.0
    assert attempt_lock(target, timeout=0)[0] is None


def _hold_lock(target: Path, held: Event, release: Event) -> None:
    with file_lock(target):
        held.set()
        release.wait(30)


@contextmanager
def held_by_child(target: Path) -> Iterator[multiprocessing.process.BaseProcess]:
    """A child process that holds the lock of ``target`` until the block ends."""
    held, release = FORK.Event(), FORK.Event()
    child = FORK.Process(target=_hold_lock, args=(target, held, release))
    child.start()
    try:
        assert held.wait(10), "the child did not take the lock"
        yield child
    finally:
        release.set()
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join()


def test_file_lock_excludes_a_child_process(target: Path) -> None:
    with held_by_child(target):
        error, _ = attempt_lock(target, timeout=0.2)
    assert isinstance(error, FileLockTimeoutError)
    assert attempt_lock(target, timeout=5)[0] is None


def test_file_lock_is_not_inherited_by_a_forked_child(
    target: Path, run_in_child: Callable[..., Any], is_locked: Callable[[Path], bool]
) -> None:
    with file_lock(target):
        error, _ = run_in_child(attempt_lock, target, 0)
        assert isinstance(error, FileLockTimeoutError)
        assert is_locked(target)  # the child's exit did not release the parent's lock


def test_file_lock_without_timeout_waits_until_released(
    target: Path, foreign_lock: ForeignLock
) -> None:
    with foreign_lock(target) as fd:
        threading.Timer(0.1, fcntl.flock, args=(fd, fcntl.LOCK_UN)).start()
        error, seconds = attempt_lock(target, timeout=None)
    assert error is None
    assert seconds >= 0.05


def test_file_lock_excludes_another_thread(target: Path) -> None:
    outcome: list[tuple[BaseException | None, float]] = []
    with file_lock(target):
        other = threading.Thread(target=lambda: outcome.append(attempt_lock(target, 0.1)))
        other.start()
        other.join(10)
    assert isinstance(outcome[0][0], FileLockTimeoutError)


def test_file_lock_hands_over_to_a_waiting_thread(target: Path) -> None:
    outcome: list[tuple[BaseException | None, float]] = []
    with file_lock(target):
        other = threading.Thread(target=lambda: outcome.append(attempt_lock(target, 10)))
        other.start()
        time.sleep(0.05)
    other.join(10)
    assert outcome[0][0] is None


def test_file_lock_serialises_read_modify_write_across_threads(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")

    def bump() -> None:
        for _ in range(50):
            with file_lock(counter, timeout=30):
                value = int(counter.read_text())
                time.sleep(0)  # invite a thread switch inside the critical section
                counter.write_text(str(value + 1))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert counter.read_text() == "200"


def _release_later(target: Path, held: Event, hold_for: float, sender: Connection) -> None:
    with file_lock(target):
        held.set()
        time.sleep(hold_for)
        released_at = time.monotonic()
    sender.send(released_at)


def test_file_lock_hands_over_to_a_waiting_process_promptly(target: Path) -> None:
    # CLOCK_MONOTONIC is system-wide on Linux, so the two processes' readings compare.
    held = FORK.Event()
    receiver, sender = FORK.Pipe(duplex=False)
    holder = FORK.Process(target=_release_later, args=(target, held, 0.3, sender))
    holder.start()
    try:
        assert held.wait(10)
        with file_lock(target, timeout=10):
            acquired_at = time.monotonic()
        assert receiver.poll(10)
        handover = acquired_at - receiver.recv()
    finally:
        holder.join(10)
    assert 0 <= handover < 0.5  # sanity bound only; benchmarks/bench_atomic.py has real figures


def _hold_forever(target: Path, held: Event) -> None:
    with file_lock(target):
        held.set()
        time.sleep(3600)


def test_file_lock_is_freed_when_its_holder_is_killed(target: Path) -> None:
    held = FORK.Event()
    holder = FORK.Process(target=_hold_forever, args=(target, held))
    holder.start()
    try:
        assert held.wait(10)
        assert isinstance(attempt_lock(target, timeout=0)[0], FileLockTimeoutError)
        os.kill(holder.pid or 0, signal.SIGKILL)
        error, seconds = attempt_lock(target, timeout=10)
    finally:
        holder.kill()
        holder.join()
    assert error is None
    assert seconds < 5


# --- real OS errors are raised at once, never waited out -------------------------------


def _parent_is_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plate").write_text("")
    return tmp_path / "plate" / "doc.json"


def _lock_path_is_a_directory(tmp_path: Path) -> Path:
    (tmp_path / "doc.json.lock").mkdir()
    return tmp_path / "doc.json"


def _directory_is_missing(tmp_path: Path) -> Path:
    return tmp_path / "missing" / "doc.json"


@pytest.mark.parametrize(
    ("make_target", "error_type"),
    [
        (_parent_is_a_file, NotADirectoryError),
        (_lock_path_is_a_directory, IsADirectoryError),
        (_directory_is_missing, FileNotFoundError),
    ],
    ids=["parent-is-a-file", "lock-path-is-a-directory", "directory-missing"],
)
def test_file_lock_raises_os_errors_at_once(
    tmp_path: Path,
    fd_count: Callable[[], int],
    make_target: Callable[[Path], Path],
    error_type: type[OSError],
) -> None:
    target = make_target(tmp_path)
    before = fd_count()
    error, seconds = attempt_lock(target, timeout=30)
    assert type(error) is error_type
    assert seconds < 5
    assert fd_count() == before


def test_file_lock_raises_permission_denied_at_once(
    world_dir: Path, run_in_child: Callable[..., Any]
) -> None:
    read_only = world_dir / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    error, seconds = run_in_child(attempt_lock, read_only / "doc.json", 30, unprivileged=True)
    assert isinstance(error, PermissionError)
    assert error.errno == errno.EACCES
    assert seconds < 5


def _attempt_without_free_descriptors(target: Path) -> tuple[BaseException | None, float]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(64, in_use + 8), hard))
    fillers = []
    try:
        while True:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        assert exc.errno == errno.EMFILE
    try:
        return attempt_lock(target, timeout=30)
    finally:
        for fd in fillers:
            os.close(fd)


def test_file_lock_raises_too_many_open_files_at_once(
    target: Path, run_in_child: Callable[..., Any]
) -> None:
    error, seconds = run_in_child(_attempt_without_free_descriptors, target)
    assert isinstance(error, OSError)
    assert not isinstance(error, FileLockTimeoutError)
    assert error.errno == errno.EMFILE
    assert seconds < 5


@pytest.mark.parametrize("failing_call", ["try", "wait"])
def test_file_lock_reports_a_filesystem_without_locking(
    target: Path,
    monkeypatch: pytest.MonkeyPatch,
    fd_count: Callable[[], int],
    failing_call: str,
) -> None:
    # NFS without lockd and some FUSE filesystems answer flock with ENOLCK.
    real_flock = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        if operation & fcntl.LOCK_UN:
            return real_flock(fd, operation)
        if operation & fcntl.LOCK_NB and failing_call == "wait":
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", flock)
    before = fd_count()
    error, seconds = attempt_lock(target, timeout=30)
    assert isinstance(error, OSError)
    assert not isinstance(error, FileLockTimeoutError)
    assert error.errno == errno.ENOLCK
    assert "does not support file locking" in str(error)
    assert seconds < 5
    assert fd_count() == before


# --- no descriptor outlives an attempt ---------------------------------------


def test_file_lock_timeout_leaks_no_descriptor(
    target: Path,
    foreign_lock: ForeignLock,
    fd_count: Callable[[], int],
    join_lock_waiters: Callable[[], None],
) -> None:
    before = fd_count()
    with foreign_lock(target):
        for _ in range(3):
            assert isinstance(attempt_lock(target, timeout=0.05)[0], FileLockTimeoutError)
    # An abandoned wait closes its descriptor once the holder lets go.
    join_lock_waiters()
    assert fd_count() == before


def test_file_lock_zero_timeout_leaves_nothing_behind(
    target: Path, foreign_lock: ForeignLock, fd_count: Callable[[], int]
) -> None:
    def threads() -> int:  # idle helper threads of earlier waits may end meanwhile
        return sum(t.name != lock_module.IDLE_THREAD_NAME for t in threading.enumerate())

    with foreign_lock(target):
        before = (fd_count(), threads())
        for _ in range(20):
            assert isinstance(attempt_lock(target, timeout=0)[0], FileLockTimeoutError)
        assert (fd_count(), threads()) == before


def test_file_lock_leaks_nothing_when_no_thread_can_be_started(
    target: Path,
    foreign_lock: ForeignLock,
    monkeypatch: pytest.MonkeyPatch,
    fd_count: Callable[[], int],
    is_locked: Callable[[Path], bool],
) -> None:
    def start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    before = fd_count()
    with foreign_lock(target):
        monkeypatch.setattr(lock_module, "_waits", lock_module._WaitPool())  # no idle helper
        monkeypatch.setattr(threading.Thread, "start", start)
        error, _ = attempt_lock(target, timeout=5)
        monkeypatch.undo()
    assert isinstance(error, RuntimeError)
    assert fd_count() == before
    assert not is_locked(target)


def test_file_lock_leaks_no_held_lock_when_checking_the_lock_file_fails(
    target: Path,
    monkeypatch: pytest.MonkeyPatch,
    fd_count: Callable[[], int],
    is_locked: Callable[[Path], bool],
) -> None:
    lock_path = os.path.realpath(lock_path_for(target))
    real_lstat = os.lstat

    def lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if os.fspath(path) == lock_path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), lock_path)
        return real_lstat(path, *args, **kwargs)

    before = fd_count()
    monkeypatch.setattr(os, "lstat", lstat)
    error, _ = attempt_lock(target, timeout=5)
    monkeypatch.undo()
    assert isinstance(error, PermissionError)
    assert fd_count() == before
    assert not is_locked(target)


# --- nothing kept per path once released ----------------------------------------


def memory_held_by_the_lock_code() -> int:
    """Bytes that were allocated by the lock module's own lines and are still alive."""
    gc.collect()
    source = inspect.getsourcefile(inspect.unwrap(file_lock))
    assert source is not None
    traces = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, source)])
    return sum(stat.size for stat in traces.statistics("filename"))


def test_file_lock_keeps_nothing_per_distinct_path_once_released(tmp_path: Path) -> None:
    """A long-lived process locking ever new paths (one sidecar per plate) must not grow."""

    def lock_each(names: range) -> None:
        for index in names:
            with file_lock(tmp_path / f"doc{index}.json"):
                pass

    tracemalloc.start()
    try:
        lock_each(range(100))
        before = memory_held_by_the_lock_code()
        lock_each(range(100, 2100))
        grown = memory_held_by_the_lock_code() - before
    finally:
        tracemalloc.stop()
    # An entry kept per path costs hundreds of bytes: 2000 paths would hold ~1 MB.
    assert grown < 16 * 1024


# --- waiting ---------------------------------------------------------------


def test_file_lock_timeout_ignores_wall_clock_jumps(
    target: Path, foreign_lock: ForeignLock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_time, jumps = time.time, itertools.count(1)
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600 * next(jumps))
    with foreign_lock(target):
        error, seconds = attempt_lock(target, timeout=0.3)
    assert isinstance(error, FileLockTimeoutError)
    assert 0.25 <= seconds < 5


def test_file_lock_relocks_when_the_lock_file_is_deleted_while_waiting(
    target: Path,
    foreign_lock: ForeignLock,
    is_locked: Callable[[Path], bool],
    lock_waiter_threads: Callable[[], list[threading.Thread]],
) -> None:
    seen: dict[str, bool] = {}

    def wait_and_probe() -> None:
        with file_lock(target, timeout=10):
            seen["lock file on disk is held"] = is_locked(target)

    with foreign_lock(target):
        waiter = threading.Thread(target=wait_and_probe)
        waiter.start()
        wait_for(lambda: bool(lock_waiter_threads()))
        os.unlink(lock_path_for(target))  # a foreign tool cleans up "its" lock file
    waiter.join(10)
    assert seen == {"lock file on disk is held": True}
    assert lock_path_for(target).is_file()


def test_file_lock_abandoned_wait_is_not_kept_alive_by_a_forked_child(
    target: Path, foreign_lock: ForeignLock, join_lock_waiters: Callable[[], None]
) -> None:
    # A child forked while a wait is pending inherits the waiter's descriptor;
    # the lock that descriptor is later handed must not live on in the child.
    with foreign_lock(target):
        assert isinstance(attempt_lock(target, timeout=0.05)[0], FileLockTimeoutError)
        release_child, child_released = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
            pid = os.fork()
        if pid == 0:  # the child: wait until the test is done, touch nothing
            os.read(release_child, 1)
            os._exit(0)
    try:
        join_lock_waiters()
        error, _ = attempt_lock(target, timeout=1)
    finally:
        os.write(child_released, b"x")
        os.waitpid(pid, 0)
        os.close(release_child)
        os.close(child_released)
    assert error is None


def test_contended_waits_one_after_another_reuse_one_helper_thread(
    target: Path,
    foreign_lock: ForeignLock,
    monkeypatch: pytest.MonkeyPatch,
    join_lock_waiters: Callable[[], None],
) -> None:
    monkeypatch.setattr(lock_module, "_waits", lock_module._WaitPool())  # start from none
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(3):
        with foreign_lock(target):
            assert isinstance(attempt_lock(target, timeout=0.02)[0], FileLockTimeoutError)
        join_lock_waiters()  # the helper is idle again once the foreign holder let go
    helpers = [name for name in started if name.startswith(lock_module.WAIT_THREAD_PREFIX)]
    assert len(helpers) == 1


def test_an_idle_helper_thread_ends_after_a_while(
    target: Path, foreign_lock: ForeignLock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_module, "_waits", lock_module._WaitPool())
    monkeypatch.setattr(lock_module, "_IDLE_SECONDS", 0.05)
    with foreign_lock(target):
        assert isinstance(attempt_lock(target, timeout=0.02)[0], FileLockTimeoutError)
    wait_for(lambda: not any(t.name.startswith("ih5-lock") for t in threading.enumerate()))
