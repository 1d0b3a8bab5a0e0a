"""A re-pack finds the newest manifest by name from the index this user saw last: no listing,
and a missing, damaged or stale memory costs only a listing, never a wrong patch."""

from __future__ import annotations

from pathlib import Path

import pytest

from ih5 import IH5MFRecord, RemoteOptions, pack_directory
from ih5.fs._usercache import cache_root
from ih5.pack._newest import KIND, PROBE_AHEAD, remembered
from ih5.store import ObjectStore, open_store
from tests.remote.helpers import make_source


def change(source: Path, text: str) -> None:
    (source / "note.txt").write_text(text)


def packed_history(url: str) -> list[int]:
    with IH5MFRecord(url, verify=True) as rec:
        return [entry.index for entry in rec.history()]


def store_of(bucket: str) -> ObjectStore:
    store = open_store(f"{bucket}/p")
    assert isinstance(store, ObjectStore)
    return store


def test_a_repack_lists_nothing_however_long_the_history(bucket: str, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", {"a.bin": b"a" * 1000})
    url = f"{bucket}/p/rec"
    first = pack_directory(source, url)
    assert first.transfer is not None and first.transfer.listings == 0  # a new record
    costs = []
    for step in range(6):
        change(source, f"state {step}")
        result = pack_directory(source, url)
        assert result.transfer is not None and result.transfer.listings == 0
        costs.append((result.transfer.requests, result.patch_index))
    assert [requests for requests, _ in costs] == [costs[0][0]] * 6
    assert [index for _, index in costs] == [1, 2, 3, 4, 5, 6]
    assert packed_history(url) == list(range(7))


def test_without_the_cache_a_repack_lists_once(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_source(tmp_path / "src", {"a.bin": b"a"})
    url = f"{bucket}/p/rec"
    pack_directory(source, url)
    monkeypatch.setenv("IH5_CACHE_DIR", "")
    change(source, "b")
    result = pack_directory(source, url)
    assert result.transfer is not None and result.transfer.listings == 1
    assert result.patch_index == 1


@pytest.mark.parametrize(("others", "listings"), [(2, 0), (PROBE_AHEAD + 2, 1)])
def test_patches_other_packers_published_since_are_stepped_over_or_listed(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, others: int, listings: int
) -> None:
    source = make_source(tmp_path / "src", {"a.bin": b"a"})
    url = f"{bucket}/p/rec"
    pack_directory(source, url)
    mine = cache_root()
    # Another machine (its own cache) packs on: this user's memory falls behind.
    monkeypatch.setenv("IH5_CACHE_DIR", str(tmp_path / "other-cache"))
    for step in range(others):
        change(source, f"other {step}")
        pack_directory(source, url)
    monkeypatch.setenv("IH5_CACHE_DIR", str(mine))
    change(source, "mine")
    result = pack_directory(source, url)
    assert result.transfer is not None and result.transfer.listings == listings
    assert result.patch_index == others + 1
    assert packed_history(url) == list(range(others + 2))


def test_a_record_shorter_than_remembered_is_listed_and_patched_right(
    bucket: str, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "src", {"a.bin": b"a"})
    url = f"{bucket}/p/rec"
    for step in range(3):
        change(source, f"state {step}")
        pack_directory(source, url)
    store = store_of(bucket)
    for name in store.names():
        store.remove(name)  # the record is deleted, then packed anew from scratch
    recreated = pack_directory(source, url)
    assert recreated.action == "created"
    assert recreated.transfer is not None and recreated.transfer.listings == 1
    change(source, "again")
    result = pack_directory(source, url)
    assert result.patch_index == 1
    assert packed_history(url) == [0, 1]


def test_a_damaged_cache_entry_costs_a_listing_only(bucket: str, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", {"a.bin": b"a"})
    url = f"{bucket}/p/rec"
    pack_directory(source, url)
    root = cache_root()
    assert root is not None
    entries = list((root / KIND).iterdir())
    assert entries
    for entry in entries:
        entry.write_bytes(b"ih5cache1 00000000\n9999")
    change(source, "b")
    result = pack_directory(source, url)
    assert result.transfer is not None and result.transfer.listings == 1
    assert packed_history(url) == [0, 1]


def test_a_manifest_left_parked_at_the_remembered_index_is_completed(
    bucket: str, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "src", {"a.bin": b"a"})
    url = f"{bucket}/p/rec"
    pack_directory(source, url)
    change(source, "b")
    pack_directory(source, url)
    store = store_of(bucket)
    # As if the packer of patch 1 died after its container: its manifest is only parked.
    manifest = store.read_bytes("rec.p1.ih5mf.json")
    store.upload_bytes(".rec.p1.ih5mf.json.otherhost-4242-0123abcd.staged", manifest)
    store.remove("rec.p1.ih5mf.json")
    change(source, "c")
    result = pack_directory(source, url)
    assert result.patch_index == 2
    assert store.read_bytes("rec.p1.ih5mf.json") == manifest
    assert packed_history(url) == [0, 1, 2]


def test_the_memory_is_per_endpoint(bucket: str, tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", {"a.bin": b"a"})
    url = f"{bucket}/p/rec"
    pack_directory(source, url)
    store = store_of(bucket)
    assert remembered(store, "rec") == 0
    elsewhere = open_store(f"{bucket}/p", RemoteOptions(endpoint="http://127.0.0.1:9"))
    assert isinstance(elsewhere, ObjectStore)
    assert remembered(elsewhere, "rec") is None
