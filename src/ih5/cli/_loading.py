"""Importing what a command needs with the cyclic garbage collector paused.

A command imports h5py, numpy and ih5's floors when it starts: tens of thousands of
long-lived objects, among which the collector would run its full scans again and
again (about 10% of a small re-pack's start-up), finding nothing to free.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the ``with`` block; a collector that was off stays off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
