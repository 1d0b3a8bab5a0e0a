"""metador-core 0.1.1's ``IH5Record`` contract, written as its users write the calls.

One test per row of METADOR-API.md ("IH5Record"); each also checks that the
error is ih5's own typed class as well as the builtin metador-core raised.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from ih5 import (
    Ih5Error,
    IH5MFRecord,
    IH5Record,
    IH5UserBlock,
    InvalidKeyError,
    NoContainersGivenError,
    RecordDirectoryError,
    RecordExistsError,
    RecordModeError,
    RecordNotFoundError,
    StubError,
    UnknownKeywordError,
)
from ih5.errors import RecordClosedError
from tests.helpers.nodes import as_dataset, as_group


def committed(path: Path, patches: int = 0) -> Path:
    """A record with a base and ``patches`` patches, each setting one value."""
    with IH5Record(path, "w") as ds:
        ds["base"] = 0
        for index in range(1, patches + 1):
            ds.commit_patch()
            ds.create_patch()
            ds[f"p{index}"] = index
    return path


def test_open_accepts_record_path_or_list_of_containers(tmp_ds_path: Path) -> None:
    committed(tmp_ds_path, patches=1)
    files = IH5Record.find_files(tmp_ds_path)
    with IH5Record(tmp_ds_path) as by_name, IH5Record(files) as by_files:
        assert by_name.ih5_files == by_files.ih5_files == files
        assert set(by_name) == set(by_files) == {"base", "p1"}


@pytest.mark.parametrize("mode", ["w", "w-", "x"])
def test_open_list_of_containers_for_creating_is_value_error(tmp_ds_path: Path, mode: str) -> None:
    committed(tmp_ds_path)
    with pytest.raises(ValueError) as raised:
        IH5Record(IH5Record.find_files(tmp_ds_path), mode)
    assert isinstance(raised.value, RecordModeError)


def test_open_empty_list_is_value_error_and_file_not_found() -> None:
    with pytest.raises(ValueError) as raised:
        IH5Record([])
    assert isinstance(raised.value, NoContainersGivenError)
    assert isinstance(raised.value, FileNotFoundError)  # what ih5 raised before


def test_open_missing_record_read_only_is_file_not_found(tmp_ds_path: Path) -> None:
    assert IH5Record.find_files(tmp_ds_path) == []
    for mode in ("r", "r+"):
        with pytest.raises(FileNotFoundError) as raised:
            IH5Record(tmp_ds_path, mode)
        assert isinstance(raised.value, RecordNotFoundError)


@pytest.mark.parametrize("mode", ["r+", "a"])
def test_open_existing_for_writing_creates_a_patch_at_once(tmp_ds_path: Path, mode: str) -> None:
    committed(tmp_ds_path)
    with IH5Record(tmp_ds_path, mode) as ds:
        assert len(ds.ih5_files) == 2
        ds["test"] = "write"  # no create_patch() needed
    with IH5Record(tmp_ds_path) as ds:
        assert len(ds.ih5_files) == 2
        assert as_dataset(ds["test"])[()] == b"write"


def test_open_for_writing_resumes_an_uncommitted_newest_container(tmp_ds_path: Path) -> None:
    committed(tmp_ds_path)
    ds = IH5Record(tmp_ds_path, "r+")
    ds["kept"] = 1
    ds.close(commit=False)
    with IH5Record(tmp_ds_path, "r+") as ds:
        assert len(ds.ih5_files) == 2
        assert as_dataset(ds["kept"])[()] == 1
    with IH5Record(tmp_ds_path) as ds:
        assert len(ds.ih5_files) == 2


def test_open_a_creates_a_missing_record_writable(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "a") as ds:
        assert ds.mode == "r+"
        ds["test"] = "write"
    with IH5Record(tmp_ds_path) as ds:
        assert as_dataset(ds["test"])[()] == b"write"


def test_open_w_creates_writable_base_and_truncates(tmp_ds_path: Path) -> None:
    committed(tmp_ds_path, patches=3)
    with IH5Record(tmp_ds_path) as ds:
        old_uuid = ds.ih5_uuid
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["fresh"] = 1
    with IH5Record(tmp_ds_path) as ds:
        assert ds.ih5_uuid != old_uuid
        assert len(ds.ih5_files) == 1
        assert list(ds) == ["fresh"]


@pytest.mark.parametrize("mode", ["w-", "x"])
def test_open_exclusive_on_existing_is_file_exists(tmp_ds_path: Path, mode: str) -> None:
    committed(tmp_ds_path)
    with pytest.raises(FileExistsError) as raised:
        IH5Record(tmp_ds_path, mode)
    assert isinstance(raised.value, RecordExistsError)


@pytest.mark.parametrize(("mode", "reported"), [("r", "r"), ("r+", "r+"), ("a", "r+"), ("w", "r+")])
def test_mode_reports_r_or_r_plus(tmp_ds_path: Path, mode: str, reported: str) -> None:
    committed(tmp_ds_path)
    with IH5Record(tmp_ds_path, mode) as ds:
        assert ds.mode == reported


def test_ih5_uuid_is_the_record_uuid_also_before_the_first_commit(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        assert isinstance(ds.ih5_uuid, uuid.UUID)
        assert ds.ih5_uuid == ds.ih5_meta[0].record_uuid
        before = ds.ih5_uuid
    with IH5Record(tmp_ds_path) as ds:
        assert ds.ih5_uuid == before


def test_ih5_files_lists_every_container_including_the_open_one(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        assert len(ds.ih5_files) == 1
        ds.commit_patch()
        assert ds.ih5_files == IH5Record.find_files(tmp_ds_path)
        ds.create_patch()
        assert len(ds.ih5_files) == 2
        assert ds.ih5_files[0] == tmp_ds_path.parent / "record.ih5"
        assert ds.ih5_files[1].is_file()  # the open patch, under a hidden name until committed
        ds.commit_patch()
        assert ds.ih5_files == [tmp_ds_path.parent / n for n in ("record.ih5", "record.p1.ih5")]


def test_ih5_meta_are_copies_of_the_user_blocks_in_file_order(tmp_ds_path: Path) -> None:
    committed(tmp_ds_path, patches=2)
    with IH5Record(tmp_ds_path, "r+") as ds:
        meta = ds.ih5_meta
        assert [ub.patch_index for ub in meta] == [0, 1, 2, 3]
        assert all(isinstance(ub, IH5UserBlock) for ub in meta)
        assert [IH5UserBlock.load(path) for path in ds.ih5_files[:3]] == meta[:3]
        assert meta[3].prev_patch == meta[2].patch_uuid
        assert meta[0] is not ds.ih5_meta[0]


def test_create_patch_with_a_writable_container_is_value_error(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        with pytest.raises(ValueError) as raised:  # cannot create, have writable base
            ds.create_patch()
        assert isinstance(raised.value, RecordModeError)
        ds.commit_patch()
        ds.create_patch()
        with pytest.raises(ValueError):  # should not work twice
            ds.create_patch()


def test_create_patch_read_only_is_value_error(tmp_ds_path: Path) -> None:
    committed(tmp_ds_path)
    with IH5Record(tmp_ds_path) as ds, pytest.raises(ValueError) as raised:
        ds.create_patch()
    assert isinstance(raised.value, RecordModeError)


def test_commit_patch_without_patch_is_value_error(tmp_ds_path: Path) -> None:
    committed(tmp_ds_path)
    with IH5Record(tmp_ds_path) as ds, pytest.raises(ValueError):
        ds.commit_patch()
    with IH5Record(tmp_ds_path, "r+") as ds:
        ds.commit_patch()
        with pytest.raises(ValueError) as raised:
            ds.commit_patch()
        assert isinstance(raised.value, RecordModeError)


@pytest.mark.parametrize("cls", [IH5Record, IH5MFRecord])
def test_commit_patch_unknown_keyword_is_value_error(
    tmp_ds_path: Path, cls: type[IH5Record]
) -> None:
    with cls(tmp_ds_path, "w") as ds:
        ds["x"] = 1
        with pytest.raises(ValueError) as raised:
            ds.commit_patch(unknown="arg")
        assert isinstance(raised.value, UnknownKeywordError)
        assert ds.has_patch
    with cls(tmp_ds_path) as ds:
        assert as_dataset(ds["x"])[()] == 1


def test_discard_patch_without_patch_is_value_error(tmp_ds_path: Path) -> None:
    committed(tmp_ds_path)
    with IH5Record(tmp_ds_path) as ds, pytest.raises(ValueError):
        ds.discard_patch()
    with IH5Record(tmp_ds_path, "r+") as ds:
        ds.discard_patch()
        with pytest.raises(ValueError) as raised:
            ds.discard_patch()
        assert isinstance(raised.value, RecordModeError)


def test_discard_patch_of_the_uncommitted_base_is_value_error(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["foo"] = 123
        with pytest.raises(ValueError) as raised:
            ds.discard_patch()
        assert isinstance(raised.value, RecordModeError)
        assert as_dataset(ds["foo"])[()] == 123
    with IH5Record(tmp_ds_path) as ds:
        assert as_dataset(ds["foo"])[()] == 123


def test_close_commits_the_open_patch_unless_commit_false(tmp_ds_path: Path) -> None:
    committed(tmp_ds_path)
    ds = IH5Record(tmp_ds_path, "r+")
    ds["committed"] = 1
    ds.close()
    ds = IH5Record(tmp_ds_path, "r+")
    ds["kept"] = 2
    ds.close(commit=False)
    with IH5Record(tmp_ds_path) as ds:
        assert "committed" in ds
        assert "kept" not in ds
        assert len(ds.ih5_files) == 2


def test_closed_record_and_its_views_raise_value_error_not_open(
    tmp_ds_path_factory: Callable[[], Path],
) -> None:
    ds = IH5Record(tmp_ds_path_factory(), "w")
    ds["grp/val"] = 1
    group, value, attrs = as_group(ds["grp"]), as_dataset(ds["grp/val"]), ds.attrs
    ds.close()
    calls: list[Callable[[], object]] = [
        ds.create_patch,
        ds.discard_patch,
        ds.commit_patch,
        lambda: ds.merge_files(tmp_ds_path_factory()),
        lambda: ds["grp"],
        lambda: ds.ih5_files,
        lambda: list(group),
        lambda: value[()],
        lambda: list(attrs),
    ]
    for call in calls:
        with pytest.raises(ValueError) as raised:
            call()
        assert "not open" in str(raised.value)
        assert isinstance(raised.value, RecordClosedError)


def test_merge_files_writes_and_returns_dir_name_ih5(
    tmp_ds_path_factory: Callable[[], Path],
) -> None:
    source, target = committed(tmp_ds_path_factory(), patches=2), tmp_ds_path_factory()
    with IH5Record(source) as ds:
        merged = ds.merge_files(target)
        uuid_of_source = ds.ih5_uuid
    assert merged == target.parent / f"{target.name}.ih5"
    with IH5Record(target) as ds2:
        assert ds2.ih5_files == [merged]
        assert ds2.ih5_uuid == uuid_of_source
        assert set(ds2) == {"base", "p1", "p2"}


def test_merge_files_with_open_patch_is_value_error(
    tmp_ds_path_factory: Callable[[], Path],
) -> None:
    source, target = committed(tmp_ds_path_factory()), tmp_ds_path_factory()
    with IH5Record(source, "r+") as ds:
        with pytest.raises(ValueError) as raised:
            ds.merge_files(target)
        assert isinstance(raised.value, RecordModeError)
    assert IH5Record.find_files(target) == []


def test_merge_files_with_a_stub_in_the_chain_is_value_error(
    tmp_ds_path_factory: Callable[[], Path],
) -> None:
    source = tmp_ds_path_factory()
    with IH5MFRecord(source, "w") as ds:
        ds["x"] = 1
    manifest = Path(f"{IH5Record.find_files(source)[0]}mf.json")
    with (
        IH5MFRecord.create_stub(tmp_ds_path_factory(), manifest) as stub,
        pytest.raises(ValueError) as raised,
    ):
        stub.merge_files(tmp_ds_path_factory())
    assert isinstance(raised.value, StubError)


def test_merge_files_onto_existing_target_is_file_exists(
    tmp_ds_path_factory: Callable[[], Path],
) -> None:
    source, target = committed(tmp_ds_path_factory()), committed(tmp_ds_path_factory())
    with IH5Record(source) as ds, pytest.raises(FileExistsError) as raised:
        ds.merge_files(target)
    assert isinstance(raised.value, RecordExistsError)


def test_find_files_returns_the_containers_in_chain_order(tmp_ds_path: Path) -> None:
    assert IH5Record.find_files(tmp_ds_path) == []
    committed(tmp_ds_path, patches=10)
    committed(tmp_ds_path.with_name("record-other"))
    found = IH5Record.find_files(tmp_ds_path)
    assert [path.name for path in found] == ["record.ih5"] + [
        f"record.p{index}.ih5" for index in range(1, 11)
    ]


def test_list_records_returns_record_paths_in_a_directory(
    tmp_ds_path_factory: Callable[[], Path], tmp_path: Path
) -> None:
    first, second = committed(tmp_ds_path_factory(), patches=1), committed(tmp_ds_path_factory())
    (tmp_path / "notes.txt").write_text("not a record")
    assert IH5Record.list_records(tmp_path) == sorted([first, second])


def test_list_records_of_a_non_directory_is_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as raised:
        IH5Record.list_records(tmp_path / "missing")
    assert isinstance(raised.value, RecordDirectoryError)


def test_delete_files_removes_every_container_of_the_record(tmp_ds_path: Path) -> None:
    committed(tmp_ds_path, patches=3)
    other = committed(tmp_ds_path.with_name("record-other"))
    files = IH5Record.find_files(tmp_ds_path)
    IH5Record.delete_files(tmp_ds_path)
    assert not any(file.exists() for file in files)
    assert IH5Record.find_files(tmp_ds_path) == []
    assert len(IH5Record.find_files(other)) == 1


def test_delete_files_of_mf_record_removes_the_manifests_too(tmp_ds_path: Path) -> None:
    with IH5MFRecord(tmp_ds_path, "w") as ds:
        ds["x"] = 1
        ds.commit_patch()
        ds.create_patch()
        ds["y"] = 2
    IH5MFRecord.delete_files(tmp_ds_path)
    assert [path.name for path in tmp_ds_path.parent.iterdir() if "ih5" in path.name] == [
        "record.ih5.lock"
    ]


def test_context_manager_closes_and_commits(tmp_ds_path: Path) -> None:
    with IH5Record(tmp_ds_path, "w") as ds:
        ds["x"] = 1
    with pytest.raises(ValueError):
        ds["x"]
    with IH5Record(tmp_ds_path) as ds:
        assert as_dataset(ds["x"])[()] == 1


@pytest.mark.parametrize("name", ["invalid.name", "invalid_name", "Юникод", "inva#lid"])
def test_invalid_record_name_is_value_error(tmp_ds_path: Path, name: str) -> None:
    for mode in ("r", "w"):
        with pytest.raises(ValueError) as raised:
            IH5Record(tmp_ds_path.parent / name, mode)
        assert isinstance(raised.value, InvalidKeyError)
        assert isinstance(raised.value, Ih5Error)
