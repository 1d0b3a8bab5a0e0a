"""User blocks remembered across processes: read once while a container is unchanged."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ih5 import IH5Record
from ih5.format import _knownblocks as knownblocks
from ih5.format._chain import KNOWN_FROM, load_refs
from ih5.format._userblock import IH5UserBlock, read_user_block_with_size
from ih5.fs._filestate import racy_margin_ns
from ih5.record._opening import forget_process_caches


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache directory of this test's own, and a process that remembers nothing yet."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("IH5_CACHE_DIR", str(directory))
    forget_process_caches()
    yield directory
    forget_process_caches()


@pytest.fixture
def containers(tmp_path: Path) -> list[Path]:
    """The containers of a record long enough for the cache, whose files are settled."""
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec["x"] = 1
    for value in range(1, KNOWN_FROM):
        with IH5Record(tmp_path / "rec", "r+") as rec:
            rec.attrs["v"] = value
    files = [tmp_path / "rec.ih5", *(tmp_path / f"rec.p{k}.ih5" for k in range(1, KNOWN_FROM))]
    time.sleep(racy_margin_ns(files[-1].stat()) / 1e9 + 0.01)
    return files


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the container files whose user blocks are read from the file."""
    read: list[str] = []

    def counted(path: str | os.PathLike[str]) -> tuple[IH5UserBlock, int]:
        read.append(Path(path).name)
        return read_user_block_with_size(path)

    monkeypatch.setattr(knownblocks, "read_user_block_with_size", counted)
    return read


def test_a_new_process_reads_no_unchanged_user_block_again(
    containers: list[Path], cache: Path, reads: list[str]
) -> None:
    first = load_refs(containers)
    forget_process_caches()
    assert load_refs(containers) == first
    assert reads == [path.name for path in containers]


def test_a_changed_container_is_read_again(
    containers: list[Path], cache: Path, reads: list[str]
) -> None:
    load_refs(containers)
    os.utime(containers[1])  # any change of the file changes its stat key
    forget_process_caches()
    load_refs(containers)
    assert reads[len(containers) :] == ["rec.p1.ih5"]


def test_a_damaged_cache_entry_reads_as_missing(
    containers: list[Path], cache: Path, reads: list[str]
) -> None:
    expected = load_refs(containers)
    for entry in (cache / "userblocks").iterdir():
        entry.write_bytes(entry.read_bytes()[:-3] + b"!!!")
    forget_process_caches()
    assert load_refs(containers) == expected
    assert len(reads) == 2 * len(containers)


def test_a_short_record_keeps_no_cache_entry(
    containers: list[Path], cache: Path, reads: list[str]
) -> None:
    load_refs(containers[: KNOWN_FROM - 1])
    assert not (cache / "userblocks").exists()
