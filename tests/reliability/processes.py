"""Forked worker processes with a deadline: started, killed, joined, and always cleaned up."""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from .faults import FORK


class Workers:
    """Named worker processes sharing one deadline for the whole run."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.processes: dict[str, BaseProcess] = {}

    def start(self, name: str, target: Callable[..., object], *args: Any) -> BaseProcess:
        process = FORK.Process(target=_run_and_exit, args=(target, *args), name=name)
        process.start()
        self.processes[name] = process
        return process

    def alive(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.is_alive()]

    def kill(self, name: str) -> bool:
        """SIGKILL a worker; tell whether the signal (not a normal exit) ended it."""
        process = self.processes[name]
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
        process.join(max(1.0, self.remaining()))
        return process.exitcode == -signal.SIGKILL

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def join(self, names: list[str] | None = None) -> dict[str, int | None]:
        """Wait for the workers until the deadline; return their exit codes (None: still up)."""
        for name in names if names is not None else list(self.processes):
            self.processes[name].join(self.remaining())
        return {name: process.exitcode for name, process in self.processes.items()}

    def close(self) -> None:
        for process in self.processes.values():
            if process.is_alive():
                process.kill()
            process.join(10)


def _run_and_exit(target: Callable[..., object], *args: Any) -> None:
    # Leave without running the parent's atexit handlers or flushing its copied buffers.
    code = 1
    try:
        target(*args)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


@contextmanager
def workers(timeout: float) -> Iterator[Workers]:
    """Workers that must all be done within ``timeout`` seconds; leftovers are killed."""
    pool = Workers(time.monotonic() + timeout)
    try:
        yield pool
    finally:
        pool.close()


def acknowledge(path: Path, line: str) -> None:
    """Append one line to an acknowledgement file in one write (a kill never tears it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def acknowledged(path: Path) -> list[str]:
    """The complete lines of an acknowledgement file (none if it does not exist)."""
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []
