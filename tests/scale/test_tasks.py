"""run_tasks: one task per item on any Executor, failures kept per item, results in order."""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ih5 import Ih5Error, PackError
from ih5.errors import EngineError
from ih5.pack import _tasks as tasks_module
from ih5.pack import dask_executor, run_tasks


def square_unless_odd(item: int) -> str:
    time.sleep(item / 100)  # larger items finish later
    if item % 2:
        raise PackError(f"item {item} is odd", f"/plates/{item}")
    return f"{item * item}"


def failed(item: int, message: str) -> str:
    return f"failed {item}: {message}"


def test_results_come_back_in_item_order_whatever_order_they_finish_in() -> None:
    seen: list[str] = []
    with ThreadPoolExecutor(5) as pool:
        results = run_tasks(
            square_unless_odd, [8, 6, 4, 2, 0], failed, executor=pool, on_done=seen.append
        )
    assert results == ["64", "36", "16", "4", "0"]
    assert seen == ["0", "4", "16", "36", "64"]


def test_a_raising_task_fails_its_own_item_only() -> None:
    with ThreadPoolExecutor(2) as pool:
        results = run_tasks(square_unless_odd, [1, 2, 3, 4], failed, executor=pool)
    assert results == ["failed 1: item 1 is odd", "4", "failed 3: item 3 is odd", "16"]


def test_a_given_executor_is_left_running_for_its_owner() -> None:
    with ThreadPoolExecutor(1) as pool:
        run_tasks(square_unless_odd, [2], failed, executor=pool)
        assert pool.submit(square_unless_odd, 4).result() == "16"


def test_no_items_start_no_pool() -> None:
    assert run_tasks(square_unless_odd, [], failed) == []


def test_a_failing_callback_stops_the_run_and_cancels_what_is_queued() -> None:
    started: list[int] = []

    def task(item: int) -> int:
        started.append(item)
        return item

    def stop(result: int) -> None:
        raise KeyboardInterrupt

    with ThreadPoolExecutor(1) as pool, pytest.raises(KeyboardInterrupt):
        run_tasks(task, list(range(50)), lambda item, message: -1, executor=pool, on_done=stop)
    assert len(started) < 50


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_scheduler_is_an_engine_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tasks_module, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{free_port()}"
    expected = f"cannot reach the Dask scheduler at {address}"
    with pytest.raises(EngineError, match=expected) as info, dask_executor(address):
        pass
    assert isinstance(info.value, Ih5Error) and isinstance(info.value, RuntimeError)


def test_local_workers_see_the_callers_environment_as_it_is_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forkserver started earlier has an older environment; its workers take the caller's."""
    with tasks_module.local_pool(1) as pool:  # the forkserver is running from here on
        assert pool.submit(os.getenv, "IH5_TEST_LATER").result(timeout=60) is None
    monkeypatch.setenv("IH5_TEST_LATER", "set after the forkserver started")
    with tasks_module.local_pool(1) as pool:
        found = pool.submit(os.getenv, "IH5_TEST_LATER").result(timeout=60)
    assert found == "set after the forkserver started"


@pytest.mark.skipif(os.name == "nt", reason="no forkserver on Windows")
def test_local_workers_start_with_the_task_modules_loaded() -> None:
    """The forkserver imports h5py once; a worker does not import it again per process."""
    with tasks_module.local_pool(1) as pool:
        loaded = pool.submit(eval, "'h5py' in __import__('sys').modules").result(timeout=60)
    assert loaded is True


def test_a_local_dask_cluster_runs_the_tasks_with_its_diagnostics_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--dask``: ih5's own cluster samples no profiles, checks its event loops seldom, and
    leaves glibc's malloc trimming as it is."""
    import dask

    # Dask's nannies leave their worker environment in the process that started them
    # (the session's cluster here); ih5's workers would inherit it from there.
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)

    with dask_executor(workers=1) as executor:
        settings = [
            executor.submit(dask.config.get, key).result(timeout=60)
            for key in tasks_module.QUIET_LOCAL_CLUSTER
        ]
        trim = executor.submit(os.getenv, "MALLOC_TRIM_THRESHOLD_").result(timeout=60)
    assert settings == list(tasks_module.QUIET_LOCAL_CLUSTER.values())
    assert trim is None
    assert dask.config.get("distributed.worker.profile.enabled") is True  # the caller's own
