"""Shared helpers of the bad-input fuzzers: fixture copies, input fingerprints, outcome
tallies, and a worker process that opens damaged records for the sweeps.

libhdf5 is C code that trusts the bytes it is given: on a damaged file it may crash
or loop. The sweeps therefore open records in a worker process (this file run as a
script) with a time bound per case, and restart it when it dies.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
from hypothesis import strategies as st

import ih5
from ih5.format import hashsum_container, write_user_block

FIXTURES = Path(os.environ.get("IH5_FIXTURES", "/work/shared/fixtures")) / "metador-0.1.1"

CASE_TIMEOUT = 10.0
"""Seconds one open-and-read may take before the case counts as a hang (cases take
milliseconds; a worker's first case, which imports h5py, gets ``START_TIMEOUT``)."""
START_TIMEOUT = 60.0
WORKER_MEMORY = 3 << 30
"""Address-space cap of the worker: a damaged length makes libhdf5 allocate gigabytes,
which then fails at once (a typed error) instead of swapping for seconds."""

# --- options and inputs ----------------------------------------------------------


def wants_long(config: Any) -> bool:
    """True under ``--long`` (heavier sweeps); False while the option is not registered."""
    try:
        return bool(config.getoption("--long", default=False))
    except ValueError:
        return False


def copy_fixtures(target: Path) -> Path:
    """Copy every metador-core fixture into the new directory ``target``; return it."""
    target.mkdir(parents=True)
    for source in sorted(FIXTURES.iterdir()):
        if source.suffix in (".ih5", ".json"):
            shutil.copyfile(source, target / source.name)
            (target / source.name).chmod(0o644)
    return target


def fingerprint(root: Path) -> dict[str, str]:
    """Every file below ``root`` with the sha256 of its bytes (links: their target)."""
    found: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[relative] = "link:" + os.readlink(path)
            elif path.is_dir():
                found[relative] = "dir"
            else:
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# --- tallies ---------------------------------------------------------------------


@dataclass
class Tally:
    """What one fuzz target's cases ended in; a non-empty ``failures`` fails the test.

    ``altered`` counts reads that returned other values than the intact record, where
    allowed: with verify=False, or after a flip in a user block (no hashsum covers it).
    ``crashes`` and ``hangs`` count libhdf5 dying or looping on damaged bytes under
    verify=False (``limits`` names those cases): allowed, since the caller vouched for
    the bytes and no Python code can stop C code that loops.
    """

    target: str
    cases: int = 0
    typed: int = 0
    correct: int = 0
    altered: int = 0
    crashes: int = 0
    hangs: int = 0
    failures: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    def count(self, outcome: str, detail: str = "") -> None:
        """Count one case: typed, correct, altered, crashes, hangs or failure."""
        self.cases += 1
        if outcome == "failure":
            self.failures.append(detail)
            return
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome in ("crashes", "hangs"):
            self.limits.append(detail)

    def line(self) -> str:
        """The one-line summary quoted by the closing note."""
        more = {
            "altered": self.altered,
            "libhdf5 crashes": self.crashes,
            "libhdf5 hangs": self.hangs,
        }
        extra = "".join(f", {value} {name}" for name, value in more.items() if value)
        return (
            f"fuzz {self.target}: {self.cases} cases, {self.typed} typed errors, "
            f"{self.correct} correct reads{extra}, {len(self.failures)} failures"
        )

    def check(self) -> None:
        """Fail with the first failures listed."""
        assert not self.failures, f"{self.line()}:\n" + "\n".join(self.failures[:20])


def report(tally: Tally, capsys: Any) -> None:
    """Under ``--long``, print the tally's summary past pytest's capture; fail on any failure."""
    if os.environ.get("IH5_LONG") == "1":
        with capsys.disabled():
            print(f"\n{tally.line()}")
            for limit in tally.limits:
                print(f"  libhdf5 limit: {limit}")
    tally.check()


def typed_or_result(call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``call``; return (True, error) for an ih5 error, else (False, its result).

    Any other exception propagates: to the fuzzers it is the failure being looked for.
    """
    try:
        return False, call()
    except ih5.Ih5Error as exc:
        return True, exc


# --- mutating JSON documents ----------------------------------------------------------

RAW_TOKENS = (
    "1" + "0" * 5000,  # past Python's 4300-digit limit for int()
    "-" + "9" * 400,
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "1.5",
    "-0",
    "[" * 5000 + "]" * 5000,
    '{"a": ' * 3000 + "1" + "}" * 3000,
    '"\\ud800"',
    '"\\u0000"',
    "tru",
    "",
)
"""Raw JSON text (or near-JSON) a mutation can put where a value was."""

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths (keys and indices) to every node of a JSON document, the root first."""
    paths = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            paths += json_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            paths += json_paths(value, (*prefix, index))
    return paths


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return doc


def _delete(doc: Any, path: tuple[Any, ...]) -> Any:
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return doc


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutated_json(draw: st.DrawFn, original: Any) -> bytes:
    """A JSON document with a few nodes replaced (any JSON, raw tokens), deleted or
    wrapped, then sometimes with stray bytes (not UTF-8, NUL, quotes) put in."""
    doc = copy.deepcopy(original)
    raws: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(json_paths(doc)))
        action = draw(st.sampled_from(["replace", "raw", "delete", "wrap", "retype"]))
        if action == "delete" and path:
            doc = _delete(doc, path)
        elif action == "raw":
            raws.append(draw(st.sampled_from(RAW_TOKENS)))
            doc = _set(doc, path, f"@@raw{len(raws) - 1}@@")
        elif action == "wrap":
            doc = _set(doc, path, [_get(doc, path)])
        elif action == "retype":
            old = _get(doc, path)
            doc = _set(doc, path, str(old) if not isinstance(old, str) else {"": old})
        else:
            doc = _set(doc, path, draw(JSON_VALUES))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    for index, token in enumerate(raws):
        text = text.replace(f'"@@raw{index}@@"', token)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        stray = draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b'"', b"\\", b"\xed\xa0\x80"]))
        data = data[:at] + stray + data[at:]
    return data


def flipped(data: bytes, masks: Sequence[int], stride: int = 1) -> Iterable[bytes]:
    """``data`` with one byte XORed by each mask, at every ``stride``-th offset."""
    for offset in range(0, len(data), stride):
        for mask in masks:
            copy_ = bytearray(data)
            copy_[offset] ^= mask
            yield bytes(copy_)


# --- reading a whole record ----------------------------------------------------------


def _canonical(value: Any) -> Any:
    if isinstance(value, np.generic):
        item = value.tobytes() if value.dtype.kind == "V" else value.item()
        # Some types (float128, ...) have no Python equivalent: item() gives them back.
        return (
            repr(value) if isinstance(item, np.generic) else [value.dtype.str, [], _canonical(item)]
        )
    if isinstance(value, np.ndarray):
        # tolist() of opaque (void) values gives numpy scalars back: take their bytes.
        items = value.tobytes() if value.dtype.kind == "V" else value.tolist()
        return [value.dtype.str, list(value.shape), _canonical(items)]
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if isinstance(value, bytes):
        return repr(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return f"{type(value).__name__}:{value!r}"


def _read(read: Callable[[], Any]) -> Any:
    try:
        return _canonical(read())
    except ih5.StubError:
        return "<stub placeholder>"


def _attrs(obj: ih5.IH5Group | ih5.IH5Dataset) -> dict[str, Any]:
    attrs = obj.attrs
    return {name: _read(partial(attrs.__getitem__, name)) for name in attrs}


def record_content(record: ih5.IH5Record) -> dict[str, Any]:
    """Everything a reader sees: each path with its kind, value and attributes."""
    content: dict[str, Any] = {"/": ["group", _attrs(record)]}
    members: list[tuple[str, ih5.IH5Group | ih5.IH5Dataset]] = []
    record.visititems(lambda path, obj: members.append((path, obj)))
    for path, obj in members:
        if isinstance(obj, ih5.IH5Dataset):
            content[path] = ["dataset", _read(partial(obj.__getitem__, ())), _attrs(obj)]
        else:
            content[path] = ["group", _attrs(obj)]
    return content


def open_and_read(cls: type[ih5.IH5Record], files: Sequence[Path], verify: bool) -> dict[str, Any]:
    """Open a record read-only from explicit files and read all of it."""
    with cls(list(files), verify=verify) as record:
        return record_content(record)


def seal(path: Path, user_block: ih5.IH5UserBlock | None = None) -> Path:
    """Commit a hand-made HDF5 file (made with ``userblock_size=1024``) as a valid base.

    The hashsum matches, so whatever the file holds reaches ih5 even with verify=True.
    """
    block = user_block or ih5.IH5UserBlock.create()
    write_user_block(path, block)
    write_user_block(path, block.model_copy(update={"hdf5_hashsum": hashsum_container(path)}))
    return path


# --- damage ----------------------------------------------------------------------


@dataclass(frozen=True)
class Damage:
    """One way to damage one file: XOR a byte at ``offset``, or cut the file there."""

    file: str
    offset: int
    xor: int = 0xFF
    truncate: bool = False

    def apply(self, directory: Path) -> None:
        """Damage the copy of ``file`` in ``directory``."""
        path = directory / self.file
        data = bytearray(path.read_bytes())
        if self.truncate:
            del data[self.offset :]
        else:
            data[self.offset] ^= self.xor
        path.write_bytes(bytes(data))

    @property
    def in_user_block(self) -> bool:
        """True for a flip in a container's user block, which no hashsum covers (FORMAT.md 2)."""
        return not self.truncate and self.file.endswith(".ih5") and self.offset < 1024

    def __str__(self) -> str:
        if self.truncate:
            return f"{self.file} cut at {self.offset}"
        return f"{self.file} byte {self.offset} ^ {self.xor:#04x}"


def offsets(size: int, stride: int, dense_until: int = 0, dense_stride: int = 1) -> list[int]:
    """Byte offsets of a file of ``size`` bytes: dense in its head, every ``stride`` after."""
    head = range(0, min(size, dense_until), dense_stride)
    return sorted({*head, *range(dense_until % stride, size, stride)})


# --- the worker --------------------------------------------------------------------


def _worker_main() -> None:  # pragma: no cover - runs in the worker process
    """Serve open-and-read requests, one JSON line each, until stdin closes."""
    import resource

    from ih5.manifest import IH5MFRecord
    from ih5.record import _opening as opening
    from ih5.record._facts import FactsCache

    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))

    # C libraries may print to fd 1: keep the protocol on a private copy of it.
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    classes: dict[str, type[ih5.IH5Record]] = {
        "IH5Record": ih5.IH5Record,
        "IH5MFRecord": IH5MFRecord,
    }
    expected: dict[str, Any] = {}
    for line in sys.stdin:
        request = json.loads(line)
        cls = classes[request["cls"]]
        key = json.dumps([request["cls"], request["pristine"]])
        if key not in expected:
            expected[key] = open_and_read(cls, [Path(p) for p in request["pristine"]], True)
        # Facts are cached by (patch uuid, hashsum): with verify=False a damaged copy
        # would be served the intact file's facts.
        setattr(opening, "FACTS_CACHE", FactsCache())  # noqa: B010
        try:
            content = open_and_read(cls, [Path(p) for p in request["files"]], request["verify"])
            outcome = {"outcome": "correct" if content == expected[key] else "altered"}
        except ih5.Ih5Error as exc:
            outcome = {"outcome": "typed", "detail": type(exc).__name__}
        except Exception as exc:
            outcome = {"outcome": "untyped", "detail": _where(exc)}
        channel.write(json.dumps(outcome) + "\n")
        channel.flush()


def _where(exc: BaseException) -> str:
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/ih5/" in f.filename]
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{place}: {str(exc)[:200]}"


class OpenWorker:
    """A process opening records for the parent, one case at a time, each time-bounded."""

    def __init__(self, log_dir: Path, timeout: float = CASE_TIMEOUT) -> None:
        self._timeout = timeout
        self._log_dir = log_dir
        self._process: subprocess.Popen[str] | None = None
        self._warm = False
        self._log: IO[bytes] | None = None
        self.restarts = 0

    def _start(self) -> subprocess.Popen[str]:
        if self._process is None:
            # Open for the worker's lifetime (its stderr); closed by _stop() or close().
            self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115
                dir=self._log_dir, suffix=".log", delete=False
            )
            self._process = subprocess.Popen(
                [sys.executable, "-W", "error", "-X", "faulthandler", __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                text=True,
            )
        return self._process

    def _stop(self) -> str:
        """Kill the worker; return the tail of what it wrote to stderr."""
        assert self._process is not None and self._log is not None
        self._process.kill()
        self._process.wait()
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._process = None
        self._warm = False
        self._log.close()
        lines = Path(self._log.name).read_text("utf-8", "replace").splitlines()
        self.restarts += 1
        # faulthandler: "Fatal Python error: ...", then frames, innermost first.
        fatal = [line for line in lines if line.startswith("Fatal Python error")]
        frames = [line.strip() for line in lines if line.strip().startswith("File ")]
        return " | ".join(fatal[:1] + frames[:1]) or " | ".join(lines[-3:])

    def open(
        self, cls: str, files: Sequence[Path], pristine: Sequence[Path], verify: bool
    ) -> tuple[str, str]:
        """Open and read a record in the worker: (outcome, detail).

        Outcomes: typed, correct, altered, untyped, crash (the worker died), hang.
        """
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        request = {
            "cls": cls,
            "files": [str(p) for p in files],
            "pristine": [str(p) for p in pristine],
            "verify": verify,
        }
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        timeout = self._timeout if self._warm else START_TIMEOUT
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        if not ready:
            self._stop()
            return "hang", f"no answer within {timeout} s"
        line = process.stdout.readline()
        if not line:
            return "crash", self._stop()
        self._warm = True
        answer = json.loads(line)
        return answer["outcome"], answer.get("detail", "")

    def close(self) -> None:
        """End the worker."""
        if self._process is not None:
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.close()
            self._process.wait(timeout=30)
            self._process.stdout.close()
            self._process = None
            assert self._log is not None
            self._log.close()


@dataclass(frozen=True)
class Target:
    """A record to damage: the class that opens it and its files, oldest first."""

    cls: str
    files: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.cls}({', '.join(self.files)})"


def sweep(
    worker: OpenWorker,
    pristine: Path,
    scratch: Path,
    target: Target,
    damages: Iterable[Damage],
    verify: bool,
    tally: Tally,
) -> None:
    """Open ``target`` once per damage, from a fresh copy, and count how each case ended.

    A case fails on an untyped error, inputs changed by the open, and with verify=True
    also on a crash, a hang, or values other than the intact record's, unless the flip
    is in a user block: one that still parses is another valid block, read as it says.
    """
    names = [*target.files, *(f"{name}mf.json" for name in target.files)]
    for damage in damages:
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir()
        for name in names:
            if (pristine / name).exists():
                shutil.copyfile(pristine / name, scratch / name)
        damage.apply(scratch)
        before = fingerprint(scratch)
        outcome, detail = worker.open(
            target.cls,
            [scratch / name for name in target.files],
            [pristine / name for name in target.files],
            verify,
        )
        where = f"{target} verify={verify}, {damage}"
        if fingerprint(scratch) != before:
            tally.count("failure", f"{where}: the open changed its input files")
        elif outcome in ("typed", "correct"):
            tally.count(outcome)
        elif outcome == "altered" and damage.in_user_block:
            tally.count("altered")
        elif outcome in ("altered", "crash", "hang") and not verify:
            kind = {"altered": "altered", "crash": "crashes", "hang": "hangs"}[outcome]
            tally.count(kind, f"{where}: {outcome} {detail}")
        else:
            tally.count("failure", f"{where}: {outcome} {detail}")


@dataclass
class Sweeper:
    """A worker and the directories a test's sweeps use (a context manager)."""

    root: Path
    worker: OpenWorker = field(init=False)
    pristine: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pristine = copy_fixtures(self.root / "pristine")
        self.worker = OpenWorker(self.root)

    def __enter__(self) -> Sweeper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.worker.close()

    def run(self, target: Target, damages: Iterable[Damage], verify: bool, tally: Tally) -> None:
        """Sweep ``target`` with ``damages``; check afterwards that the originals are intact."""
        originals = fingerprint(self.pristine)
        sweep(self.worker, self.pristine, self.root / "case", target, damages, verify, tally)
        assert fingerprint(self.pristine) == originals

    def size(self, name: str) -> int:
        """Size in bytes of a fixture file."""
        return (self.pristine / name).stat().st_size


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """Run ``call`` and assert it took less than ``seconds`` (a bound for in-process opens)."""
    start = time.monotonic()
    result = call()
    took = time.monotonic() - start
    assert took < seconds, f"took {took:.1f} s, more than {seconds} s"
    return result


if __name__ == "__main__":  # pragma: no cover
    _worker_main()
