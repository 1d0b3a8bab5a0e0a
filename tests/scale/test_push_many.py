"""push_many: one push task per record, into a moto S3 server, on a local pool and on Dask.

A push publishes create-if-absent, so a task run again, twice at once, or
again after its worker was killed mid-upload publishes every file once.
"""

from __future__ import annotations

import glob
import os
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from distributed import Client

from ih5 import pack_many, pull, push, push_many
from ih5.pack import PushItem, PushOutcome, plan_push, push_plan
from ih5.pack._pushing import push_item
from ih5.pack._tasks import local_pool
from ih5.record._commit import parse_staged_name
from ih5.store import ObjectStore, RemoteOptions, open_store
from tests.remote.servers import S3Server

from .conftest import edit_plates, executor_of, make_plates

pytestmark = [
    pytest.mark.skipif(os.name == "nt", reason="kills workers with SIGKILL"),
    pytest.mark.timeout(240),
]


def options_of(server: S3Server) -> RemoteOptions:
    """The server's settings spelled out: Dask workers do not share the test's environment."""
    return RemoteOptions(
        endpoint=server.endpoint,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        allow_http=True,
    )


def archive_of(tmp_path: Path, count: int, images: int = 4) -> tuple[Path, list[Path]]:
    """``count`` packed records of two containers each (a base and one patch)."""
    root = make_plates(tmp_path / "plates", count=count, images=images)
    out = tmp_path / "archive"
    pack_many(root, out)
    edit_plates(root, seed=1)
    pack_many(root, out)
    return out, [out / f"plate-{plate:03d}" for plate in range(count)]


def names_there(url: str, remote: RemoteOptions) -> list[str]:
    store = open_store(url, remote)
    assert isinstance(store, ObjectStore)
    try:
        return sorted(store.names())
    finally:
        store.close()


def files_of_record(record: Path) -> list[str]:
    """The record's containers and manifests (what a push copies), by name."""
    return sorted(
        path.name
        for path in record.parent.glob(f"{record.name}.*")
        if path.name.endswith((".ih5", ".ih5mf.json"))
    )


def pulls_back_the_same_bytes(url: str, record: Path, where: Path, remote: RemoteOptions) -> bool:
    pull(url, where, remote=remote)
    return all(
        (where / name).read_bytes() == (record.parent / name).read_bytes()
        for name in files_of_record(record)
    )


def copied(outcome: PushOutcome) -> tuple[str, ...]:
    assert outcome.result is not None, outcome.error
    return outcome.result.copied


def test_push_many_on_dask_pushes_every_record_and_a_rerun_copies_nothing(
    tmp_path: Path, client: Client, bucket: str, s3_server: S3Server
) -> None:
    _, records = archive_of(tmp_path, count=3)
    remote = options_of(s3_server)
    executor = executor_of(client)
    outcomes = push_many(records, f"{bucket}/plates/", executor=executor, remote=remote)
    assert [outcome.url for outcome in outcomes] == [
        f"{bucket}/plates/plate-{plate:03d}" for plate in range(3)
    ]
    for outcome, record in zip(outcomes, records, strict=True):
        assert copied(outcome) == tuple(files_of_record(record))
        assert pulls_back_the_same_bytes(outcome.url, record, tmp_path / "back", remote)
    again = push_many(records, f"{bucket}/plates", executor=executor, remote=remote)
    assert [copied(outcome) for outcome in again] == [()] * 3


def test_one_record_with_another_history_there_fails_alone(
    tmp_path: Path, bucket: str, s3_server: S3Server
) -> None:
    _, records = archive_of(tmp_path / "one", count=3)
    _, others = archive_of(tmp_path / "two", count=1)
    remote = options_of(s3_server)
    push(others[0], f"{bucket}/plates/plate-000", remote=remote)  # same name, other record
    outcomes = push_many(records, f"{bucket}/plates", jobs=2, remote=remote)
    assert outcomes[0].error is not None and "different histories" in outcomes[0].error
    assert [len(copied(outcome)) for outcome in outcomes[1:]] == [4, 4]
    assert names_there(f"{bucket}/plates", remote) == sorted(
        files_of_record(others[0]) + files_of_record(records[1]) + files_of_record(records[2])
    )


def test_two_copies_of_one_push_task_at_once_publish_each_file_once(
    tmp_path: Path, bucket: str, s3_server: S3Server
) -> None:
    """The copy that loses the race for a name pushes again and finds it there."""
    _, (record,) = archive_of(tmp_path, count=1, images=24)
    remote = options_of(s3_server)
    (item,) = plan_push([record], f"{bucket}/plates")
    with local_pool(2) as pool:
        copies = [pool.submit(push_item, item, remote) for _ in range(2)]
        outcomes = [copy.result(timeout=120) for copy in copies]
    assert [outcome.error for outcome in outcomes] == [None, None]
    assert names_there(f"{bucket}/plates", remote) == files_of_record(record)
    assert pulls_back_the_same_bytes(item.url, record, tmp_path / "back", remote)


def kill_a_pusher(pids: set[int], deadline: float = 60.0) -> int:
    """SIGKILL the first of ``pids`` seen staging a file for upload; return its pid.

    A push stages each container in its store's private directory under a name
    that carries its writer's pid, and drops it once uploaded, so the kill lands
    mid-push.
    """
    pattern = os.path.join(tempfile.gettempdir(), "ih5-remote-*", ".*")
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        for path in glob.glob(pattern):
            staged = parse_staged_name(os.path.basename(path))
            if staged is not None and staged.pid in pids:
                os.kill(staged.pid, signal.SIGKILL)
                return staged.pid
        time.sleep(0.001)
    raise AssertionError("no worker was seen staging a file for upload")


def test_a_worker_killed_mid_push_leaves_every_remote_record_whole(
    tmp_path: Path, client: Client, bucket: str, s3_server: S3Server
) -> None:
    """Dask runs the killed worker's push again elsewhere: every record ends up there whole,
    each file once, with the local bytes."""
    _, records = archive_of(tmp_path, count=4, images=24)
    remote = options_of(s3_server)
    pids = set(client.run(os.getpid).values())
    with ThreadPoolExecutor(1) as driver:
        running = driver.submit(
            push_many, records, f"{bucket}/plates", executor=executor_of(client), remote=remote
        )
        killed = kill_a_pusher(pids)
        outcomes = running.result(timeout=180)
    assert killed not in set(client.run(os.getpid).values())
    assert [outcome.error for outcome in outcomes] == [None] * 4
    finals = [name for name in names_there(f"{bucket}/plates", remote) if not name.startswith(".")]
    assert finals == sorted(name for record in records for name in files_of_record(record))
    for outcome, record in zip(outcomes, records, strict=True):
        assert pulls_back_the_same_bytes(outcome.url, record, tmp_path / "back", remote)


def test_push_plan_keeps_the_given_order_and_refuses_two_records_of_one_name(
    tmp_path: Path,
) -> None:
    _, records = archive_of(tmp_path, count=2)
    items = [PushItem(str(record), f"s3://nowhere/{record.name}") for record in records]
    assert push_plan([], jobs=2) == []
    with pytest.raises(ValueError, match="would both be pushed to s3://b/p/plate-000"):
        plan_push([records[0], tmp_path / "elsewhere" / "plate-000"], "s3://b/p")
    assert [item.url for item in plan_push(reversed(records), "s3://b/p/")] == [
        "s3://b/p/plate-001",
        "s3://b/p/plate-000",
    ]
    assert items[0].url == "s3://nowhere/plate-000"
