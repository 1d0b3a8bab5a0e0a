"""User blocks remembered across processes: read once while a container is unchanged."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest

from ih5 import IH5Record
from ih5.format import _knownblocks as knownblocks
from ih5.format._chain import KNOWN_FROM, load_refs
from ih5.format._userblock import (
    IH5UserBlock,
    block_from_compact,
    compact_block,
    read_user_block_with_size,
)
from ih5.fs import read_entry, write_entry
from ih5.fs._filestate import racy_margin_ns
from ih5.record._opening import forget_process_caches


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache directory of this test's own, and a process that remembers nothing yet."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("IH5_CACHE_DIR", str(directory))
    forget_process_caches()
    yield directory
    forget_process_caches()


@pytest.fixture
def containers(tmp_path: Path) -> list[Path]:
    """The containers of a record long enough for the cache, whose files are settled."""
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec["x"] = 1
    for value in range(1, KNOWN_FROM):
        with IH5Record(tmp_path / "rec", "r+") as rec:
            rec.attrs["v"] = value
    files = [tmp_path / "rec.ih5", *(tmp_path / f"rec.p{k}.ih5" for k in range(1, KNOWN_FROM))]
    time.sleep(racy_margin_ns(files[-1].stat()) / 1e9 + 0.01)
    return files


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the container files whose user blocks are read from the file."""
    read: list[str] = []

    def counted(path: str | os.PathLike[str]) -> tuple[IH5UserBlock, int]:
        read.append(Path(path).name)
        return read_user_block_with_size(path)

    monkeypatch.setattr(knownblocks, "read_user_block_with_size", counted)
    return read


def test_a_new_process_reads_no_unchanged_user_block_again(
    containers: list[Path], cache: Path, reads: list[str]
) -> None:
    first = load_refs(containers)
    forget_process_caches()
    assert load_refs(containers) == first
    assert reads == [path.name for path in containers]


def test_a_changed_container_is_read_again(
    containers: list[Path], cache: Path, reads: list[str]
) -> None:
    load_refs(containers)
    os.utime(containers[1])  # any change of the file changes its stat key
    forget_process_caches()
    load_refs(containers)
    assert reads[len(containers) :] == ["rec.p1.ih5"]


def test_a_damaged_cache_entry_reads_as_missing(
    containers: list[Path], cache: Path, reads: list[str]
) -> None:
    expected = load_refs(containers)
    for entry in (cache / "userblocks").iterdir():
        entry.write_bytes(entry.read_bytes()[:-3] + b"!!!")
    forget_process_caches()
    assert load_refs(containers) == expected
    assert len(reads) == 2 * len(containers)


def test_a_short_record_keeps_no_cache_entry(
    containers: list[Path], cache: Path, reads: list[str]
) -> None:
    load_refs(containers[: KNOWN_FROM - 1])
    assert not (cache / "userblocks").exists()


def rewrite_rows(cache: Path, change: Callable[[list[object]], object]) -> None:
    """Replace every remembered block's row by ``change(row)``, under an intact CRC."""
    for entry in (cache / "userblocks").iterdir():
        raw = read_entry("userblocks", entry.name)
        assert raw is not None
        known = json.loads(raw)
        rows = {key: [size, change(row)] for key, (size, row) in known.items()}
        write_entry("userblocks", entry.name, json.dumps(rows).encode())


@pytest.mark.parametrize(
    "change",
    [
        lambda row: [*row[:2], "not-a-uuid", *row[3:]],  # patch uuid
        lambda row: [row[0], -1, *row[2:]],  # patch index
        lambda row: [*row[:4], "md5:00", row[5]],  # hashsum
        lambda row: [*row[:5], []],  # ub_exts
        lambda row: row[:5],  # a field missing
        lambda row: json.dumps(row),  # the text form of an older cache
    ],
)
def test_a_remembered_row_that_does_not_fit_is_read_from_the_file_again(
    containers: list[Path],
    cache: Path,
    reads: list[str],
    change: Callable[[list[object]], object],
) -> None:
    expected = load_refs(containers)
    rewrite_rows(cache, change)
    forget_process_caches()
    assert load_refs(containers) == expected
    assert reads == 2 * [path.name for path in containers]


def test_a_remembered_row_rebuilds_the_block_it_was_made_from() -> None:
    base = IH5UserBlock.create()
    patch = IH5UserBlock.create(base).model_copy(
        update={"hdf5_hashsum": "sha256:" + "0f" * 32, "ub_exts": {"x": {"y": [1, 2.5, None]}}}
    )
    uuids: dict[str, UUID] = {}
    for block in (base, patch):
        assert block_from_compact(json.loads(json.dumps(compact_block(block))), uuids) == block
    assert set(uuids) == {str(base.record_uuid), str(base.patch_uuid), str(patch.patch_uuid)}
