"""File state keys and the racy-timestamp rule: what may be remembered about a file."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from ih5.fs._filestate import (
    COARSE_MARGIN_NS,
    FINE_MARGIN_NS,
    StatMemo,
    identity_of,
    is_settled,
    racy_margin_ns,
    stat_key,
)

SECOND = 1_000_000_000


def stamp(path: Path, ns: int) -> os.stat_result:
    """Set the file's modification time; ctime becomes now, as any change makes it."""
    os.utime(path, ns=(ns, ns))
    return os.stat(path)


def test_a_write_of_the_same_size_changes_the_key(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one")
    before = stat_key(os.stat(path))
    stamp(path, time.time_ns() - 10 * SECOND)
    path.write_bytes(b"two")
    assert stat_key(os.stat(path)) != before


def test_the_identity_is_the_same_file_whatever_its_state(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one")
    before = stat_key(os.stat(path), 1024)
    path.write_bytes(b"longer")
    assert identity_of(stat_key(os.stat(path))) == identity_of(before)


def with_times(info: os.stat_result, mtime_ns: int, ctime_ns: int) -> os.stat_result:
    """``info`` with other modification and change times (as another file system stamps)."""
    seconds = [info.st_atime, mtime_ns / SECOND, ctime_ns / SECOND]
    nanos = [info.st_atime_ns, mtime_ns, ctime_ns]
    return os.stat_result([*info[:7], 0, 0, 0, *seconds, *nanos, 0, 0, 0])


def test_whole_second_timestamps_get_the_coarse_margin(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    coarse = with_times(os.stat(path), 1_700_000_000 * SECOND, 1_700_000_002 * SECOND)
    assert racy_margin_ns(coarse) == COARSE_MARGIN_NS


def test_sub_second_timestamps_get_the_fine_margin(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    fine = with_times(os.stat(path), 1_700_000_000 * SECOND + 123, 1_700_000_000 * SECOND + 456)
    assert racy_margin_ns(fine) == FINE_MARGIN_NS


def test_a_file_stamped_just_now_is_racy(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    info = os.stat(path)
    assert not is_settled(info, max(info.st_mtime_ns, info.st_ctime_ns))


def test_a_file_is_settled_once_its_margin_has_passed(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    info = os.stat(path)
    newest = max(info.st_mtime_ns, info.st_ctime_ns)
    assert is_settled(info, newest + racy_margin_ns(info) + 1)


def test_a_file_stamped_in_the_future_is_racy(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    info = stamp(path, time.time_ns() + 3600 * SECOND)
    assert not is_settled(info, time.time_ns())


def settled_file(path: Path, data: bytes) -> Path:
    """A file whose timestamps lie clearly in the past when it is next read."""
    path.write_bytes(data)
    time.sleep(racy_margin_ns(os.stat(path)) / SECOND + 0.01)
    return path


def test_the_memo_reads_an_unchanged_settled_file_once(tmp_path: Path) -> None:
    path = settled_file(tmp_path / "f", b"data")
    memo: StatMemo[bytes] = StatMemo()
    reads: list[int] = []

    def read(info: os.stat_result, taken: int) -> bytes:
        reads.append(1)
        return path.read_bytes()

    assert memo.get(path, read) == memo.get(path, read) == b"data"
    assert len(reads) == 1


def test_the_memo_reads_a_changed_file_again(tmp_path: Path) -> None:
    path = settled_file(tmp_path / "f", b"old!")
    memo: StatMemo[bytes] = StatMemo()
    memo.get(path, lambda info, taken: path.read_bytes())
    path.write_bytes(b"new!")
    assert memo.get(path, lambda info, taken: path.read_bytes()) == b"new!"


def test_the_memo_does_not_remember_a_racy_read(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"data")
    stamp(path, time.time_ns() + 3600 * SECOND)
    memo: StatMemo[bytes] = StatMemo()
    reads: list[int] = []

    def read(info: os.stat_result, taken: int) -> bytes:
        reads.append(1)
        return path.read_bytes()

    memo.get(path, read)
    memo.get(path, read)
    assert len(reads) == 2


def test_the_memo_keeps_at_most_its_limit(tmp_path: Path) -> None:
    memo: StatMemo[bytes] = StatMemo(limit=2)
    paths = [tmp_path / f"f{number}" for number in range(3)]
    for path in paths:
        path.write_bytes(b"x")
    time.sleep(racy_margin_ns(os.stat(paths[-1])) / SECOND + 0.01)
    reads: list[str] = []

    def reader(path: Path) -> Callable[[os.stat_result, int], bytes]:
        def read(info: os.stat_result, taken: int) -> bytes:
            reads.append(path.name)
            return b"x"

        return read

    for path in [*paths, paths[0]]:
        memo.get(path, reader(path))
    assert reads == ["f0", "f1", "f2", "f0"]
