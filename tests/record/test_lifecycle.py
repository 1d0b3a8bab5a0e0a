"""The record life cycle: open modes, patches, uncommitted data, history, verification, merge."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import ih5.record._commit
import ih5.record._opening
from ih5.errors import (
    ChainError,
    Ih5Error,
    IntegrityError,
    RecordExistsError,
    RecordModeError,
    RecordNotFoundError,
)
from ih5.format import (
    discover_containers,
    hashsum_container,
    read_user_block,
    write_user_block,
)
from ih5.record import IH5Dataset, IH5Group, IH5Record
from ih5.record._facts import FactsCache, NodeFact, NodeKind
from tests.helpers.nodes import as_dataset
from tests.helpers.trees import files_without_locks

from .helpers import untouched

PAYLOAD = np.frombuffer(b"IH5-PAYLOAD-MARK" * 64, dtype=np.uint8)
"""Recognisable dataset bytes, so a test can find them in the file and flip one."""


def state(group: IH5Group | h5py.Group) -> dict[str, Any]:
    """Everything a reader can see below ``group``: kinds, attributes, values."""
    seen: dict[str, Any] = {}

    def describe(name: str, obj: Any) -> None:
        attrs = {key: repr(obj.attrs[key]) for key in sorted(obj.attrs)}
        if isinstance(obj, (IH5Dataset, h5py.Dataset)):
            seen[name] = ("dataset", obj.dtype.str, obj.shape, repr(obj[()].tolist()), attrs)
        else:
            seen[name] = ("group", attrs)

    describe("/", group)
    group.visititems(describe)
    return seen


def read_state(source: Any, **kwargs: Any) -> dict[str, Any]:
    """The state of the record at ``source`` as a fresh reader sees it."""
    with IH5Record(source, "r", **kwargs) as rec:
        return state(rec)


def build(tmp_path: Path, patches: int = 2, name: str = "rec") -> Path:
    """A record with a base and ``patches`` committed patches, each changing something."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    with IH5Record(path, "w") as rec:
        rec["data"] = np.arange(10)
        rec["payload"] = PAYLOAD
        rec.create_group("grp/sub").attrs["depth"] = 2
        rec.attrs["title"] = "base"
    for index in range(1, patches + 1):
        with IH5Record(path, "r+") as rec:
            rec[f"p{index}"] = np.full(3, index)
            rec.attrs["title"] = f"patch {index}"
            if index == 1:
                del rec["grp/sub"]
    return path


def flip_payload_byte(container: Path) -> None:
    """Change one byte of PAYLOAD's raw data inside ``container``."""
    data = bytearray(container.read_bytes())
    offset = data.find(PAYLOAD.tobytes())
    assert offset > 0, "the payload bytes were not found in the container"
    data[offset + 3] ^= 0xFF
    container.write_bytes(bytes(data))


# --- open modes -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_open_missing_record_refused(tmp_path: Path, mode: str) -> None:
    with pytest.raises(RecordNotFoundError):
        IH5Record(tmp_path / "rec", mode)
    assert list(tmp_path.glob("*.ih5")) == []


@pytest.mark.parametrize("mode", ["w-", "x"])
def test_open_exclusive_create_refuses_existing_record(tmp_path: Path, mode: str) -> None:
    path = build(tmp_path, patches=1)
    before = files_without_locks(tmp_path)
    with pytest.raises(RecordExistsError):
        IH5Record(path, mode)
    assert files_without_locks(tmp_path) == before


@pytest.mark.parametrize("mode", ["w-", "x"])
def test_open_exclusive_create_makes_new_record(tmp_path: Path, mode: str) -> None:
    with IH5Record(tmp_path / "rec", mode) as rec:
        rec["x"] = 1
    assert read_state(tmp_path / "rec")["x"][3] == "1"


def test_open_mode_w_truncates_record(tmp_path: Path) -> None:
    path = build(tmp_path, patches=2)
    with IH5Record(path, "w") as rec:
        assert rec.has_patch
        assert list(rec) == []
        rec["fresh"] = [1, 2]
    assert [p.name for p in discover_containers(tmp_path, "rec")] == ["rec.ih5"]
    assert list(read_state(path)) == ["/", "fresh"]


def test_open_mode_w_discards_uncommitted_base(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    with pytest.raises(RuntimeError), IH5Record(path, "w") as rec:
        rec["stale"] = 1
        raise RuntimeError("abandon the base")
    with IH5Record(path, "w") as rec:
        assert list(rec) == []
    assert list(read_state(path)) == ["/"]


def test_open_mode_w_discards_pending_patch(tmp_path: Path) -> None:
    path = build(tmp_path, patches=1)
    with pytest.raises(RuntimeError), IH5Record(path, "r+") as rec:
        raise RuntimeError("leave a pending patch")
    with IH5Record(path, "w") as rec:
        rec["x"] = 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.ih5", "rec.ih5.lock"]


def test_open_mode_a_creates_missing_record(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "a") as rec:
        assert rec.has_patch
        rec["x"] = 1
    assert read_state(tmp_path / "rec")["x"][3] == "1"


def test_open_mode_a_opens_existing_record(tmp_path: Path) -> None:
    path = build(tmp_path, patches=1)
    before = read_state(path)
    with IH5Record(path, "a") as rec:
        assert untouched(rec)
        assert state(rec) == before
    assert read_state(path) == before


READ_ONLY_WRITES = {
    "create_patch": lambda rec: rec.create_patch(),
    "commit_patch": lambda rec: rec.commit_patch(),
    "discard_patch": lambda rec: rec.discard_patch(),
    "setitem": lambda rec: rec.__setitem__("new", 1),
    "delitem": lambda rec: rec.__delitem__("data"),
    "create_group": lambda rec: rec.create_group("g"),
    "create_dataset": lambda rec: rec.create_dataset("d", data=[1]),
    "set_attr": lambda rec: rec.attrs.__setitem__("title", "x"),
    "delete_attr": lambda rec: rec.attrs.__delitem__("title"),
    "write_values": lambda rec: rec["data"].__setitem__(0, 5),
    "copy_into_patch": lambda rec: rec["data"].copy_into_patch(),
    "copy": lambda rec: rec.copy("data", "data2"),
}


@pytest.mark.parametrize("write", READ_ONLY_WRITES.values(), ids=READ_ONLY_WRITES.keys())
def test_open_read_only_refuses_writes(tmp_path: Path, write: Any) -> None:
    path = build(tmp_path, patches=1)
    before = files_without_locks(tmp_path)
    with IH5Record(path, "r") as rec:
        with pytest.raises(RecordModeError):
            write(rec)
        assert not rec.has_patch
    assert files_without_locks(tmp_path) == before


@pytest.mark.parametrize("mode", ["", "R", "rw", "w+", "b", "rb"])
def test_open_unknown_mode_refused(tmp_path: Path, mode: str) -> None:
    with pytest.raises(RecordModeError, match="unknown mode"):
        IH5Record(tmp_path / "rec", mode)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ["r+", "a", "w", "w-", "x"])
def test_open_at_requires_read_only_mode(tmp_path: Path, mode: str) -> None:
    path = build(tmp_path, patches=1)
    before = files_without_locks(tmp_path)
    with pytest.raises(RecordModeError):
        IH5Record(path, mode, at=0)
    assert files_without_locks(tmp_path) == before


def test_open_at_shows_past_states(tmp_path: Path) -> None:
    path = tmp_path / "rec"
    states = []
    for index in range(3):
        with IH5Record(path, "a") as rec:
            rec[f"d{index}"] = index
        states.append(read_state(path))
    for index, expected in enumerate(states):
        with IH5Record(path, "r", at=index) as rec:
            assert state(rec) == expected
            assert rec.user_block.patch_index == index
            assert len(rec.containers) == index + 1


@pytest.mark.parametrize("at", [-1, 3, 100])
def test_open_at_unknown_state_refused(tmp_path: Path, at: int) -> None:
    path = build(tmp_path, patches=2)
    with pytest.raises(RecordNotFoundError):
        IH5Record(path, "r", at=at)


# --- create, commit, discard ------------------------------------------------


def test_commit_patch_makes_changes_visible_to_new_readers(tmp_path: Path) -> None:
    path = build(tmp_path, patches=0)
    with IH5Record(path, "r+") as rec:
        rec["new"] = [1, 2, 3]
        rec.attrs["title"] = "changed"
        rec.commit_patch()
        assert not rec.has_patch
        assert rec.user_block.patch_index == 1
    seen = read_state(path)
    assert seen["new"][3] == "[1, 2, 3]"
    assert seen["/"][1]["title"] == repr("changed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.ih5", "rec.ih5.lock", "rec.p1.ih5"]


def test_commit_patch_seals_user_block(tmp_path: Path) -> None:
    build(tmp_path, patches=1)
    base, patch = read_user_block(tmp_path / "rec.ih5"), read_user_block(tmp_path / "rec.p1.ih5")
    assert patch.record_uuid == base.record_uuid
    assert patch.prev_patch == base.patch_uuid
    assert patch.patch_index == 1
    assert patch.hdf5_hashsum == hashsum_container(tmp_path / "rec.p1.ih5")


def test_discard_patch_restores_committed_state(tmp_path: Path) -> None:
    path = build(tmp_path, patches=1)
    before = read_state(path)
    with IH5Record(path, "r+") as rec:
        rec["new"] = 1
        del rec["data"]
        rec.attrs["title"] = "changed"
        rec.discard_patch()
        assert not rec.has_patch
        assert state(rec) == before
        rec.create_patch()
        rec["other"] = 2
    after = read_state(path)
    assert "new" not in after
    assert after["other"][3] == "2"
    assert not list(tmp_path.glob(".*pending"))


def test_create_patch_twice_refused(tmp_path: Path) -> None:
    path = build(tmp_path, patches=0)
    with (
        IH5Record(path, "r+") as rec,
        pytest.raises(RecordModeError, match="already has an open patch"),
    ):
        rec.create_patch()


@pytest.mark.parametrize("finish", ["commit_patch", "discard_patch"])
def test_finish_patch_without_patch_refused(tmp_path: Path, finish: str) -> None:
    path = build(tmp_path, patches=0)
    with IH5Record(path, "r+") as rec:
        rec.commit_patch()
        with pytest.raises(RecordModeError, match="create_patch"):
            getattr(rec, finish)()


def test_close_with_commit_false_keeps_patch_for_later(tmp_path: Path) -> None:
    path = build(tmp_path, patches=0)
    before = read_state(path)
    rec = IH5Record(path, "r+")
    rec["kept"] = 7
    rec.close(commit=False)
    assert read_state(path) == before
    with IH5Record(path, "r+") as rec:
        assert rec.has_patch
        assert as_dataset(rec["kept"])[()] == 7


def test_context_exception_does_not_commit(tmp_path: Path) -> None:
    path = build(tmp_path, patches=1)
    before = read_state(path)
    with pytest.raises(KeyError), IH5Record(path, "r+") as rec:
        rec["new"] = 1
        raise KeyError("boom")
    assert read_state(path) == before
    assert [p.name for p in discover_containers(tmp_path, "rec")] == ["rec.ih5", "rec.p1.ih5"]


def test_context_exception_discards_the_patch(tmp_path: Path) -> None:
    """An exception inside ``with`` abandons the change set: no later writer publishes it."""
    path = build(tmp_path, patches=1)
    before = read_state(path)
    with pytest.raises(KeyError), IH5Record(path, "r+") as rec:
        rec["new"] = [4, 5]
        rec.attrs["title"] = "interrupted"
        raise KeyError("boom")
    with IH5Record(path, "r+") as rec:
        assert untouched(rec)
    assert read_state(path) == before
    assert len(discover_containers(tmp_path, "rec")) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rec.")]


@pytest.mark.parametrize("finish", ["commit_patch", "discard_patch"])
def test_suspended_patch_resumed_by_writer(tmp_path: Path, finish: str) -> None:
    path = build(tmp_path, patches=1)
    before = read_state(path)
    rec = IH5Record(path, "r+")
    rec["new"] = [4, 5]
    rec.attrs["title"] = "interrupted"
    rec.close(commit=False)
    with IH5Record(path, "r+") as rec:
        assert rec.has_patch
        assert as_dataset(rec["new"])[()].tolist() == [4, 5]
        assert rec.attrs["title"] == "interrupted"
        getattr(rec, finish)()
    after = read_state(path)
    if finish == "commit_patch":
        assert after["new"][3] == "[4, 5]"
        assert len(discover_containers(tmp_path, "rec")) == 3
    else:
        assert after == before
    assert not list(tmp_path.glob(".*pending"))


def test_reader_ignores_open_patch_of_live_writer(tmp_path: Path) -> None:
    path = build(tmp_path, patches=1)
    before = read_state(path)
    with IH5Record(path, "r+") as writer:
        writer["new"] = 1
        del writer["data"]
        writer.attrs["title"] = "uncommitted"
        with IH5Record(path, "r") as reader:
            assert state(reader) == before
            assert len(reader.containers) == 2
    assert "new" in read_state(path)


def make_foreign_uncommitted(tmp_path: Path) -> tuple[Path, Path]:
    """A record whose newest container sits under its final name without a hashsum."""
    path = build(tmp_path, patches=1)
    with IH5Record(path, "r+") as rec:
        rec["foreign"] = [9, 9]
        rec.attrs["title"] = "foreign"
    patch = tmp_path / "rec.p2.ih5"
    user_block = read_user_block(patch)
    write_user_block(patch, user_block.model_copy(update={"hdf5_hashsum": None}))
    return path, patch


def test_reader_ignores_foreign_uncommitted_container(tmp_path: Path) -> None:
    path, patch = make_foreign_uncommitted(tmp_path)
    with IH5Record(path, "r") as rec:
        assert "foreign" not in rec
        assert rec.attrs["title"] == "patch 1"
        assert patch not in rec.containers
        assert rec.user_block.patch_index == 1


@pytest.mark.parametrize("finish", ["commit_patch", "discard_patch"])
def test_writer_resumes_foreign_uncommitted_container(tmp_path: Path, finish: str) -> None:
    path, patch = make_foreign_uncommitted(tmp_path)
    with IH5Record(path, "r+") as rec:
        assert rec.has_patch
        assert as_dataset(rec["foreign"])[()].tolist() == [9, 9]
        getattr(rec, finish)()
    with IH5Record(path, "r") as rec:
        if finish == "commit_patch":
            assert as_dataset(rec["foreign"])[()].tolist() == [9, 9]
            assert read_user_block(patch).hdf5_hashsum == hashsum_container(patch)
        else:
            assert "foreign" not in rec
            assert not patch.exists()


# --- history and verification -----------------------------------------------


def test_history_lists_committed_containers(tmp_path: Path) -> None:
    path = build(tmp_path, patches=2)
    names = ["rec.ih5", "rec.p1.ih5", "rec.p2.ih5"]
    with IH5Record(path, "r+") as rec:
        rec["uncommitted"] = 1
        history = rec.history()
        rec.discard_patch()
    assert [entry.index for entry in history] == [0, 1, 2]
    for entry, name in zip(history, names, strict=True):
        file = tmp_path / name
        user_block = read_user_block(file)
        assert entry.files == (file,)
        assert entry.patch_uuid == str(user_block.patch_uuid)
        assert entry.hashsum == user_block.hdf5_hashsum == hashsum_container(file)
        assert entry.size == file.stat().st_size


def test_verify_accepts_intact_record(tmp_path: Path) -> None:
    path = build(tmp_path, patches=2)
    hashed: list[int] = []
    with IH5Record(path, "r") as rec:
        rec.verify(progress=hashed.append)
    payload = sum(p.stat().st_size - 1024 for p in discover_containers(tmp_path, "rec"))
    assert sum(hashed) == payload


def test_verify_detects_flipped_payload_byte(tmp_path: Path) -> None:
    build(tmp_path / "original", patches=2)
    copy = shutil.copytree(tmp_path / "original", tmp_path / "copy")
    with IH5Record(copy / "rec", "r") as rec:
        flip_payload_byte(copy / "rec.ih5")
        with pytest.raises(IntegrityError) as caught:
            rec.verify()
    assert caught.value.path == str(copy / "rec.ih5")
    with IH5Record(tmp_path / "original" / "rec", "r") as rec:
        rec.verify()


def test_open_without_verification_skips_hash_check(tmp_path: Path) -> None:
    build(tmp_path / "original", patches=1)
    copy = shutil.copytree(tmp_path / "original", tmp_path / "copy")
    flip_payload_byte(copy / "rec.ih5")
    with IH5Record(copy / "rec", "r", verify=False) as rec:
        assert as_dataset(rec["payload"])[()].tobytes() != PAYLOAD.tobytes()
        assert rec.attrs["title"] == "patch 1"


@pytest.mark.parametrize("container", ["rec.ih5", "rec.p1.ih5", "rec.p2.ih5"])
@pytest.mark.parametrize("mode", ["r", "r+", "a"])
def test_open_with_verification_detects_damage(tmp_path: Path, container: str, mode: str) -> None:
    path = build(tmp_path, patches=2)
    damaged = tmp_path / container
    data = bytearray(damaged.read_bytes())
    data[(1024 + len(data)) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as caught:
        IH5Record(path, mode)
    assert caught.value.path == str(damaged)
    assert container in str(caught.value)


# --- reopening ------------------------------------------------------------


def small_facts(count: int) -> dict[str, NodeFact]:
    return {f"/n{index}": NodeFact(NodeKind.GROUP, False, {}, ()) for index in range(count)}


def recording(computed: list[int], index: int) -> Callable[[], dict[str, NodeFact]]:
    """Facts that note in ``computed`` that they were computed."""

    def compute() -> dict[str, NodeFact]:
        computed.append(index)
        return {}

    return compute


def test_facts_cache_holds_chain_longer_than_any_container_count(tmp_path: Path) -> None:
    cache = FactsCache()
    computed: list[int] = []
    for _ in range(2):
        for index in range(2000):
            cache.get((f"uuid{index}", "hash"), recording(computed, index))
    assert computed == list(range(2000))


def test_facts_cache_bounds_paths(tmp_path: Path) -> None:
    cache = FactsCache(max_paths=10)
    for index in range(5):
        cache.get((f"uuid{index}", "hash"), lambda: small_facts(4))
    computed: list[int] = []
    for index in reversed(range(5)):
        cache.get((f"uuid{index}", "hash"), recording(computed, index))
    assert computed == [2, 1, 0]
    big = small_facts(50)
    assert cache.get(("huge", "hash"), lambda: big) is big
    assert cache.get(("huge", "hash"), lambda: {}) is big


def test_reopen_reuses_container_facts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build(tmp_path, patches=3)
    before = read_state(path)
    monkeypatch.setattr(ih5.record._opening, "read_facts", None)
    assert read_state(path) == before


# --- discovery ------------------------------------------------------------


def copy_of(source: str) -> Any:
    return lambda directory, target: shutil.copyfile(directory / source, directory / target)


def junk(directory: Path, target: str) -> None:
    (directory / target).write_bytes(b"not a container\n" * 100)


def another_record(directory: Path, target: str) -> None:
    build(directory, patches=1, name=target)


def a_directory(directory: Path, target: str) -> None:
    (directory / target).mkdir()


FOREIGN_FILES = [
    ("rec.ih5.bak", copy_of("rec.ih5")),
    ("rec.p1.ih5~", copy_of("rec.p1.ih5")),
    ("rec.p1.ih5.orig", copy_of("rec.p1.ih5")),
    ("rec.p1.h5", copy_of("rec.p1.ih5")),
    ("backup-rec.ih5", copy_of("rec.ih5")),
    ("other", another_record),
    ("rec-2", another_record),
    (".rec.p1.ih5.123-0123abcd.ih5tmp", copy_of("rec.p1.ih5")),
    (".rec.p2.ih5.pending~", junk),
    ("rec.p2.ih5.tmp", junk),
    ("rec.p7.ih5", a_directory),
    ("rec.ih5mf.json~", junk),
]


@pytest.mark.parametrize(("name", "make"), FOREIGN_FILES, ids=[n for n, _ in FOREIGN_FILES])
def test_discovery_ignores_foreign_files(tmp_path: Path, name: str, make: Any) -> None:
    path = build(tmp_path, patches=1)
    before = read_state(path)
    make(tmp_path, name)
    with IH5Record(path, "r") as rec:
        assert rec.containers == [tmp_path / "rec.ih5", tmp_path / "rec.p1.ih5"]
        assert state(rec) == before
    with IH5Record(path, "r+") as rec:
        rec["after"] = 1
    assert read_state(path)["after"][3] == "1"


# --- merge ----------------------------------------------------------------

STORAGE: dict[str, dict[str, Any]] = {
    "contiguous": {},
    "chunked": {"chunks": (7,)},
    "gzip": {"chunks": (16,), "compression": "gzip", "compression_opts": 7},
    "lzf-shuffle": {"chunks": (32,), "compression": "lzf", "shuffle": True},
    "fletcher32": {"chunks": (10,), "fletcher32": True},
    "fillvalue": {"fillvalue": -5},
    "resizable": {"chunks": (8,), "maxshape": (None,)},
}
STORAGE_PROPERTIES = [
    "dtype",
    "shape",
    "chunks",
    "compression",
    "compression_opts",
    "shuffle",
    "fletcher32",
    "fillvalue",
    "maxshape",
]


def build_merge_source(tmp_path: Path) -> Path:
    """A 3-patch record using every kind of change and storage."""
    path = build(tmp_path, patches=0)
    with IH5Record(path, "r+") as rec:
        for name, storage in STORAGE.items():
            rec.create_dataset(f"store/{name}", data=np.arange(100, dtype="i4"), **storage)
        rec.create_dataset("store/partial", shape=(20,), dtype="f8", fillvalue=1.5)
        rec["store/doomed"] = np.zeros(4)
        rec["store/gzip"].attrs["unit"] = "m"
        rec["strings"] = np.array(["a", "bc"], dtype=h5py.string_dtype())
    with IH5Record(path, "r+") as rec:
        rec["data"].attrs["changed"] = [1.0, 2.0]
        del rec["store/doomed"]
        del rec.attrs["title"]
        rec.create_group("grp/fresh").attrs["made"] = "patch 2"
    with IH5Record(path, "r+") as rec:
        del rec["grp"]
        rec.create_group("grp").attrs["again"] = True
        as_dataset(rec["store/partial"]).copy_into_patch()[3:5] = 7.0
    return path


def test_merge_files_keeps_content(tmp_path: Path) -> None:
    path = build_merge_source(tmp_path)
    with IH5Record(path) as rec:
        expected = state(rec)
        merged = rec.merge_files(tmp_path / "merged.ih5")
    assert merged == tmp_path / "merged.ih5"
    assert read_state([merged]) == expected
    with h5py.File(merged, "r") as plain:
        assert state(plain) == expected


@pytest.mark.parametrize("name", STORAGE)
def test_merge_files_keeps_dataset_storage(tmp_path: Path, name: str) -> None:
    path = build_merge_source(tmp_path)
    with IH5Record(path) as rec:
        merged = rec.merge_files(tmp_path / "merged.ih5")
    with h5py.File(tmp_path / "rec.p1.ih5", "r") as source, h5py.File(merged, "r") as out:
        original, copy = source["store"][name], out["store"][name]
        for prop in STORAGE_PROPERTIES:
            assert getattr(copy, prop) == getattr(original, prop), prop
        assert copy.id.get_create_plist().get_nfilters() == (
            original.id.get_create_plist().get_nfilters()
        )


def test_merge_files_writes_user_block_of_newest_container(tmp_path: Path) -> None:
    path = build_merge_source(tmp_path)
    with IH5Record(path) as rec:
        merged = rec.merge_files(tmp_path / "merged.ih5")
    newest, user_block = read_user_block(tmp_path / "rec.p3.ih5"), read_user_block(merged)
    assert user_block.record_uuid == newest.record_uuid
    assert user_block.patch_uuid == newest.patch_uuid
    assert user_block.patch_index == newest.patch_index == 3
    assert user_block.ub_exts == newest.ub_exts
    assert user_block.prev_patch is None
    assert user_block.hdf5_hashsum == hashsum_container(merged)


@pytest.mark.parametrize("at", [0, 1, 2])
def test_merge_files_later_patches_apply_on_top(tmp_path: Path, at: int) -> None:
    path = build_merge_source(tmp_path)
    with IH5Record(path, "r", at=at) as rec:
        merged = rec.merge_files(tmp_path / "merged.ih5")
    later = [tmp_path / f"rec.p{index}.ih5" for index in range(at + 1, 4)]
    assert read_state([merged, *later]) == read_state(path)
    assert read_state([merged]) == read_state(path, at=at)


def test_merge_files_chain_refuses_stale_containers(tmp_path: Path) -> None:
    path = build_merge_source(tmp_path)
    with IH5Record(path, "r", at=2) as rec:
        merged = rec.merge_files(tmp_path / "merged.ih5")
    with pytest.raises(ChainError):
        IH5Record([merged, tmp_path / "rec.p2.ih5", tmp_path / "rec.p3.ih5"])


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_merge_files_leaves_source_record_unchanged(tmp_path: Path, mode: str) -> None:
    path = build_merge_source(tmp_path)
    before_files = files_without_locks(tmp_path)
    with IH5Record(path, mode) as rec:
        if mode == "r+":
            rec.discard_patch()  # a record with an open patch cannot be merged
        before = state(rec)
        rec.merge_files(tmp_path / "merged.ih5")
        assert state(rec) == before
        assert rec.containers == discover_containers(tmp_path, "rec")
        if mode == "r+":
            rec.create_patch()
            rec["after"] = 1
    after_files = files_without_locks(tmp_path)
    assert {name: after_files[name] for name in before_files} == before_files
    if mode == "r+":
        assert read_state(path)["after"][3] == "1"


def test_merge_files_refuses_existing_target(tmp_path: Path) -> None:
    path = build(tmp_path, patches=1)
    target = tmp_path / "merged.ih5"
    target.write_bytes(b"precious")
    with IH5Record(path) as rec, pytest.raises(RecordExistsError):
        rec.merge_files(target)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir() if "merged" in p.name) == ["merged.ih5"]


def test_merge_files_refuses_open_patch(tmp_path: Path) -> None:
    path = build(tmp_path, patches=1)
    with IH5Record(path, "r+") as rec, pytest.raises(RecordModeError):
        rec.merge_files(tmp_path / "merged.ih5")
    assert not (tmp_path / "merged.ih5").exists()


def test_suspended_patch_waits_under_a_hidden_name_of_its_writer(tmp_path: Path) -> None:
    path = build(tmp_path)
    rec = IH5Record(path, "r+")
    rec["suspended"] = 1
    rec.close(commit=False)
    (pending,) = [p.name for p in tmp_path.glob(".rec.*")]
    assert pending.startswith(".rec.p3.ih5.")
    assert pending.endswith(f"-{os.getpid()}-{pending.split('-')[-1]}")
    assert pending.endswith(".pending")


def test_writer_sweeps_temp_files_of_dead_writers_beside_the_record(tmp_path: Path) -> None:
    path = build(tmp_path)
    stale = tmp_path / ".rec.p3.ih5mf.json.999999999-0123abcd.ih5tmp"
    other = tmp_path / ".other.ih5mf.json.999999999-0123abcd.ih5tmp"
    stale.write_bytes(b"{")
    other.write_bytes(b"{")
    IH5Record(path, "r+").close()
    assert not stale.exists()
    assert other.exists()


def test_close_after_a_commit_that_could_not_reopen_its_patch_raises_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit whose publish and unseal both failed leaves its patch file closed; closing
    then commits again (a typed error), never trips over the closed file."""
    path = build(tmp_path, patches=0)

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    rec = IH5Record(path, "r+")
    rec["x"] = 1
    monkeypatch.setattr(ih5.record._commit.CommitProtocol, "publish", disk_full)
    monkeypatch.setattr(ih5.record._commit.CommitProtocol, "unseal", disk_full)
    with pytest.raises(OSError) as first:
        rec.commit_patch()
    with pytest.raises(OSError) as second:
        rec.close()
    assert isinstance(first.value, Ih5Error) and isinstance(second.value, Ih5Error)
