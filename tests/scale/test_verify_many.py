"""verify_many hashes small containers together: fewer tasks than containers, each container
still with its own verdict."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

from ih5.pack import pack_directory, verify_many

P = ParamSpec("P")
T = TypeVar("T")


class CountingPool(ThreadPoolExecutor):
    """A thread pool that counts the tasks it was given."""

    def __init__(self) -> None:
        super().__init__(2)
        self.submitted = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def record_with_small_patches(tmp_path: Path, patches: int) -> Path:
    """A base holding 4 MiB and ``patches`` patches of a few KiB each."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(4 << 20))
    record = tmp_path / "archive" / "rec"
    record.parent.mkdir()
    pack_directory(source, record)
    for patch in range(patches):
        (source / "small.txt").write_text(f"change {patch}")
        pack_directory(source, record)
    return record


def test_small_containers_share_tasks_and_each_keeps_its_own_verdict(tmp_path: Path) -> None:
    record = record_with_small_patches(tmp_path, patches=12)
    with open(record.parent / "rec.p7.ih5", "r+b") as damaged:
        damaged.seek(-64, os.SEEK_END)
        damaged.write(b"\xff" * 8)
    with CountingPool() as pool:
        (check,) = verify_many([record], executor=pool)
    assert pool.submitted < 13 // 2
    assert [Path(container.container).name for container in check.containers] == ["rec.ih5"] + [
        f"rec.p{index}.ih5" for index in range(1, 13)
    ]
    assert [container.status for container in check.containers] == ["ok"] * 7 + ["damaged"] + [
        "ok"
    ] * 5
