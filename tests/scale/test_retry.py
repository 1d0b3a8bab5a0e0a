"""A task run again, or twice at once, or killed and run again, publishes each change set once.

This is what lets an engine retry a task after its worker died: the commit of
a record happens only in its own task, through the commit protocol
(create-if-absent), and a second run finds the change set already published.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from ih5.pack import PackItem, PackOptions, PackOutcome, pack_many, plan_many
from ih5.pack._many import pack_item
from ih5.pack._tasks import local_pool

from .conftest import check_chain, edit_plates, is_long, kill_a_writer, make_plates, unpacks_to

pytestmark = [
    pytest.mark.skipif(os.name == "nt", reason="kills processes with SIGKILL"),
    pytest.mark.timeout(240),
]


def only_item(root: Path, out: Path) -> PackItem:
    (item,) = plan_many(root, out).items
    return item


def action(outcome: PackOutcome) -> str:
    assert outcome.result is not None, outcome.error
    return outcome.result.action


def test_a_task_run_again_after_it_published_writes_nothing(tmp_path: Path) -> None:
    root = make_plates(tmp_path / "plates", count=1, images=4)
    out = tmp_path / "archive"
    item = only_item(root, out)
    runs = [action(pack_item(item, PackOptions(), False)) for _ in range(2)]
    edit_plates(root, seed=1)
    runs += [action(pack_item(item, PackOptions(), False)) for _ in range(2)]
    assert runs == ["created", "unchanged", "patched", "unchanged"]
    check_chain(out, item.name, patches=1)


def both_at_once(item: PackItem) -> list[str]:
    """Run one item's task in two processes at the same time (an engine's retry while the
    first copy still runs)."""
    with ProcessPoolExecutor(2) as pool:
        pool.submit(os.getpid).result()  # both workers up before the race starts
        copies = [pool.submit(pack_item, item, PackOptions(), False) for _ in range(2)]
        return sorted(action(copy.result(timeout=120)) for copy in copies)


def test_two_copies_of_one_task_at_once_publish_one_container(tmp_path: Path) -> None:
    root = make_plates(tmp_path / "plates", count=1, images=30)
    out = tmp_path / "archive"
    item = only_item(root, out)
    assert both_at_once(item) == ["created", "unchanged"]
    edit_plates(root, seed=1)
    assert both_at_once(item) == ["patched", "unchanged"]
    check_chain(out, item.name, patches=1)


CHILD = """
import sys
from ih5.pack import PackItem, PackOptions
from ih5.pack._many import pack_item
source, record = sys.argv[1:3]
pack_item(PackItem(source, record, 0, 0, False), PackOptions(), False)
"""


def killed_then_run_again(item: PackItem, delay: float) -> str:
    """Start the task in a child, SIGKILL it ``delay`` s after it starts writing, run it here."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, item.source, item.record])
    try:
        kill_a_writer(Path(item.record).parent, {child.pid}, delay=delay)
    finally:
        child.wait(timeout=60)
    return action(pack_item(item, PackOptions(), False))


def test_a_task_killed_while_writing_and_run_again_publishes_exactly_once(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """Kills land while the container is written, sealed or published; the second run
    drops or rolls forward what the first left, and the chain gains one container."""
    root = make_plates(tmp_path / "plates", count=1, images=30)
    out = tmp_path / "archive"
    item = only_item(root, out)
    delays = random.Random(5)
    rounds = 12 if is_long(pytestconfig) else 2
    actions = [killed_then_run_again(item, delays.uniform(0.0, 0.05))]
    check_chain(out, item.name, patches=0)
    for patch in range(1, rounds + 1):
        edit_plates(root, seed=patch)
        actions.append(killed_then_run_again(item, delays.uniform(0.0, 0.05)))
        check_chain(out, item.name, patches=patch)
    assert set(actions) <= {"created", "patched", "unchanged"}
    assert unpacks_to(out / item.name, tmp_path / "back", root / "plate_000")


def in_thread(run: Callable[[], list[PackOutcome]]) -> tuple[threading.Thread, list[PackOutcome]]:
    found: list[PackOutcome] = []
    thread = threading.Thread(target=lambda: found.extend(run()))
    thread.start()
    return thread, found


def test_a_local_worker_killed_fails_only_what_was_left_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    root = make_plates(tmp_path / "plates", count=4, images=24)
    out = tmp_path / "archive"
    with local_pool(2) as pool:
        thread, outcomes = in_thread(lambda: pack_many(root, out, executor=pool))
        kill_a_writer(out)
        thread.join(timeout=120)
    errors = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert errors and all("a worker process died" in error for error in errors)
    again = {outcome.record_name: action(outcome) for outcome in pack_many(root, out, jobs=2)}
    for outcome in outcomes:
        # A failed task may have published before its pool broke: then it is unchanged now.
        expected = {"unchanged"} if outcome.error is None else {"created", "unchanged"}
        assert again[outcome.record_name] in expected
        check_chain(out, outcome.record_name, patches=0)
        assert unpacks_to(out / outcome.record_name, tmp_path / outcome.record_name, outcome.source)
