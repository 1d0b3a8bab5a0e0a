"""The per-user cache directory: entries read back whole or not at all, and it stays bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ih5.fs import _usercache as usercache
from ih5.fs._usercache import read_entry, write_entry


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IH5_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_an_entry_reads_back_as_written(cache: Path) -> None:
    write_entry("trees", "a.json", b"[1, 2]")
    assert read_entry("trees", "a.json") == b"[1, 2]"


def test_a_damaged_or_foreign_entry_reads_as_missing(cache: Path) -> None:
    write_entry("trees", "a.json", b"[1, 2]")
    entry = cache / "trees" / "a.json"
    entry.write_bytes(entry.read_bytes()[:-1] + b"3")
    assert read_entry("trees", "a.json") is None
    entry.write_bytes(b"[1, 2]")
    assert read_entry("trees", "a.json") is None


def test_the_oldest_entries_go_beyond_the_kinds_count(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(usercache.LIMITS, "trees", (3, 1 << 20))
    monkeypatch.setattr(usercache, "PRUNE_EVERY", 1)
    for number in range(5):
        write_entry("trees", f"e{number}.json", b"[]")
        os.utime(cache / "trees" / f"e{number}.json", ns=(number, number))
    assert sorted(path.name for path in (cache / "trees").iterdir()) == [
        "e2.json",
        "e3.json",
        "e4.json",
    ]


def test_the_oldest_entries_go_beyond_the_kinds_byte_budget(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(usercache.LIMITS, "facts", (100, 2500))
    monkeypatch.setattr(usercache, "PRUNE_EVERY", 1)
    for number in range(4):
        write_entry("facts", f"e{number}.json", b"x" * 1000)
        os.utime(cache / "facts" / f"e{number}.json", ns=(number, number))
    assert sorted(path.name for path in (cache / "facts").iterdir()) == ["e2.json", "e3.json"]


def test_switched_off_nothing_is_written_or_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IH5_CACHE_DIR", "")
    write_entry("trees", "a.json", b"[]")
    assert read_entry("trees", "a.json") is None
    assert not any(tmp_path.iterdir())


def test_the_default_place_is_the_users_cache_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IH5_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert usercache.cache_root() == Path("/somewhere/cache/ih5")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG spec says
    assert usercache.cache_root() == Path.home() / ".cache" / "ih5"


def test_pruning_scans_the_directory_only_every_so_many_writes(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan costs more than a write: between prunes a kind may overshoot its count."""
    monkeypatch.setitem(usercache.LIMITS, "trees", (2, 1 << 20))
    monkeypatch.setattr(usercache, "PRUNE_EVERY", 4)
    monkeypatch.setattr(usercache, "_WRITES", {"trees": 0})  # counting from a prune
    for number in range(4):
        write_entry("trees", f"e{number}.json", b"[]")
    assert len(list((cache / "trees").iterdir())) == 4
    write_entry("trees", "e4.json", b"[]")
    assert len(list((cache / "trees").iterdir())) == 2
