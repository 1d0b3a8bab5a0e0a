"""IH5MFRecord: manifests written with every commit, checked on open, extensions inherited."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ih5.errors import ManifestError, UserBlockTooLargeError
from ih5.format import IH5UserBlock, read_user_block
from ih5.manifest import IH5Manifest, IH5MFRecord, IH5UBExtManifest, check_manifest
from ih5.record import IH5Record
from tests.helpers.nodes import as_dataset
from tests.helpers.trees import files_without_locks

from .helpers import MY_EXTS, build_mf_record, content


def manifest_of(container: Path) -> IH5Manifest:
    return IH5Manifest.load(container.with_name(container.name + "mf.json"))


def commit(record: Path, cls: type[IH5Record] = IH5MFRecord, **kwargs: Any) -> Path:
    """Commit one small patch; return the new container."""
    with cls(record, "r+") as rec:
        rec.attrs["n"] = len(rec.containers)
        if kwargs:
            assert isinstance(rec, IH5MFRecord)
            rec.commit_patch(**kwargs)
    return newest(record)


def newest(record: Path) -> Path:
    with IH5Record(record) as rec:
        return rec.containers[-1]


def content_of(record: Path, cls: type[IH5Record]) -> dict[str, Any]:
    with cls(record) as rec:
        return content(rec)


# --- opening checks the newest manifest ---------------------------------------------


def break_missing(record: Path) -> None:
    (record.parent / "rec.p1.ih5mf.json").unlink()


def break_modified(record: Path) -> None:
    path = record.parent / "rec.p1.ih5mf.json"
    raw = bytearray(path.read_bytes())
    raw[raw.index(b'"title"') + 1] ^= 0x20  # "title" -> "Title": still valid JSON
    path.write_bytes(bytes(raw))


def break_swapped(record: Path) -> None:
    shutil.copyfile(record.parent / "rec.ih5mf.json", record.parent / "rec.p1.ih5mf.json")


BREAKS = {"missing": break_missing, "modified": break_modified, "swapped": break_swapped}


@pytest.mark.parametrize("mode", ["r", "r+", "a"])
@pytest.mark.parametrize("damage", sorted(BREAKS))
def test_mfrecord_open_refuses_bad_manifest_naming_both_files(
    tmp_path: Path, damage: str, mode: str
) -> None:
    record = build_mf_record(tmp_path)
    BREAKS[damage](record)
    before = files_without_locks(tmp_path)
    with pytest.raises(ManifestError) as info:
        IH5MFRecord(record, mode)
    message = str(info.value)
    assert str(tmp_path / "rec.p1.ih5") in message
    assert str(tmp_path / "rec.p1.ih5mf.json") in message
    assert info.value.path == str(tmp_path / "rec.p1.ih5mf.json")
    assert files_without_locks(tmp_path) == before


@pytest.mark.parametrize("damage", sorted(BREAKS))
def test_mfrecord_open_refused_leaves_record_writable(tmp_path: Path, damage: str) -> None:
    record = build_mf_record(tmp_path)
    BREAKS[damage](record)
    with pytest.raises(ManifestError):
        IH5MFRecord(record, "r+")
    with IH5Record(record, "r+") as rec:  # the lock was released
        rec["fixed"] = 1


@pytest.mark.parametrize("damage", sorted(BREAKS))
def test_check_manifest_refuses_bad_manifest(tmp_path: Path, damage: str) -> None:
    record = build_mf_record(tmp_path)
    BREAKS[damage](record)
    container = tmp_path / "rec.p1.ih5"
    with pytest.raises(ManifestError, match=r"rec\.p1\.ih5mf\.json"):
        check_manifest(container, read_user_block(container))


def test_mfrecord_open_ignores_damaged_manifest_of_older_container(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    (tmp_path / "rec.ih5mf.json").unlink()
    with IH5MFRecord(record) as rec:
        assert rec.manifest == manifest_of(tmp_path / "rec.p1.ih5")


def test_plain_record_opens_mf_record_without_its_manifests(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    expected = content_of(record, IH5MFRecord)
    for path in tmp_path.glob("*mf.json"):
        path.unlink()
    assert content_of(record, IH5Record) == expected


# --- what a commit writes -----------------------------------------------------------


def test_mfrecord_commit_writes_manifest_beside_each_container(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    for container in (tmp_path / "rec.ih5", tmp_path / "rec.p1.ih5"):
        manifest = check_manifest(container, read_user_block(container))
        assert manifest is not None
        assert manifest.user_block.patch_uuid == read_user_block(container).patch_uuid
    with IH5MFRecord(record) as rec:
        assert rec.manifest == manifest_of(tmp_path / "rec.p1.ih5")


def test_mfrecord_manifest_is_none_before_first_commit(tmp_path: Path) -> None:
    with IH5MFRecord(tmp_path / "rec", "w") as rec:
        assert not rec.has_manifest
        assert rec.manifest_exts == {}
        rec["x"] = 1
    assert manifest_of(tmp_path / "rec.ih5").manifest_exts == {}


def test_mfrecord_manifest_follows_commits_in_the_same_session(tmp_path: Path) -> None:
    with IH5MFRecord(tmp_path / "rec", "w") as rec:
        rec.commit_patch()
        first = rec.manifest
        rec.create_patch()
        rec["x"] = 1
        rec.commit_patch()
        assert rec.manifest is not None
        assert rec.manifest != first
        assert rec.manifest == manifest_of(rec.containers[-1])


def test_mfrecord_discard_writes_no_manifest(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    with IH5MFRecord(record, "r+") as rec:
        rec["x"] = 1
        rec.discard_patch()
    assert sorted(path.name for path in tmp_path.glob("*mf.json")) == [
        "rec.ih5mf.json",
        "rec.p1.ih5mf.json",
    ]


def test_mfrecord_close_without_commit_writes_no_manifest(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    rec = IH5MFRecord(record, "r+")
    rec["x"] = 1
    rec.close(commit=False)
    assert not (tmp_path / "rec.p2.ih5mf.json").exists()
    with IH5MFRecord(record, "r+") as rec:  # resumes the pending patch and commits it
        assert rec.has_patch
    assert manifest_of(tmp_path / "rec.p2.ih5").skeleton["/x"].patch_index == 2


# --- manifest_exts ------------------------------------------------------------------


def test_manifest_exts_are_inherited_by_later_commits(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    commit(record)
    assert manifest_of(tmp_path / "rec.p1.ih5").manifest_exts == MY_EXTS
    assert manifest_of(tmp_path / "rec.p2.ih5").manifest_exts == MY_EXTS


@pytest.mark.parametrize("replacement", [{"other": [1, 2]}, {}], ids=["new", "empty"])
def test_manifest_exts_replaced_by_commit_patch_then_inherited(
    tmp_path: Path, replacement: dict[str, Any]
) -> None:
    record = build_mf_record(tmp_path)
    commit(record, manifest_exts=replacement)
    commit(record)
    assert manifest_of(tmp_path / "rec.p2.ih5").manifest_exts == replacement
    assert manifest_of(tmp_path / "rec.p3.ih5").manifest_exts == replacement


def test_manifest_exts_replacement_holds_for_later_commits_of_the_session(
    tmp_path: Path,
) -> None:
    record = build_mf_record(tmp_path)
    with IH5MFRecord(record, "r+") as rec:
        rec.commit_patch(manifest_exts={"v": 2})
        rec.create_patch()
        rec.commit_patch()
        assert rec.manifest_exts == {"v": 2}
    assert manifest_of(tmp_path / "rec.p3.ih5").manifest_exts == {"v": 2}


def test_manifest_exts_setter_applies_to_next_commit(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    with IH5MFRecord(record, "r+") as rec:
        rec.manifest_exts = {"set": True}
        assert rec.manifest_exts == {"set": True}
        assert rec.manifest is not None
        assert rec.manifest.manifest_exts == MY_EXTS
    assert manifest_of(tmp_path / "rec.p2.ih5").manifest_exts == {"set": True}


def test_manifest_exts_are_not_user_block_exts(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    ub_exts = read_user_block(newest(record)).ub_exts
    assert list(ub_exts) == ["ih5mf_v01"]


# --- plain records and MF records -----------------------------------------------------


def plain_record(tmp_path: Path) -> Path:
    record = tmp_path / "rec"
    with IH5Record(record, "w") as rec:
        rec["data"] = np.arange(3)
        rec.attrs["t"] = 1
    return record


def test_mfrecord_opens_plain_record_without_manifest(tmp_path: Path) -> None:
    with IH5MFRecord(plain_record(tmp_path)) as rec:
        assert not rec.has_manifest
        assert rec.manifest_exts == {}
        assert as_dataset(rec["data"])[()].tolist() == [0, 1, 2]


def test_plain_record_becomes_manifest_backed_with_next_mf_commit(tmp_path: Path) -> None:
    record = plain_record(tmp_path)
    container = commit(record)
    assert container.name == "rec.p1.ih5"
    assert not (tmp_path / "rec.ih5mf.json").exists()
    assert IH5UBExtManifest.get(read_user_block(tmp_path / "rec.ih5")) is None
    manifest = check_manifest(container, read_user_block(container))
    assert manifest is not None
    assert list(manifest.skeleton) == ["/", "/data"]
    assert manifest.skeleton["/"].attrs == {"n": 1, "t": 0}
    with IH5MFRecord(record) as rec:
        assert rec.manifest == manifest


def test_plain_record_becomes_manifest_backed_with_exts(tmp_path: Path) -> None:
    record = plain_record(tmp_path)
    commit(record, manifest_exts=MY_EXTS)
    assert manifest_of(tmp_path / "rec.p1.ih5").manifest_exts == MY_EXTS


def test_mf_record_opens_as_plain_record(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    with IH5Record(record) as plain, IH5MFRecord(record) as backed:
        assert content(plain) == content(backed)
        assert plain.user_block == backed.user_block


def test_plain_commit_on_mf_record_writes_no_manifest(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    container = commit(record, IH5Record)
    assert not (tmp_path / "rec.p2.ih5mf.json").exists()
    assert IH5UBExtManifest.get(read_user_block(container)) is None
    with IH5MFRecord(record) as rec:
        assert not rec.has_manifest


# --- merge ---------------------------------------------------------------------------


def test_mfrecord_merge_writes_checked_manifest(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    target = tmp_path / "merged.ih5"
    with IH5MFRecord(record) as rec:
        rec.merge_files(target)
        expected = content(rec)
        source_ub = rec.user_block
    merged_ub = read_user_block(target)
    manifest = check_manifest(target, merged_ub)
    assert manifest is not None
    assert manifest.user_block == merged_ub.model_copy(update={"ub_exts": {}})
    assert manifest.user_block.patch_uuid == source_ub.patch_uuid
    assert manifest.user_block.prev_patch is None
    assert manifest.manifest_exts == MY_EXTS
    with IH5MFRecord([target]) as merged:
        assert merged.manifest == manifest
        assert content(merged) == expected


def test_mfrecord_merge_keeps_the_records_own_manifest(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    with IH5MFRecord(record) as rec:
        before = rec.manifest
        rec.merge_files(tmp_path / "merged.ih5")
        assert rec.manifest == before


def test_patch_of_original_chain_applies_on_merged_mf_record(tmp_path: Path) -> None:
    record = build_mf_record(tmp_path)
    with IH5MFRecord(record) as rec:
        rec.merge_files(tmp_path / "merged.ih5")
    container = commit(record)
    files = [tmp_path / "merged.ih5", container]
    with IH5MFRecord(files) as rec:
        assert rec.manifest == manifest_of(container)
        assert rec.attrs["n"] == 2


def test_mfrecord_commit_refuses_oversized_user_block_before_writing_manifest(
    tmp_path: Path,
) -> None:
    # Fits the block on its own, but not with the ih5mf_v01 extension a commit adds.
    big = IH5UserBlock.create().model_copy(update={"ub_exts": {"big": "x" * 780}})
    with (
        pytest.raises(UserBlockTooLargeError),
        IH5MFRecord(tmp_path / "rec", "w", base_user_block=big) as rec,
    ):
        rec["a"] = 1
    assert not list(tmp_path.glob("*mf.json"))
    assert not list(tmp_path.glob("*.ih5"))
