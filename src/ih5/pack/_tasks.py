"""One task per work item, on any ``concurrent.futures.Executor``: a local pool or a Dask cluster.

``pack_many`` and ``verify_many`` (and a ``push_many``) are thin maps of a
per-item function over their items with :func:`run_tasks`. The rules that make
this safe on an engine that runs a task again after its worker died:

- an item names files or URLs (plain, picklable values), never open h5py objects;
- a task writes only staging files unique to it (the commit protocol's
  ``HOST-PID-TOKEN`` names), and commits the one record it owns through the
  commit protocol, create-if-absent; a second run of the same task finds the
  change set published and writes nothing, and a concurrent copy loses the
  race for the patch's name instead of forking the chain.

A task that raises, or whose worker died, becomes a failure of its own item;
the other items go on.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

from ih5.errors import EngineError, Ih5Error

T = TypeVar("T")
R = TypeVar("R")

PRELOAD = ("ih5.pack._many", "ih5.pack._audit", "ih5.pack._pushing")
"""Modules of the tasks, imported once by the forkserver instead of by every worker."""
CONNECT_TIMEOUT = 30.0
"""Seconds to wait for a Dask scheduler to answer."""
QUIET_LOCAL_CLUSTER: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.nanny.pre-spawn-environ": {
        "OMP_NUM_THREADS": 1,
        "MKL_NUM_THREADS": 1,
        "OPENBLAS_NUM_THREADS": 1,
    },
}
"""Dask settings for a cluster ih5 starts itself. No statistical profiler sampling the
tasks, and the event-loop health check and system monitor at a slower pace: idle, the
defaults cost a 2-core machine about a tenth of its CPU. And glibc's own malloc trim
threshold instead of Dask's 64 KiB: with that, packing a small plate takes about 40 %
more CPU (page faults from memory handed back to the system and taken again)."""


def local_pool(jobs: int) -> ProcessPoolExecutor:
    """The default engine: ``jobs`` local worker processes, in the caller's environment.

    Not "fork": a child must not inherit HDF5 state of files its parent has open.
    A forkserver's children have the environment the forkserver started with, so
    each worker takes the caller's environment as it is now (``AWS_*`` set later
    in a long-lived caller included).
    """
    context = multiprocessing.get_context("spawn" if os.name == "nt" else "forkserver")
    if os.name != "nt":
        # The forkserver (a fresh process that opens no files) imports the task modules
        # once; every worker forked from it starts with h5py and numpy loaded.
        context.set_forkserver_preload(list(PRELOAD))
    return ProcessPoolExecutor(
        max_workers=max(1, jobs),
        mp_context=context,
        initializer=_adopt_environment,
        initargs=(dict(os.environ),),
    )


def _adopt_environment(environment: dict[str, str]) -> None:
    """Make a new worker's environment the caller's."""
    os.environ.clear()
    os.environ.update(environment)


def describe_failure(exc: BaseException) -> str:
    """One line for a task that raised or whose worker died, saying what to do."""
    if isinstance(exc, BrokenProcessPool):
        return (
            "a worker process died (killed, or out of memory) before this item was done; "
            "nothing half-written was published: run again to do what is left"
        )
    if type(exc).__name__ == "KilledWorker":
        # distributed.KilledWorker: the scheduler gave up after workers died running it.
        return (
            f"every Dask worker that ran it died ({exc}); nothing half-written was "
            "published: check the workers' memory limit and run again"
        )
    if isinstance(exc, Ih5Error):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return f"{type(exc).__name__}: {exc}"


def run_tasks(
    task: Callable[[T], R],
    items: Sequence[T],
    failed: Callable[[T, str], R],
    *,
    executor: Executor | None = None,
    jobs: int = 1,
    on_done: Callable[[R], None] | None = None,
) -> list[R]:
    """Run ``task(item)`` for every item on ``executor``; return the results in item order.

    ``task`` must be picklable (a module-level function or a ``functools.partial``
    of one). A task that raises, or whose worker died, gives ``failed(item, message)``.
    ``on_done`` sees each result as it arrives (for progress). Without ``executor``,
    a local pool of ``jobs`` processes is started and shut down here; a given
    executor is left running for its owner.
    """
    if not items:
        return []
    own = executor is None
    pool = local_pool(jobs) if executor is None else executor
    futures: dict[Future[R], int] = {}
    results: dict[int, R] = {}
    try:
        for index, item in enumerate(items):
            futures[pool.submit(task, item)] = index
        for future in as_completed(futures):
            index = futures[future]
            try:
                result = future.result()
            except Exception as exc:
                result = failed(items[index], describe_failure(exc))
            results[index] = result
            if on_done is not None:
                on_done(result)
    except BaseException:
        # Ctrl-C or a failing callback: do not start what is still queued.
        for future in futures:
            future.cancel()
        raise
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
    return [results[index] for index in range(len(items))]


@contextmanager
def dask_executor(address: str | None = None, *, workers: int | None = None) -> Iterator[Executor]:
    """An executor on the Dask cluster at ``address``, or on a new local cluster.

    ``address`` is a scheduler's address (``tcp://host:8786``); without it a
    ``distributed.LocalCluster`` of ``workers`` processes (one thread each,
    default: one per core) is started and closed with the block.
    """
    try:
        import dask
        import distributed
    except ImportError as exc:
        raise EngineError(
            "Dask is not installed; install it with: pip install 'ih5[dask]'"
        ) from exc
    with ExitStack() as stack:
        target: Any = address
        if address is None:
            try:
                # Diagnostics nobody sees (no dashboard is shown) cost CPU the tasks need;
                # the scheduler and the nannies (for every worker they start) keep the
                # settings they were made with.
                with dask.config.set(QUIET_LOCAL_CLUSTER):
                    cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                        n_workers=workers or os.cpu_count() or 1,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",
                    )
                target = stack.enter_context(cluster)
            except (OSError, RuntimeError) as exc:
                raise EngineError(f"cannot start a local Dask cluster: {exc}") from exc
        try:
            client = stack.enter_context(
                distributed.Client(target, timeout=CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
            )
        except (OSError, TimeoutError) as exc:
            raise EngineError(
                f"cannot reach the Dask scheduler at {address}: {exc}; check the address "
                "(tcp://HOST:PORT) and that the scheduler runs, or use --dask for a local cluster"
            ) from exc
        # pure=False: two runs of one item are two tasks, never one cached result.
        yield client.get_executor(pure=False)
