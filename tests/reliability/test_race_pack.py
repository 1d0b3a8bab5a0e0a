"""Pack and unpack while a racer process swaps files, directories and symlinks at random.

Properties, over many runs:

- no read outside the source: a unique secret outside the source (the target of
  the links the racer swaps in) never appears in any archive;
- no write outside the destination: the directory the racer's links point at
  stays empty while unpacking;
- nothing acknowledged is lost: every archive ``pack_directory`` returned for
  unpacks byte for byte (each file against its hashsum) in a quiet directory.

A run may be refused with a PackError ("retry when it is quiet"); that is the
expected answer to a tree that changes under it. The default run takes a few
seconds; ``--long`` runs a minute per phase and prints the figures.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from ih5 import PackError, pack_directory, unpack_record

SECRET = b"RACE-SECRET-" + os.urandom(8).hex().encode()
DIRS = ("d0", "d1", "d2/deep")
FILES = ("f0.bin", "f1.txt", "f2.npy")


def _content(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([0, 10, 4096, 70_000]))


def _build_source(root: Path, rng: random.Random) -> None:
    for directory in DIRS:
        (root / directory).mkdir(parents=True, exist_ok=True)
        for name in FILES:
            (root / directory / name).write_bytes(_content(rng))


def _quietly(action: Callable[..., object], *args: object) -> None:
    # The tree moves under the racer too: a failed step just tries something else.
    with contextlib.suppress(OSError):
        action(*args)


def _swap_file_for_link(path: Path, secret: Path, rng: random.Random) -> None:
    aside = path.with_name(path.name + ".aside")
    os.rename(path, aside)
    os.symlink(secret, path)
    time.sleep(rng.random() * 0.002)
    os.unlink(path)
    os.rename(aside, path)


def _swap_dir_for_link(path: Path, outside: Path, rng: random.Random) -> None:
    aside = path.with_name(path.name + ".aside")
    os.rename(path, aside)
    os.symlink(outside, path)
    time.sleep(rng.random() * 0.002)
    os.unlink(path)
    os.rename(aside, path)


def _grow(path: Path, rng: random.Random) -> None:
    with open(path, "ab") as handle:
        handle.write(rng.randbytes(rng.choice([1, 5000, 100_000])))


def _rewrite(path: Path, rng: random.Random) -> None:
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(_content(rng))
    os.replace(fresh, path)


def _race(source: Path, dest: Path, secret: Path, outside: Path, stop: Event, seed: int) -> None:
    """Swap things in ``source`` and below ``dest`` until told to stop."""
    rng = random.Random(seed)
    while not stop.is_set():
        directory = rng.choice(DIRS)
        file = source / directory / rng.choice(FILES)
        choice = rng.randrange(6)
        if choice == 0:
            _quietly(_swap_file_for_link, file, secret, rng)
        elif choice == 1:
            _quietly(_swap_dir_for_link, source / directory, outside, rng)
        elif choice == 2:
            _quietly(_grow, file, rng)
        elif choice == 3:
            _quietly(_rewrite, file, rng)
        else:
            # Unpacking: replace a directory the unpacker made by a link to outside.
            target = dest / directory
            aside = dest / f"{directory.replace('/', '_')}.moved"
            _quietly(os.rename, target, aside)
            _quietly(os.symlink, outside, target)
        # Bursts and lulls: a lull lets some runs through, so acknowledged archives get checked.
        time.sleep(0.05 if rng.random() < 0.08 else rng.random() * 0.001)


@pytest.fixture
def racer(tmp_path: Path) -> Iterator[tuple[Path, Path, Path, Path]]:
    """Start the racer on a fresh source tree; always stop (and if need be kill) it."""
    source, dest, secret, outside = (
        tmp_path / "src",
        tmp_path / "dest",
        tmp_path / "secret" / "secret.txt",
        tmp_path / "outside",
    )
    secret.parent.mkdir()
    secret.write_bytes(SECRET * 100)
    outside.mkdir()
    _build_source(source, random.Random(1))
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    process = context.Process(
        target=_race, args=(source, dest, secret, outside, stop, 7), daemon=True
    )
    process.start()
    try:
        yield source, dest, secret, outside
    finally:
        stop.set()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)


def _archived(directory: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in directory.rglob("*") if p.is_file() and not p.is_symlink()
    )


@pytest.mark.timeout(600)
def test_race_pack_and_unpack_never_leave_their_trees_nor_lose_an_acknowledged_archive(
    tmp_path: Path,
    racer: tuple[Path, Path, Path, Path],
    long_run: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, dest, _, outside = racer
    seconds = 30.0 if long_run else 1.5
    outcomes: Counter[str] = Counter()
    acknowledged: list[Path] = []

    deadline = time.monotonic() + seconds
    # On a loaded machine a lull may come late: go on (bounded) until one run got through.
    last_chance = deadline + 60.0
    run = 0
    packs = 0
    while time.monotonic() < deadline or (not acknowledged and time.monotonic() < last_chance):
        record = tmp_path / "out" / f"rec{run % 4}"
        run += 1
        packs += 1
        try:
            pack_directory(source, record)
        except PackError as exc:
            kind = "changed" if "quiet" in str(exc) else "link leaving the source"
            outcomes[f"pack refused: {kind}"] += 1
        else:
            outcomes["pack acknowledged"] += 1
            acknowledged.append(record)
            # Right away, in a directory nobody races: IntegrityError if a byte is off.
            unpack_record(record, tmp_path / "quiet" / str(run))
            assert SECRET not in _archived(tmp_path / "quiet" / str(run))
            outcomes["acknowledged archives unpacked exactly"] += 1
        assert SECRET not in _archived(tmp_path / "out"), "a file outside the source was archived"

    assert acknowledged, "no pack run was acknowledged; the racer leaves no quiet moment"
    deadline = time.monotonic() + seconds
    trash = tmp_path / "trash"
    trash.mkdir()
    while time.monotonic() < deadline:
        if dest.exists():
            # Moved away first: the racer keeps writing into whatever is called ``dest``.
            os.rename(dest, trash / str(run))
        run += 1
        try:
            unpack_record(acknowledged[-1], dest)
        except PackError:
            outcomes["unpack refused (destination changed)"] += 1
        else:
            outcomes["unpack completed"] += 1
        assert list(outside.iterdir()) == [], "unpacking wrote outside the destination"

    if long_run:
        with capsys.disabled():
            unpacks = sum(v for k, v in outcomes.items() if k.startswith("unpack "))
            print(f"\nrace suite: {packs} pack runs, {unpacks} unpack runs under the racer")
            for name, count in sorted(outcomes.items()):
                print(f"  {name}: {count}")
