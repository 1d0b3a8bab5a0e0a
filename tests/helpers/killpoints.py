"""Kill points: make a forked writer SIGKILL itself right before its n-th call of a step.

A kill point is an attribute of a module or class, named as ``(owner, name)``; ih5
looks it up at call time, so replacing the attribute catches every call. The crash
suites arm the points in a forked child, let it write, and count n up from 1 until
the write completes, so that every step is tried once as the last one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

KillPoint = tuple[Any, str]
"""The owner (a module or class) of a function and the function's attribute name."""


def arm_kill(points: Sequence[KillPoint], n: int) -> Callable[[], None]:
    """SIGKILL this process before its n-th call of any of ``points``; return disarm."""
    count = 0
    originals = [(owner, name, getattr(owner, name)) for owner, name in points]

    def hook(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal count
            count += 1
            if count == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)

        return call

    for owner, name, original in originals:
        setattr(owner, name, hook(original))

    def disarm() -> None:
        for owner, name, original in originals:
            setattr(owner, name, original)

    return disarm
