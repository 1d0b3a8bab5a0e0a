"""Strays under a remote record's prefix: the local rules (record/_strays.py), reported by
``ih5 log URL`` and ``ih5 verify URL`` (which exits 1), and warned about on opening."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ih5 import IH5Record, pack_directory
from ih5.cli import cli
from ih5.errors import StrayFileWarning
from ih5.store import ObjectStore, open_store
from tests.remote.helpers import make_source


def packed(bucket: str, tmp_path: Path) -> tuple[str, ObjectStore]:
    """A record of two containers at s3://BUCKET/p/rec, and its store."""
    source = make_source(tmp_path / "src", {"a.txt": b"a"})
    url = f"{bucket}/p/rec"
    pack_directory(source, url)
    (source / "b.txt").write_bytes(b"b")
    pack_directory(source, url)
    store = open_store(f"{bucket}/p")
    assert isinstance(store, ObjectStore)
    return url, store


def put(store: ObjectStore, tmp_path: Path, name: str, data: bytes) -> None:
    staged = tmp_path / "put"
    staged.write_bytes(data)
    assert store.publish(staged, name)


def test_verify_url_reports_a_copied_container_and_an_orphan_manifest_and_exits_1(
    bucket: str, tmp_path: Path
) -> None:
    url, store = packed(bucket, tmp_path)
    put(store, tmp_path, "rec.p01.ih5", store.read_bytes("rec.p1.ih5"))
    put(store, tmp_path, "rec.p7.ih5mf.json", store.read_bytes("rec.p1.ih5mf.json"))
    run = CliRunner().invoke(cli, ["verify", url, "--json"])
    assert run.exit_code == 1, run.stderr
    report = json.loads(run.stdout)
    assert (report["ok"], report["containers"]) == (False, 2)
    strays = {entry["files"][0]: entry for entry in report["strays"]}
    assert set(strays) == {f"{bucket}/p/rec.p01.ih5", f"{bucket}/p/rec.p7.ih5mf.json"}
    assert strays[f"{bucket}/p/rec.p01.ih5"]["index"] == 1
    assert "rename it to rec.p1.ih5" in strays[f"{bucket}/p/rec.p01.ih5"]["reason"]
    assert "without its container rec.p7.ih5" in strays[f"{bucket}/p/rec.p7.ih5mf.json"]["reason"]
    run = CliRunner().invoke(cli, ["verify", url])
    assert run.exit_code == 1
    assert f"stray: {bucket}/p/rec.p01.ih5" in run.stderr + run.stdout


def test_verify_url_of_a_record_without_strays_exits_0(bucket: str, tmp_path: Path) -> None:
    url, _ = packed(bucket, tmp_path)
    run = CliRunner().invoke(cli, ["verify", url, "--json"])
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["strays"] == []


def test_log_url_lists_the_strays_after_the_chain(bucket: str, tmp_path: Path) -> None:
    url, store = packed(bucket, tmp_path)
    put(store, tmp_path, "rec.p9.ih5mf.json", store.read_bytes("rec.p1.ih5mf.json"))
    run = CliRunner().invoke(cli, ["log", url, "--json"])
    assert run.exit_code == 0, run.stderr
    entries = json.loads(run.stdout)
    assert [(entry["index"], entry["status"]) for entry in entries] == [
        (0, "ok"),
        (1, "ok"),
        (9, "stray"),
    ]
    assert entries[-1]["files"] == [f"{bucket}/p/rec.p9.ih5mf.json"]


def test_opening_warns_about_strays_without_listing_again(bucket: str, tmp_path: Path) -> None:
    url, store = packed(bucket, tmp_path)
    put(store, tmp_path, "rec.p01.ih5", store.read_bytes("rec.p1.ih5"))
    with pytest.warns(StrayFileWarning, match=r"rec\.p01\.ih5: a container of this record"):
        rec = IH5Record(url)
    with rec:
        remote = rec.store
        assert isinstance(remote, ObjectStore)
        assert remote.stats.listings == 1
        assert sorted(rec) == ["a.txt", "b.txt"]
