"""``pack-many`` into an S3 prefix: each plate directory its own record there, packed from its
newest manifest alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ih5 import IH5MFRecord, RemoteReadOnlyError, unpack_record
from ih5.cli import cli
from ih5.pack import pack_many, plan_many
from ih5.store import ObjectStore, open_store
from tests.remote.helpers import make_source, same_tree

PLATES = {"plate_1": {"a.bin": b"1" * 3000}, "plate 2": {"wells/B01.txt": b"B01"}}
NAMES = {"plate_1": "plate-1", "plate 2": "plate-2"}


def make_plates(root: Path) -> Path:
    for directory, files in PLATES.items():
        make_source(root / directory, files)
    (root / "README.txt").write_bytes(b"loose files at the root are not packed")
    return root


def names_at(url: str) -> list[str]:
    store = open_store(url)
    assert isinstance(store, ObjectStore)
    return store.names()


def test_pack_many_into_a_prefix_makes_one_record_per_plate_that_unpacks_equal(
    bucket: str, tmp_path: Path
) -> None:
    root = make_plates(tmp_path / "plates")
    prefix = f"{bucket}/archive/"
    outcomes = pack_many(root, prefix, jobs=2)
    assert [(o.record_name, o.error) for o in outcomes] == [("plate-1", None), ("plate-2", None)]
    for directory, name in NAMES.items():
        url = f"{bucket}/archive/{name}"
        outcome = next(o for o in outcomes if o.record_name == name)
        assert outcome.result is not None
        assert (outcome.result.action, outcome.result.url) == ("created", url)
        restored = tmp_path / "restored" / name
        unpack_record(url, restored)
        assert same_tree(root / directory, restored)
    # The records' own files and nothing else: no catalog, no staging leftovers.
    assert names_at(f"{bucket}/archive") == [
        "plate-1.ih5",
        "plate-1.ih5mf.json",
        "plate-2.ih5",
        "plate-2.ih5mf.json",
    ]


def test_pack_many_again_patches_only_the_changed_plate_downloading_no_container_bytes(
    bucket: str, tmp_path: Path
) -> None:
    root = make_plates(tmp_path / "plates")
    (root / "plate_1" / "big.bin").write_bytes(os.urandom(2 << 20))
    pack_many(root, f"{bucket}/archive", jobs=2)
    (root / "plate 2" / "wells" / "B02.txt").write_bytes(b"B02")
    outcomes = {o.record_name: o.result for o in pack_many(root, f"{bucket}/archive", jobs=2)}
    first, second = outcomes["plate-1"], outcomes["plate-2"]
    assert first is not None and second is not None
    assert (first.action, second.action) == ("unchanged", "patched")
    assert second.added == ("wells/B02.txt",)
    for result in (first, second):
        assert result.transfer is not None
        assert result.transfer.bytes_downloaded < 64 << 10  # a listing and a manifest
    with IH5MFRecord(f"{bucket}/archive/plate-2") as rec:
        assert rec.manifest is not None and rec.manifest.user_block.patch_index == 1
        rec.verify()


def test_the_plan_says_which_records_the_prefix_holds_already(bucket: str, tmp_path: Path) -> None:
    root = make_plates(tmp_path / "plates")
    prefix = f"{bucket}/archive"
    assert [item.exists for item in plan_many(root, prefix).items] == [False, False]
    pack_many(root, prefix, jobs=1)
    plan = plan_many(root, prefix + "/")
    assert plan.remote and plan.out_dir == prefix
    assert [(item.record, item.exists) for item in plan.items] == [
        (f"{prefix}/plate-1", True),
        (f"{prefix}/plate-2", True),
    ]
    assert [entry.path for entry in plan.skipped] == [str(root / "README.txt")]


def test_pack_many_refuses_a_read_only_http_prefix_before_packing_anything(
    tmp_path: Path, http_docs: tuple[Path, str]
) -> None:
    root = make_plates(tmp_path / "plates")
    directory, url = http_docs
    with pytest.raises(RemoteReadOnlyError, match="read-only"):
        plan_many(root, url)
    assert list(directory.iterdir()) == []


def test_pack_many_into_a_prefix_on_the_command_line(bucket: str, tmp_path: Path) -> None:
    root = make_plates(tmp_path / "plates")
    prefix = f"{bucket}/cli/"
    run = CliRunner().invoke(cli, ["pack-many", str(root), prefix, "--plan", "--json"])
    assert run.exit_code == 0, run.stderr
    assert [entry["record"] for entry in json.loads(run.stdout)["records"]] == [
        f"{bucket}/cli/plate-1",
        f"{bucket}/cli/plate-2",
    ]
    run = CliRunner().invoke(cli, ["pack-many", str(root), prefix, "--jobs", "2", "--json"])
    assert run.exit_code == 0, run.stderr
    rows = json.loads(run.stdout)
    assert [(row["record"], row["action"]) for row in rows] == [
        (f"{bucket}/cli/plate-1", "created"),
        (f"{bucket}/cli/plate-2", "created"),
    ]
    run = CliRunner().invoke(cli, ["pack-many", str(root), prefix])
    assert run.exit_code == 0, run.stderr
    assert "2 records: 2 unchanged" in run.stderr + run.stdout


def test_the_summary_of_a_remote_patch_says_how_many_bytes_were_uploaded(
    bucket: str, tmp_path: Path
) -> None:
    root = make_plates(tmp_path / "plates")
    prefix = f"{bucket}/cli"
    assert CliRunner().invoke(cli, ["pack-many", str(root), prefix]).exit_code == 0
    (root / "plate_1" / "new.txt").write_bytes(b"new")
    run = CliRunner().invoke(cli, ["pack-many", str(root), prefix])
    assert run.exit_code == 0, run.stderr
    said = run.stderr + run.stdout
    line = next(text for text in said.splitlines() if "plate-1.p1.ih5," in text)
    uploaded = int(line.rsplit("(", 1)[1].split(" bytes uploaded")[0])
    assert uploaded > 1000  # the patch and its manifest, not "0 bytes"


def test_local_workers_connect_as_the_caller_even_when_their_pool_started_earlier(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_plates(tmp_path / "plates")
    aws = {key: value for key, value in os.environ.items() if key.startswith("AWS_")}
    for key in aws:
        monkeypatch.delenv(key)
    # The workers' fork server starts (once per process) while no AWS_* variable is set.
    assert all(o.error is None for o in pack_many(root, tmp_path / "local", jobs=1))
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    outcomes = pack_many(root, f"{bucket}/archive", jobs=1)
    assert [(o.record_name, o.error) for o in outcomes] == [("plate-1", None), ("plate-2", None)]
