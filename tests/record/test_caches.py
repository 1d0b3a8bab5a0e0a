"""The per-user caches: verified hashsums, container facts and resolved trees.

Each spares work only; a changed file is hashed again, and a damaged, missing or
unwritable cache changes nothing a reader sees.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from ih5 import IH5Record, IntegrityError
from ih5.fs._filestate import racy_margin_ns
from ih5.record import _chain as chain_module
from ih5.record import _opening as opening
from ih5.record._facts import (
    FACTS_CACHE,
    ContainerFacts,
    facts_from_bytes,
    facts_to_bytes,
    read_facts,
)
from ih5.record._opening import Verify
from ih5.record._tree import Node, lookup, walk
from ih5.record._treecache import (
    SNAPSHOT_EVERY,
    chain_key,
    remember_tree,
    tree_from_bytes,
    tree_to_bytes,
)
from tests.helpers.nodes import as_dataset


def build(path: Path) -> Path:
    """A base and two patches: a dataset, a deletion, an attribute deletion, a new group."""
    with IH5Record(path, "w") as rec:
        rec["a/b/ds"] = np.arange(100_000)
        rec["a/gone"] = 1
        rec["a"].attrs["unit"] = "m"
    with IH5Record(path, "r+") as rec:  # opening starts the first patch
        del rec["a/gone"]
        del rec["a"].attrs["unit"]
        rec.commit_patch()
        rec.create_patch()
        rec["c/d"] = np.zeros(3)
        rec.attrs["top"] = 2
        rec.commit_patch()
    return path


@pytest.fixture(scope="module")
def settled_records(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two records whose files are old enough to be remembered as verified (not racy)."""
    intact = build(tmp_path_factory.mktemp("settled") / "rec")
    victim = build(tmp_path_factory.mktemp("victim") / "rec")
    newest = max(victim.parent.iterdir(), key=lambda path: path.stat().st_mtime_ns)
    time.sleep(racy_margin_ns(newest.stat()) / 1e9 + 0.05)
    return intact, victim


@pytest.fixture
def settled(settled_records: tuple[Path, Path]) -> Path:
    """A settled record that stays intact."""
    return settled_records[0]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache directory of this test's own; the process' facts forgotten."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("IH5_CACHE_DIR", str(directory))
    FACTS_CACHE.clear()
    yield directory
    FACTS_CACHE.clear()


def hashed_bytes(record: Path, verify: Verify = True) -> int:
    """How many bytes opening ``record`` hashed."""
    counted = [0]

    def progress(count: int) -> None:
        counted[0] += count

    IH5Record(record, verify=verify, progress=progress).close()
    return counted[0]


def payload_bytes(record: Path) -> int:
    with IH5Record(record, verify=False) as rec:
        return sum(path.stat().st_size - 1024 for path in rec.containers)


def tree_rows(record: Path) -> list[tuple[str, int, bool, dict[str, int]]]:
    with IH5Record(record, verify=False) as rec:
        return [
            (path, node.created, node.is_group, dict(node.attrs))
            for path, node in walk(rec.chain.root)
        ]


# --- verified hashsums ---------------------------------------------------------------


def test_an_unchanged_verified_record_opens_without_hashing_again(
    settled: Path, cache: Path
) -> None:
    assert hashed_bytes(settled) == payload_bytes(settled)
    assert hashed_bytes(settled) == 0


def test_verify_full_hashes_every_byte_however_often_it_was_verified(
    settled: Path, cache: Path
) -> None:
    hashed_bytes(settled)
    assert hashed_bytes(settled, verify="full") == payload_bytes(settled)


def test_record_verify_hashes_every_byte_however_often_it_was_verified(
    settled: Path, cache: Path
) -> None:
    hashed_bytes(settled)
    counted = [0]
    with IH5Record(settled) as rec:
        rec.verify(progress=lambda count: counted.__setitem__(0, counted[0] + count))
    assert counted[0] == payload_bytes(settled)


def test_a_container_changed_after_it_was_verified_is_hashed_again_and_refused(
    settled_records: tuple[Path, Path], cache: Path
) -> None:
    """Same size, timestamps set back: the inode's ctime still moves, so the cache misses."""
    record = settled_records[1]
    hashed_bytes(record)
    assert hashed_bytes(record) == 0
    base = record.with_suffix(".ih5")
    before = base.stat()
    with open(base, "r+b") as stream:
        stream.seek(before.st_size - 10)
        byte = stream.read(1)
        stream.seek(before.st_size - 10)
        stream.write(bytes([byte[0] ^ 0xFF]))
    os.utime(base, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(IntegrityError, match="is damaged"):
        IH5Record(record)


def test_a_container_written_just_now_is_hashed_on_every_open(tmp_path: Path, cache: Path) -> None:
    """Git's racy rule: a write within the timestamp's resolution could go unseen."""
    record = build(tmp_path / "fresh")
    soon = time.time_ns() + 60 * 10**9  # "now" for as long as the test runs
    for container in tmp_path.glob("fresh*.ih5"):
        os.utime(container, ns=(soon, soon))
    hashed_bytes(record)
    assert hashed_bytes(record) == payload_bytes(record)


def test_a_damaged_cache_entry_only_costs_a_hash(settled: Path, cache: Path) -> None:
    hashed_bytes(settled)
    for entry in (cache / "verified").iterdir():
        entry.write_bytes(b"ih5cache1 00000000\n{not json")
    assert hashed_bytes(settled) == payload_bytes(settled)
    assert hashed_bytes(settled) == 0


def test_a_cache_that_cannot_be_written_is_skipped(
    settled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    monkeypatch.setenv("IH5_CACHE_DIR", str(blocker / "cache"))
    FACTS_CACHE.clear()
    assert hashed_bytes(settled) == payload_bytes(settled)
    assert hashed_bytes(settled) == payload_bytes(settled)


def test_an_empty_cache_directory_setting_switches_the_cache_off(
    settled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IH5_CACHE_DIR", "")
    hashed_bytes(settled)
    assert hashed_bytes(settled) == payload_bytes(settled)


# --- facts and trees -----------------------------------------------------------------


def test_the_tree_read_from_the_caches_is_the_tree_read_from_the_containers(
    tmp_path: Path, cache: Path
) -> None:
    record = build(tmp_path / "rec")
    from_containers = tree_rows(record)
    assert any((cache / "trees").iterdir())
    FACTS_CACHE.clear()
    assert tree_rows(record) == from_containers  # from the tree cache
    shutil.rmtree(cache / "trees")
    FACTS_CACHE.clear()
    assert tree_rows(record) == from_containers  # from the facts cache
    assert not any(path.name == "gone" for path in map(Path, (row[0] for row in from_containers)))


def test_a_chain_that_grew_gets_its_own_tree(tmp_path: Path, cache: Path) -> None:
    record = build(tmp_path / "rec")
    tree_rows(record)
    with IH5Record(record, "r+") as rec:  # opening starts a patch
        rec["late"] = 1
    FACTS_CACHE.clear()
    assert "/late" in {row[0] for row in tree_rows(record)}


def test_a_chain_that_grew_reads_only_its_new_containers(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = build(tmp_path / "rec")
    with IH5Record(record, verify=False) as rec:
        remember_tree(rec.chain.refs, rec.chain.root)  # the tree of the three containers
    with IH5Record(record, "r+") as rec:
        rec["late"] = 1
        rec.attrs["top"] = 3
    expected = tree_rows(record)
    shutil.rmtree(cache / "facts", ignore_errors=True)
    with IH5Record(record, verify=False) as rec:
        (cache / "trees" / chain_key(rec.chain.refs)).unlink(missing_ok=True)
    FACTS_CACHE.clear()
    read: list[str] = []

    def counted(file: h5py.File) -> ContainerFacts:
        read.append(Path(file.filename).name)
        return read_facts(file)

    monkeypatch.setattr(opening, "read_facts", counted)
    assert tree_rows(record) == expected
    assert read == ["rec.p3.ih5"]


def test_a_commit_leaves_the_tree_of_the_grown_chain_for_the_next_opening(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = build(tmp_path / "rec")
    with IH5Record(record, "r+") as rec:
        rec["late/ds"] = np.arange(4)
        del rec["c"]
        rec["a"].attrs["unit"] = "km"
    FACTS_CACHE.clear()
    read: list[str] = []

    def counted(file: h5py.File) -> ContainerFacts:
        read.append(Path(file.filename).name)
        return read_facts(file)

    monkeypatch.setattr(opening, "read_facts", counted)
    from_writer = tree_rows(record)
    assert read == []
    shutil.rmtree(cache / "trees")
    shutil.rmtree(cache / "facts", ignore_errors=True)
    FACTS_CACHE.clear()
    assert tree_rows(record) == from_writer  # as the containers' facts resolve it


def count_container_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the containers whose facts are read from their files from now on."""
    read: list[str] = []

    def counted(file: h5py.File) -> ContainerFacts:
        read.append(Path(file.filename).name)
        return read_facts(file)

    monkeypatch.setattr(opening, "read_facts", counted)
    return read


def test_commits_write_a_large_tree_only_every_few_commits(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain_module, "SMALL_TREE_BYTES", 0)  # every tree counts as large
    record = build(tmp_path / "rec")
    written = len(list((cache / "trees").iterdir()))
    with IH5Record(record, "r+") as rec:
        for index in range(SNAPSHOT_EVERY * 2):
            rec.attrs["counter"] = index
            rec.commit_patch()
            rec.create_patch()
        rec.discard_patch()
    assert len(list((cache / "trees").iterdir())) - written == 2


def test_commits_write_a_small_tree_every_time(tmp_path: Path, cache: Path) -> None:
    record = build(tmp_path / "rec")
    written = len(list((cache / "trees").iterdir()))
    with IH5Record(record, "r+") as rec:
        for index in range(3):
            rec.attrs["counter"] = index
            rec.commit_patch()
            rec.create_patch()
        rec.discard_patch()
    assert len(list((cache / "trees").iterdir())) - written == 3


def test_an_opening_after_commits_between_trees_reads_no_container(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain_module, "SMALL_TREE_BYTES", 0)
    record = build(tmp_path / "rec")
    with IH5Record(record, "r+") as rec:
        rec["late/ds"] = np.arange(4)
        rec.commit_patch()
        rec.create_patch()
        rec.attrs["top"] = 5
    FACTS_CACHE.clear()
    read = count_container_reads(monkeypatch)
    from_caches = tree_rows(record)
    assert read == []
    shutil.rmtree(cache / "trees")
    shutil.rmtree(cache / "facts")
    FACTS_CACHE.clear()
    assert tree_rows(record) == from_caches  # as the containers' facts resolve it
    assert len(read) == 5


def test_a_commit_of_chunk_deltas_writes_the_whole_tree(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rec"
    with IH5Record(path, "w") as rec:
        rec.create_dataset("grid", data=np.zeros((64, 64)), chunks=(16, 16))
    with IH5Record(path, "r+") as rec:
        rec["grid"][0:16, 0:16] = 1.0  # type: ignore[index]
    FACTS_CACHE.clear()
    read = count_container_reads(monkeypatch)
    with IH5Record(path, verify=False) as rec:
        assert rec.chain.root.members()["grid"].deltas == [1]
    # Chunk deltas are not kept in the facts cache, so the writer left the tree itself.
    assert read == []


def test_damaged_facts_and_tree_entries_are_read_as_missing(tmp_path: Path, cache: Path) -> None:
    record = build(tmp_path / "rec")
    shutil.rmtree(cache / "trees")  # the writers left them: build them from the facts
    FACTS_CACHE.clear()
    expected = tree_rows(record)
    for kind in ("facts", "trees"):
        for entry in (cache / kind).iterdir():
            raw = bytearray(entry.read_bytes())
            raw[-2] ^= 0x01
            entry.write_bytes(bytes(raw))
    FACTS_CACHE.clear()
    assert tree_rows(record) == expected


def test_facts_survive_their_cache_encoding(tmp_path: Path) -> None:
    record = build(tmp_path / "rec")
    with IH5Record(record, verify=False) as rec:
        for index in range(len(rec.containers)):
            facts = read_facts(rec.chain.h5(index))
            assert facts_from_bytes(facts_to_bytes(facts)) == facts


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b"{}", b'[["/", 9, 0, {}, []]]', b'[["/", 0, 0, {}, ["x"]]]']
)
def test_facts_entries_that_do_not_fit_are_refused(raw: bytes) -> None:
    assert facts_from_bytes(raw) is None


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b'[[0, "", 0, 1, {}], [5, "x", 0, 1, {}]]', b'[[0, "", 0, 1, {}], [1]]']
)
def test_tree_entries_that_do_not_fit_are_refused(raw: bytes) -> None:
    assert tree_from_bytes(raw) is None


def test_a_tree_survives_its_cache_encoding(tmp_path: Path) -> None:
    record = build(tmp_path / "rec")
    with IH5Record(record, verify=False) as rec:
        decoded = tree_from_bytes(tree_to_bytes(rec.chain.root))
        assert decoded is not None
        expected = [(p, n.created, n.is_group, n.attrs) for p, n in walk(rec.chain.root)]
    assert [(p, n.created, n.is_group, n.attrs) for p, n in walk(decoded)] == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"7",
        b"[0, {}, [1, 2]]",
        b'[0, {"a": "x"}, {}]',
        b'[0, {}, {"d": [0, {}, ["x"]]}]',
        b'[0, {}, {"d": [0, {}]}]',
        b'[0, {}, {"g": [0, {}, {"d": "x"}]}]',
        b'[0, {}, {"g": [0, {}, {"d": [0, {}, 5]}]}]',
    ],
)
def test_nested_tree_entries_that_do_not_fit_are_refused(raw: bytes) -> None:
    """Anywhere in the entry, not only in the groups an open would build."""
    assert tree_from_bytes(raw) is None


def with_chunk_delta(path: Path) -> Path:
    """``build``, plus a chunked dataset and a patch that rewrites part of it (a chunk delta)."""
    build(path)
    with IH5Record(path, "r+") as rec:
        rec.create_dataset("a/b/chunked", data=np.arange(100), chunks=(10,))
    with IH5Record(path, "r+") as rec:
        as_dataset(rec["a/b/chunked"])[:10] = -1
    return path


def every_node(root: Node) -> list[tuple[str, int, bool, dict[str, int], list[int]]]:
    return [(p, n.created, n.is_group, dict(n.attrs), list(n.deltas)) for p, n in walk(root)]


def test_a_tree_from_the_cache_builds_a_group_s_members_when_they_are_first_asked_for(
    tmp_path: Path,
) -> None:
    record = with_chunk_delta(tmp_path / "rec")
    with IH5Record(record, verify=False) as rec:
        decoded = tree_from_bytes(tree_to_bytes(rec.chain.root))
        assert decoded is not None
        assert decoded.deferred is not None
        group_a = decoded.members()["a"]
        assert decoded.deferred is None
        assert group_a.is_group and group_a.deferred is not None  # not built yet
        assert every_node(decoded) == every_node(rec.chain.root)
    assert group_a.deferred is None


def test_a_partly_built_tree_encodes_as_the_whole_tree_does(tmp_path: Path) -> None:
    record = with_chunk_delta(tmp_path / "rec")
    with IH5Record(record, verify=False) as rec:
        whole = tree_to_bytes(rec.chain.root)
    decoded = tree_from_bytes(whole)
    assert decoded is not None
    lookup(decoded, "/c")  # builds the root's members only
    assert tree_to_bytes(decoded) == whole


def test_a_record_reopened_from_the_tree_cache_reads_chunk_deltas_alike(
    tmp_path: Path, cache: Path
) -> None:
    record = with_chunk_delta(tmp_path / "rec")
    FACTS_CACHE.clear()
    with IH5Record(record, verify=False) as rec:
        assert rec.chain.root.deferred is not None  # read from the tree the writer left
        assert rec.chain.resolve("/a/b/chunked").deltas
        assert as_dataset(rec["a/b/chunked"])[:12].tolist() == [-1] * 10 + [10, 11]


def test_a_tree_too_deep_for_the_json_encoder_is_not_cached_and_opens_alike(
    tmp_path: Path, cache: Path
) -> None:
    deep = "/".join(f"g{level}" for level in range(600))
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec[f"{deep}/ds"] = 7
    FACTS_CACHE.clear()
    with IH5Record(tmp_path / "rec", verify=False) as rec:
        assert as_dataset(rec[f"{deep}/ds"])[()] == 7
    assert not (cache / "trees").exists()
