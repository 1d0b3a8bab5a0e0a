"""Writers whose lock does nothing: create-if-absent publishing alone keeps the chain whole.

N forked writers loop ``open r+ / create_patch / write w<pid>_<i> / commit`` while
their lock is useless: either a racer process deletes ``rec.ih5.lock`` in a loop
(a writer then locks a fresh inode while another holds the deleted one), or the
children patch ``file_lock`` to a no-op. Random children are SIGKILLed. Each
child appends a line to its own log only after a commit returned (``ack``) or a
refusal was raised (``ConflictError``/``RecordLockedError``); anything else is a
``failure`` carrying its traceback.

Afterwards: the record opens with verify, its chain has no fork, every
acknowledged change is in exactly the container it was acknowledged as, no
refused change is anywhere, and no child saw another exception type.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import pytest

import ih5.record._record as record_module
from ih5 import ConflictError, IH5MFRecord, IH5Record, RecordLockedError, pack_directory
from ih5.format import discover_containers, load_refs, validate_chain
from ih5.record import IH5Dataset

from .processes import Workers, acknowledge, acknowledged, workers

WRITERS = 4
LOCK_TIMEOUT = 0.05
RUN_SECONDS = 2.5
LONG_RUN_SECONDS = 10.0
LONG_TRIALS = 3
RACER = "racer"
REFUSALS = (ConflictError.__name__, RecordLockedError.__name__)


@dataclass
class Figures:
    """One variant's counters over its trials."""

    variant: str
    trials: int = 0
    acknowledged: int = 0
    conflicts: int = 0
    locked: int = 0
    kills: int = 0
    failures: int = 0


FIGURES: list[Figures] = []


@pytest.fixture(scope="module", autouse=True)
def _figures_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """With ``--long``, print the figures of every variant once the module is done."""
    yield
    long_run = bool(request.config.getoption("--long")) or os.environ.get("IH5_LONG") == "1"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if not long_run or reporter is None or not FIGURES:
        return
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        _write_table(reporter)


def _write_table(reporter: pytest.TerminalReporter) -> None:
    header = ("variant", "trials", "acked", "conflicts", "locked", "kills", "failures")
    reporter.write_line("")
    reporter.write_line("lost-lock suite")
    reporter.write_line(" ".join(f"{cell:>12}" for cell in header))
    for row in FIGURES:
        cells = (
            row.variant,
            row.trials,
            row.acknowledged,
            row.conflicts,
            row.locked,
            row.kills,
            row.failures,
        )
        reporter.write_line(" ".join(f"{cell!s:>12}" for cell in cells))


# --- the children --------------------------------------------------------------------


def _no_lock(
    path: str | os.PathLike[str], timeout: float | None = 30.0
) -> contextlib.nullcontext[Path]:
    return contextlib.nullcontext(Path(path))


def _disable_lock() -> None:
    """In a child: make the record's file lock a no-op (the in-process registry is fresh)."""
    setattr(record_module, "file_lock", _no_lock)  # noqa: B010 (a private name)


def _log_failure(log: Path, key: str) -> None:
    acknowledge(log, f"failure {key} {json.dumps(traceback.format_exc())}")


def write_loop(record: Path, log: Path, deadline: float, manifest: bool, no_lock: bool) -> None:
    """Commit ``w<pid>_<i> = i`` patches until ``deadline``; log every outcome."""
    if no_lock:
        _disable_lock()
    kind = IH5MFRecord if manifest else IH5Record
    pid = os.getpid()
    rng = random.Random(pid)
    i = 0
    while time.monotonic() < deadline:
        i += 1
        key = f"w{pid}_{i}"
        try:
            with kind(record, "r+", lock_timeout=LOCK_TIMEOUT) as rec:
                rec[key] = i
                rec.commit_patch()
                index = rec.user_block.patch_index
        except (ConflictError, RecordLockedError) as exc:
            acknowledge(log, f"{type(exc).__name__} {key}")
            time.sleep(rng.uniform(0, 0.003))
            continue
        except Exception:
            _log_failure(log, key)
            continue
        acknowledge(log, f"ack {key} {index}")


def pack_loop(record: Path, sources: Path, log: Path, deadline: float, no_lock: bool) -> None:
    """Add file ``w<pid>_<i>`` to this child's source directory and pack it, until
    ``deadline``; a refused run's file is removed again, so it is never packed later."""
    if no_lock:
        _disable_lock()
    pid = os.getpid()
    rng = random.Random(pid)
    source = sources / f"s{pid}"
    source.mkdir()
    i = 0
    while time.monotonic() < deadline:
        i += 1
        key = f"w{pid}_{i}"
        (source / key).write_text(str(i))
        try:
            result = pack_directory(source, record)
        except (ConflictError, RecordLockedError) as exc:
            (source / key).unlink()
            acknowledge(log, f"{type(exc).__name__} {key}")
            time.sleep(rng.uniform(0, 0.003))
            continue
        except Exception:
            (source / key).unlink()
            _log_failure(log, key)
            continue
        acknowledge(log, f"ack {key} {result.patch_index}")


def delete_lock_loop(lock: Path, deadline: float) -> None:
    """Delete the record's lock file over and over (an old tool cleaning up)."""
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        time.sleep(0.0005)


# --- one trial -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the children of one trial logged, and how many were killed."""

    acks: dict[str, int]
    refused: dict[str, str]
    failures: list[str]
    kills: int
    exit_codes: dict[str, int | None]


def _kill_some(pool: Workers, names: list[str], rng: random.Random, seconds: float) -> int:
    """SIGKILL a random subset of ``names`` at random times within the run."""
    victims = rng.sample(names, rng.randint(1, len(names) - 1))
    start = time.monotonic()
    schedule = sorted((rng.uniform(0.1, 0.9) * seconds, name) for name in victims)
    kills = 0
    for at, name in schedule:
        time.sleep(max(0.0, start + at - time.monotonic()))
        kills += pool.kill(name)
    return kills


def run_trial(
    tmp: Path,
    record: Path,
    variant: str,
    seconds: float,
    rng: random.Random,
) -> Outcome:
    """Run the children of ``variant`` against ``record`` for ``seconds``."""
    logs = tmp / "logs"
    logs.mkdir()
    sources = tmp / "sources"
    sources.mkdir()
    no_lock = variant not in ("deleted-lock", "mf-deleted-lock")
    deadline = time.monotonic() + seconds
    names = [f"w{n}" for n in range(WRITERS)]
    with workers(seconds + 60.0) as pool:
        if not no_lock:
            pool.start(RACER, delete_lock_loop, record.parent / "rec.ih5.lock", deadline)
        for name in names:
            log = logs / f"{name}.log"
            if variant.startswith("pack"):
                pool.start(name, pack_loop, record, sources, log, deadline, no_lock)
            else:
                manifest = variant.startswith("mf")
                pool.start(name, write_loop, record, log, deadline, manifest, no_lock)
        kills = _kill_some(pool, names, rng, seconds)
        codes = pool.join()
    acks: dict[str, int] = {}
    refused: dict[str, str] = {}
    failures: list[str] = []
    for name in names:
        for line in acknowledged(logs / f"{name}.log"):
            kind, key, rest = [*line.split(" ", 2), ""][:3]
            if kind == "ack":
                acks[key] = int(rest)
            elif kind in REFUSALS:
                refused[key] = kind
            else:
                failures.append(f"{name} {key}: {json.loads(rest)}")
    return Outcome(acks, refused, failures, kills, codes)


def _keys_by_container(directory: Path) -> tuple[list[int], dict[str, list[int]]]:
    """Validate the published chain (verify); return its indices and, for every
    ``w<pid>_<i>`` member, the indices of the containers that write it."""
    refs = validate_chain(load_refs(discover_containers(directory, "rec")), verify_hashsums=True)
    written: dict[str, list[int]] = {}
    for ref in refs:
        with h5py.File(ref.path, "r") as container:
            for key in container:
                if key.startswith("w"):
                    written.setdefault(key, []).append(ref.user_block.patch_index)
    return [ref.user_block.patch_index for ref in refs], written


MANIFEST_RACE = (
    "src/ih5/record/commit.py publish_container/_publish_manifest with "
    "src/ih5/store/_local.py LocalStore.publish: an opener completing a live writer's manifest "
    "(CommitProtocol.complete_manifest) hard-links and then unlinks the writer's staged "
    "manifest, so the writer's own os.link(staged, final) raises FileNotFoundError from "
    "commit_patch/pack_directory although its container and manifest are published"
)


def is_manifest_race(failure: str) -> bool:
    """The known src bug (see MANIFEST_RACE), told apart from any other failure."""
    last = failure.rstrip().splitlines()[-1]
    return (
        "in _publish_manifest" in failure
        and last.startswith("FileNotFoundError")
        and ".ih5mf.json." in last
        and ".staged' -> " in last
    )


def check_outcome(directory: Path, record: Path, variant: str, outcome: Outcome) -> list[str]:
    """Check every invariant; return the children's failures that are the known race."""
    known = [failure for failure in outcome.failures if is_manifest_race(failure)]
    others = [failure for failure in outcome.failures if not is_manifest_race(failure)]
    assert not others, "children saw other exceptions:\n" + "\n".join(others)
    killed = {name for name, code in outcome.exit_codes.items() if code == -9}
    unexpected = {
        name: code
        for name, code in outcome.exit_codes.items()
        if name not in killed and name != RACER and code != 0
    }
    assert not unexpected, f"children exited abnormally: {unexpected}"

    kind = IH5Record if variant in ("deleted-lock", "no-lock") else IH5MFRecord
    with kind(record, "r", verify=True) as rec:
        rec.verify()
        assert rec.strays() == []
        indices, written = _keys_by_container(directory)
        assert indices == list(range(len(indices))), f"chain has holes: {indices}"
        prev = [ref.user_block.prev_patch for ref in rec.chain.refs]
        assert len(set(prev)) == len(prev), "two containers follow the same patch: a fork"
        assert sorted(outcome.acks.values()) == sorted(set(outcome.acks.values())), (
            "one index acknowledged to two commits"
        )
        packing = variant.startswith("pack")
        if not packing:
            # A writer's key is new to its patch only; a packer re-adds its files that
            # another packer's run (a snapshot of another directory) removed.
            twice = {key: where for key, where in written.items() if len(where) > 1}
            assert not twice, f"changes written by two containers: {twice}"
        for key, index in outcome.acks.items():
            assert index in written.get(key, []), f"acknowledged {key} (index {index}) lost"
            if not packing:
                dataset = rec[key]
                assert isinstance(dataset, IH5Dataset)
                assert int(dataset[()]) == int(key.rsplit("_", 1)[1])
        leaked = sorted(key for key in outcome.refused if key in written)
        assert not leaked, f"refused changes were published: {leaked}"
    # A later writer (a real lock again) rolls forward what the killed left and commits.
    with kind(record, "r+") as rec:
        rec["after"] = 1
    with kind(record, "r", verify=True) as rec:
        assert "after" in rec
    return known


VARIANTS = ["deleted-lock", "no-lock", "mf-deleted-lock", "mf-no-lock", "pack-fresh", "pack"]


def _prepare(directory: Path, variant: str) -> Path:
    record = directory / "rec"
    if variant in ("deleted-lock", "no-lock"):
        with IH5Record(record, "w") as rec:
            rec["base"] = 0
    elif variant.startswith("mf"):
        with IH5MFRecord(record, "w") as rec:
            rec["base"] = 0
    elif variant == "pack":
        source = directory / "initial"
        source.mkdir()
        (source / "base").write_text("0")
        pack_directory(source, record)
    return record


@pytest.mark.parametrize("variant", VARIANTS)
def test_lost_lock_writers_never_fork_or_lose_acknowledged_commits(
    tmp_path: Path, variant: str, long_run: bool
) -> None:
    """Writers whose lock is useless, some SIGKILLed: the chain stays one verified chain
    holding every acknowledged commit and no refused one; refusals are the only errors."""
    seconds, trials = (LONG_RUN_SECONDS, LONG_TRIALS) if long_run else (RUN_SECONDS, 1)
    figures = Figures(variant)
    FIGURES.append(figures)
    rng = random.Random(f"{variant}-{os.getpid()}-{time.time_ns()}")
    known: list[str] = []
    for trial in range(trials):
        tmp = tmp_path / f"trial{trial}"
        directory = tmp / "records"
        directory.mkdir(parents=True)
        record = _prepare(directory, variant)
        outcome = run_trial(tmp, record, variant, seconds, rng)
        figures.trials += 1
        figures.acknowledged += len(outcome.acks)
        figures.conflicts += sum(v == ConflictError.__name__ for v in outcome.refused.values())
        figures.locked += sum(v == RecordLockedError.__name__ for v in outcome.refused.values())
        figures.kills += outcome.kills
        figures.failures += len(outcome.failures)
        known += check_outcome(directory, record, variant, outcome)
    assert figures.acknowledged > 0, "no commit was acknowledged: the run proves nothing"
    if known:
        # Every other invariant held; only the known src bug was seen (it is a race, so a
        # strict xfail mark would flip at random: tests/record/test_commit_protocol.py has
        # the deterministic strict one).
        pytest.xfail(f"{MANIFEST_RACE} (seen {len(known)} times)")
