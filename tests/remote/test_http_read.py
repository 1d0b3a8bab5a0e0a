"""Reading records where an HTTP server serves them: no download, found by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ih5 import IH5Record, IntegrityError, RecordModeError, RecordNotFoundError
from tests.helpers.nodes import as_dataset


def _write_record(directory: Path) -> None:
    with IH5Record(directory / "rec", "w") as rec:
        rec["a/values"] = np.arange(100_000, dtype="f8")
        rec.attrs["operator"] = "ada"
    with IH5Record(directory / "rec", "r+") as rec:
        if not rec.has_patch:  # opening 'r+' starts a patch once issue 11 is in
            rec.create_patch()
        rec["b"] = np.ones(10, "u1")
        del rec["a/values"]
        rec["a/values"] = np.arange(5, dtype="i4")


def test_a_record_served_over_http_opens_and_reads_like_the_local_one(
    http_docs: tuple[Path, str],
) -> None:
    directory, url = http_docs
    _write_record(directory)
    with IH5Record(f"{url}/rec") as remote, IH5Record(directory / "rec") as local:
        assert remote.url == f"{url}/rec"
        assert sorted(remote) == sorted(local)
        assert as_dataset(remote["a/values"])[:].tolist() == [0, 1, 2, 3, 4]
        assert remote.attrs["operator"] == "ada"
        assert [entry.index for entry in remote.history()] == [0, 1]
        assert [entry.size for entry in remote.history()] == [
            entry.size for entry in local.history()
        ]


def test_http_discovery_follows_the_chain_by_name_one_request_per_container(
    http_docs: tuple[Path, str],
) -> None:
    directory, url = http_docs
    _write_record(directory)
    with IH5Record(f"{url}/rec") as remote:
        store = remote.store
        # Two containers and the first missing name; their first blocks hold the structure.
        assert store.stats.requests == 3  # type: ignore[attr-defined]


def test_verify_streams_a_remote_record_and_finds_damage(http_docs: tuple[Path, str]) -> None:
    directory, url = http_docs
    _write_record(directory)
    with IH5Record(f"{url}/rec") as remote:
        remote.verify()
    damaged = directory / "rec.p1.ih5"
    raw = bytearray(damaged.read_bytes())
    raw[-1] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    with IH5Record(f"{url}/rec") as remote, pytest.raises(IntegrityError, match=url):
        remote.verify()


def test_a_url_without_a_record_is_record_not_found_naming_the_url(
    http_docs: tuple[Path, str],
) -> None:
    _, url = http_docs
    with pytest.raises(RecordNotFoundError, match=f"{url}/nothing.ih5"):
        IH5Record(f"{url}/nothing")


def test_a_remote_record_refuses_writing_modes(http_docs: tuple[Path, str]) -> None:
    directory, url = http_docs
    _write_record(directory)
    with pytest.raises(RecordModeError, match="read-only"):
        IH5Record(f"{url}/rec", "r+")


def test_a_file_url_is_the_local_record(http_docs: tuple[Path, str]) -> None:
    directory, _ = http_docs
    _write_record(directory)
    shutil.copytree(directory, directory.parent / "copy")
    with IH5Record(f"file://{directory.parent / 'copy'}/rec", "r+") as rec:
        if not rec.has_patch:  # opening 'r+' starts a patch once issue 11 is in
            rec.create_patch()
        rec["c"] = np.zeros(3)
    with IH5Record(directory.parent / "copy" / "rec") as rec:
        assert "c" in rec
