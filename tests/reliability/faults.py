"""Fault injection into ih5's own file operations, and forked trials that run under it.

Every ih5 module does ``import os`` and calls ``os.replace`` & co. at call
time, so wrapping the functions on the ``os`` module catches every call ih5
makes, including those made for it by ``pathlib`` (``Path.unlink`` is
``os.unlink``), ``tempfile.mkdtemp`` (``os.mkdir``) and ``shutil.rmtree``.
The user block is written through the builtin ``open``, shadowed here in the
namespace of ``ih5.format._userblock`` only; HDF5 writes through its own C
code, so its injection points are opening a file for writing and closing or
flushing a writable one. The wrappers are installed in a forked child that
runs nothing but the operation under test, so counting every call is exact.

A trial either only counts the operations (the dry run), makes the n-th one
raise an ``OSError`` (EIO or ENOSPC) once, makes it and every later one raise
(a full disk: the operation's own cleanup fails too), or SIGKILLs the
process right before it.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h5py

import ih5.format._userblock
from ih5.errors import Ih5Error

FORK = multiprocessing.get_context("fork")
CHILD_TIMEOUT = 60.0

Mode = Literal["count", "error", "sticky", "kill"]
"""Count only; raise once; raise from then on (a full disk: cleanup fails too); SIGKILL."""

OS_POINTS = (
    "open",
    "write",
    "pwrite",
    "ftruncate",
    "fchmod",
    "fsync",
    "replace",
    "rename",
    "link",
    "unlink",
    "remove",
    "mkdir",
    "rmdir",
)
"""Functions of ``os`` that write, make durable, create, move or remove files."""

WRITE_MODES = frozenset("wax+")


@dataclass(frozen=True)
class Fault:
    """What a trial does at operation number ``at`` (1-based): nothing, raise, or die."""

    mode: Mode
    at: int = 0
    code: int = errno.EIO
    match: str | None = None
    """Fault the first operation whose label starts with this, instead of number ``at``."""

    def describe(self) -> str:
        if self.mode == "count":
            return "dry run"
        name = "SIGKILL" if self.mode == "kill" else errno.errorcode[self.code]
        return f"{name} {'from' if self.mode == 'sticky' else 'at'} operation {self.at}"


def _name(value: Any, descriptors: dict[int, str] | None = None) -> str:
    """The file name in an argument (paths print as names, descriptors as what they opened)."""
    if isinstance(value, (str, os.PathLike)):
        return Path(os.fspath(value)).name or os.fspath(value)
    if isinstance(value, int):
        return (descriptors or {}).get(value, f"fd{value}")
    return type(value).__name__


class Injector:
    """Counts the file operations of this process and faults the chosen one."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.count = 0
        self.labels: list[str] = []
        self.fired: str | None = None
        self.descriptors: dict[int, str] = {}
        self._undo: list[Callable[[], None]] = []

    def step(self, label: str) -> None:
        """Called before every operation: count it, and fault it if it is the chosen one."""
        self.count += 1
        self.labels.append(label)
        if self.fault.mode == "sticky" and self.fired is not None:
            raise OSError(self.fault.code, f"{os.strerror(self.fault.code)} {INJECTED}", label)
        if self.fault.mode == "count" or self.fired is not None:
            return
        if self.fault.match is None and self.count != self.fault.at:
            return
        if self.fault.match is not None and not label.startswith(self.fault.match):
            return
        self.fired = label
        if self.fault.mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(self.fault.code, f"{os.strerror(self.fault.code)} {INJECTED}", label)

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        setattr(owner, name, replacement)
        self._undo.append(lambda: setattr(owner, name, original))

    def _wrap_os(self, name: str) -> None:
        original = getattr(os, name)

        # Only arguments naming files: os.open's flags and os.write's data are left out.
        shown = 2 if name in ("replace", "rename", "link") else 1

        def call(*args: Any, **kwargs: Any) -> Any:
            target = "".join(f" {_name(arg, self.descriptors)}" for arg in args[:shown])
            self.step(f"os.{name}{target}")
            result = original(*args, **kwargs)
            if name == "open":
                self.descriptors[result] = _name(args[0])
            return result

        self._patch(os, name, call)

    def _wrap_userblock_open(self) -> None:
        injector = self

        class Stream:
            """A file opened for writing whose writes and flushes are injection points."""

            def __init__(self, raw: Any, name: str) -> None:
                self._raw, self._name = raw, name

            def write(self, data: bytes) -> int:
                injector.step(f"write {self._name}")
                return int(self._raw.write(data))

            def flush(self) -> None:
                injector.step(f"flush {self._name}")
                self._raw.flush()

            def __getattr__(self, attr: str) -> Any:
                return getattr(self._raw, attr)

            def __enter__(self) -> Stream:
                return self

            def __exit__(self, *exc: object) -> None:
                self._raw.close()

        def counted_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if not WRITE_MODES & set(mode):
                return open(file, mode, *args, **kwargs)
            self.step(f"open({mode}) {_name(file)}")
            # Handed to the caller's own ``with`` through the Stream proxy.
            raw = open(file, mode, *args, **kwargs)  # noqa: SIM115
            self.descriptors[raw.fileno()] = _name(file)
            return Stream(raw, _name(file))

        # The module has no global ``open`` of its own: ours shadows the builtin there.
        ih5.format._userblock.open = counted_open  # type: ignore[attr-defined]
        self._undo.append(lambda: delattr(ih5.format._userblock, "open"))

    def _wrap_h5py(self) -> None:
        init = h5py.File.__init__
        close = h5py.File.close
        flush = h5py.File.flush

        def counted_init(file: Any, name: Any, mode: str = "r", *args: Any, **kwargs: Any) -> None:
            if mode != "r":
                self.step(f"h5py.File({mode}) {_name(name)}")
            init(file, name, mode, *args, **kwargs)

        def writable(file: Any) -> bool:
            return bool(file.id) and file.mode == "r+"

        def counted_close(file: Any) -> None:
            if writable(file):
                self.step(f"h5py.close {_name(file.filename)}")
            close(file)

        def counted_flush(file: Any) -> None:
            if writable(file):
                self.step(f"h5py.flush {_name(file.filename)}")
            flush(file)

        self._patch(h5py.File, "__init__", counted_init)
        self._patch(h5py.File, "close", counted_close)
        self._patch(h5py.File, "flush", counted_flush)

    def arm(self) -> None:
        for name in OS_POINTS:
            self._wrap_os(name)
        self._wrap_userblock_open()
        self._wrap_h5py()

    def disarm(self) -> None:
        while self._undo:
            self._undo.pop()()


@contextmanager
def injected(fault: Fault) -> Iterator[Injector]:
    """Count (and fault) the file operations made inside the block."""
    injector = Injector(fault)
    injector.arm()
    try:
        yield injector
    finally:
        injector.disarm()


def failing(match: str, code: int = errno.EIO) -> AbstractContextManager[Injector]:
    """Make the first operation whose label starts with ``match`` raise, in this process."""
    return injected(Fault("error", code=code, match=match))


@dataclass
class Outcome:
    """What a trial's child reports: how far it got and how the operation ended."""

    count: int
    labels: list[str] = field(default_factory=list)
    fired: str | None = None
    error: str | None = None
    typed: bool = True
    escaped: list[str] = field(default_factory=list)
    """Injection points of the injected errors in the chain of the error that escaped."""
    exitcode: int | None = None

    @property
    def killed(self) -> bool:
        return self.exitcode == -signal.SIGKILL

    @property
    def raised(self) -> bool:
        return self.error is not None


INJECTED = "(injected)"


def _escaped(exc: BaseException) -> list[str]:
    """Labels of the injected OSErrors in the chain of ``exc`` (causes and contexts)."""
    labels: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and INJECTED in str(current.strerror):
            labels.append(str(current.filename))
        pending += [current.__cause__, current.__context__]
    return labels


def _child(operation: Callable[[], object], fault: Fault, sender: Any) -> None:
    report = Outcome(count=0)
    try:
        report.error = "the harness failed in the child"
        report.typed = False
        with injected(fault) as injector:
            report.error, report.typed = None, True
            try:
                operation()
            except BaseException as exc:
                report.error = f"{type(exc).__name__}: {exc}"
                report.typed = isinstance(exc, (OSError, Ih5Error))
                report.escaped = _escaped(exc)
            report.count, report.labels, report.fired = (
                injector.count,
                injector.labels,
                injector.fired,
            )
    finally:
        sender.send(report)
        os._exit(0)


def run_trial(operation: Callable[[], object], fault: Fault) -> Outcome:
    """Run ``operation`` in a forked child under ``fault``; return what happened to it.

    A child that does not end within CHILD_TIMEOUT seconds is killed and
    fails the trial: no fault may make an operation hang.
    """
    receiver, sender = FORK.Pipe(duplex=False)
    child = FORK.Process(target=_child, args=(operation, fault, sender), daemon=True)
    child.start()
    sender.close()
    report: Outcome | None = None
    try:
        # Readable once the child reported or died (its end of the pipe closes).
        ended = receiver.poll(CHILD_TIMEOUT)
        if ended:
            with contextlib.suppress(EOFError):
                report = receiver.recv()
            child.join(CHILD_TIMEOUT)
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()
    if not ended:
        raise AssertionError(f"trial ({fault.describe()}) hung for {CHILD_TIMEOUT} s")
    if report is None:
        if child.exitcode != -signal.SIGKILL or fault.mode != "kill":
            raise AssertionError(
                f"trial ({fault.describe()}) ended without a report, exit code {child.exitcode}"
            )
        report = Outcome(count=fault.at, fired="killed")
    report.exitcode = child.exitcode
    return report
