"""Gates: FIFOs that let every waiter through at once, opened by whoever holds the path."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ih5.fs._gate import find_gate, make_gate, open_gate, take_gate


def test_gate_lets_every_waiter_through_when_opened(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "gate")
    make_gate(path)
    waits = [find_gate(path) for _ in range(3)]
    results: list[bool] = []

    def wait(index: int) -> None:
        found = waits[index]
        assert found is not None
        with found:
            results.append(found.wait(30.0))

    threads = [threading.Thread(target=wait, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    opener = take_gate(path)  # anyone holding the path may open it, not only its maker
    assert opener is not None
    open_gate(opener)
    for thread in threads:
        thread.join(30.0)
    assert results == [True, True, True]


def test_wait_at_a_gate_nobody_opens_times_out(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "gate")
    make_gate(path)
    found = find_gate(path)
    assert found is not None
    with found:
        assert found.wait(0.01) is False


def test_no_gate_is_found_where_there_is_none_or_only_the_one_passed(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "gate")
    assert find_gate(path) is None
    assert take_gate(path) is None
    make_gate(path)
    found = find_gate(path)
    assert found is not None
    found.close()
    assert find_gate(path, passed=found.inode) is None


def test_a_plain_file_is_not_a_gate(tmp_path: Path) -> None:
    path = tmp_path / "gate"
    path.write_bytes(b"")
    assert find_gate(os.fspath(path)) is None
    assert take_gate(os.fspath(path)) is None
