"""Faults on the way to object storage: each a typed error naming the URL, nothing partial
visible, and the next run goes on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ih5 import (
    ConflictError,
    IH5MFRecord,
    IH5Record,
    RecordNotFoundError,
    RemoteAuthError,
    RemoteNotFoundError,
    RemoteOptions,
    RemoteUnavailableError,
    pack_directory,
)
from ih5.store import ObjectStore, open_store
from tests.remote.faulty_proxy import FaultPlan, faulty_proxy
from tests.remote.helpers import make_source
from tests.remote.servers import S3Server, run_moto

FAST = RemoteOptions(max_retries=2, retry_timeout=10.0)


@pytest.fixture
def proxy(s3_env: S3Server) -> Iterator[tuple[RemoteOptions, FaultPlan]]:
    """Options reaching the S3 server through a fault-injecting proxy, and its plan."""
    with faulty_proxy(s3_env.endpoint) as (endpoint, plan):
        yield RemoteOptions(endpoint=endpoint, max_retries=2, retry_timeout=10.0), plan


def _names(bucket: str) -> list[str]:
    store = open_store(f"{bucket}/p")
    assert isinstance(store, ObjectStore)
    return [name for name in store.names() if not name.startswith(".")]


def test_throttling_is_retried_with_backoff_and_the_pack_goes_through(
    bucket: str, tmp_path: Path, proxy: tuple[RemoteOptions, FaultPlan]
) -> None:
    options, plan = proxy
    plan.error_status, plan.errors_left = 503, 2
    source = make_source(tmp_path / "src", {"a.txt": b"a"})
    result = pack_directory(source, f"{bucket}/p/rec", remote=options)
    assert result.action == "created" and plan.injected == 2
    assert _names(bucket) == ["rec.ih5", "rec.ih5mf.json"]


def test_a_server_that_keeps_failing_is_remote_unavailable_and_publishes_nothing(
    bucket: str, tmp_path: Path, proxy: tuple[RemoteOptions, FaultPlan]
) -> None:
    options, plan = proxy
    plan.error_status, plan.errors_left = 500, -1
    source = make_source(tmp_path / "src", {"a.txt": b"a"})
    with pytest.raises(RemoteUnavailableError, match=f"{bucket}/p.*HTTP 500.*retry") as caught:
        pack_directory(source, f"{bucket}/p/rec", remote=options)
    assert isinstance(caught.value, ConnectionError)
    assert _names(bucket) == []


def test_a_connection_dropped_mid_upload_publishes_nothing_and_the_next_run_goes_on(
    bucket: str, tmp_path: Path, proxy: tuple[RemoteOptions, FaultPlan]
) -> None:
    options, plan = proxy
    source = make_source(tmp_path / "src", {"a.bin": os.urandom(50_000)})
    pack_directory(source, f"{bucket}/p/rec", remote=options)
    (source / "b.bin").write_bytes(os.urandom(50_000))
    plan.drop_uploads = True
    with pytest.raises(RemoteUnavailableError, match=f"{bucket}/p"):
        pack_directory(source, f"{bucket}/p/rec", remote=options)
    assert _names(bucket) == ["rec.ih5", "rec.ih5mf.json"]
    plan.drop_uploads = False
    assert pack_directory(source, f"{bucket}/p/rec", remote=options).patch_index == 1


def test_a_read_whose_connection_keeps_dropping_is_remote_unavailable(
    bucket: str, tmp_path: Path, proxy: tuple[RemoteOptions, FaultPlan]
) -> None:
    options, plan = proxy
    source = make_source(tmp_path / "src", {"a.bin": os.urandom(50_000)})
    pack_directory(source, f"{bucket}/p/rec", remote=options)
    plan.drop_get_bodies = True
    with pytest.raises(RemoteUnavailableError, match=f"{bucket}/p.*connection.*dropped"):
        IH5Record(f"{bucket}/p/rec", remote=options)


def test_a_packer_that_always_loses_the_race_gives_up_with_conflict_error(
    bucket: str, tmp_path: Path, proxy: tuple[RemoteOptions, FaultPlan]
) -> None:
    options, plan = proxy
    plan.refuse_conditional_puts = True
    source = make_source(tmp_path / "src", {"a.txt": b"a"})
    with pytest.raises(ConflictError, match=f"{bucket}/p/rec.ih5 was published by another"):
        pack_directory(source, f"{bucket}/p/rec", remote=options)
    assert _names(bucket) == []


def test_wrong_credentials_are_a_remote_auth_error_naming_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second S3 server that checks keys: "testing" is not one it issued.
    with run_moto(tmp_path, {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as server:
        for key, value in server.environment().items():
            monkeypatch.setenv(key, value)
        source = make_source(tmp_path / "src", {"a.txt": b"a"})
        with pytest.raises(RemoteAuthError, match="AWS_ACCESS_KEY_ID") as caught:
            pack_directory(source, "s3://some-bucket/p/rec", remote=FAST)
        assert isinstance(caught.value, PermissionError)


def test_a_missing_bucket_is_remote_not_found(s3_env: S3Server) -> None:
    with pytest.raises(RemoteNotFoundError, match="bucket no-such-bucket does not exist"):
        IH5Record("s3://no-such-bucket/p/rec", remote=FAST)


def test_a_url_that_is_not_a_record_is_record_not_found(bucket: str) -> None:
    with pytest.raises(RecordNotFoundError, match=f"{bucket}/p/rec.ih5"):
        IH5Record(f"{bucket}/p/rec")


def test_a_packer_killed_between_container_and_manifest_is_completed_by_the_next(
    bucket: str, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "src", {"a.txt": b"a"})
    local = tmp_path / "local"
    local.mkdir()
    pack_directory(source, local / "rec")
    store = open_store(f"{bucket}/p")
    assert isinstance(store, ObjectStore)
    # What a killed packer leaves: its parked manifest and its container, no manifest.
    manifest = (local / "rec.ih5mf.json").read_bytes()
    store.upload_bytes(".rec.ih5mf.json.otherhost-4242-0123abcd.staged", manifest)
    staged = tmp_path / "staged"
    staged.write_bytes((local / "rec.ih5").read_bytes())
    assert store.publish(staged, "rec.ih5")
    (source / "b.txt").write_bytes(b"b")
    result = pack_directory(source, f"{bucket}/p/rec")
    assert result.patch_index == 1
    assert store.read_bytes("rec.ih5mf.json") == manifest
    assert [name for name in store.names() if name.startswith(".")] == []
    with IH5MFRecord(f"{bucket}/p/rec") as rec:
        assert sorted(rec) == ["a.txt", "b.txt"]


def test_publishing_never_replaces_an_existing_object(bucket: str, tmp_path: Path) -> None:
    store = open_store(f"{bucket}/p")
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    assert store.publish(first, "x.ih5")
    assert not store.publish(second, "x.ih5")
    assert store.read_bytes("x.ih5") == b"first"
    assert second.exists()  # a refused publish leaves the staged file to its writer
