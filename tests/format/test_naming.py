"""Container and manifest file names, record paths, and discovery by name alone."""

from __future__ import annotations

import builtins
import io
from pathlib import Path

import pytest

from ih5.errors import InvalidKeyError
from ih5.format import (
    container_name,
    discover_containers,
    list_containers,
    manifest_name,
    parse_container_name,
    split_record_path,
    validate_record_name,
)
from ih5.fs import temp_path_for


@pytest.mark.parametrize(
    ("name", "index", "filename"),
    [("rec", 0, "rec.ih5"), ("rec", 1, "rec.p1.ih5"), ("a-B-9", 12, "a-B-9.p12.ih5")],
)
def test_container_name_follows_format(name: str, index: int, filename: str) -> None:
    assert container_name(name, index) == filename


@pytest.mark.parametrize("name", ["rec", "a-B-9"])
@pytest.mark.parametrize("index", [0, 1, 7, 10, 123456])
def test_parse_container_name_inverts_container_name(name: str, index: int) -> None:
    assert parse_container_name(container_name(name, index)) == (name, index)


def test_container_name_refuses_negative_index() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        container_name("rec", -1)


@pytest.mark.parametrize(
    ("container", "manifest"),
    [("rec.ih5", "rec.ih5mf.json"), ("rec.p3.ih5", "rec.p3.ih5mf.json")],
)
def test_manifest_name_appends_mf_json(container: str, manifest: str) -> None:
    assert manifest_name(container) == manifest


@pytest.mark.parametrize(
    "filename",
    [
        "rec.p0.ih5",
        "rec.p01.ih5",
        "rec.p.ih5",
        "rec.p-1.ih5",
        "rec.ih5.bak",
        "rec.p1.ih5~",
        "rec.ih5mf.json",
        "rec.h5",
        ".rec.ih5",
        "r e c.ih5",
        "rec.x.ih5",
        "rec.P1.ih5",
        ".ih5",
    ],
)
def test_parse_container_name_rejects_other_names(filename: str) -> None:
    assert parse_container_name(filename) is None


@pytest.mark.parametrize("name", ["", "a/b", "a\\b", "a.b", "a b", "ä", "..", "rec\n"])
def test_validate_record_name_refuses_bad_names(name: str) -> None:
    with pytest.raises(InvalidKeyError, match="letters, digits and '-'"):
        validate_record_name(name)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data/rec", (Path("data"), "rec")),
        ("data/rec.ih5", (Path("data"), "rec")),
        ("rec", (Path("."), "rec")),
        (Path("/abs/dir/my-rec"), (Path("/abs/dir"), "my-rec")),
    ],
)
def test_split_record_path_returns_directory_and_name(
    path: str | Path, expected: tuple[Path, str]
) -> None:
    assert split_record_path(path) == expected


@pytest.mark.parametrize("path", ["data/rec.p1.ih5", "/", ".", "..", "data/rec.h5"])
def test_split_record_path_refuses_non_record_paths(path: str) -> None:
    with pytest.raises(InvalidKeyError):
        split_record_path(path)


FOREIGN = [
    "rec.ih5.bak",
    "rec.p1.ih5~",
    "rec.ih5mf.json",
    "rec.p2.ih5mf.json",
    "rec.p0.ih5",
    "rec.p03.ih5",
    "other.ih5",
    "other.p1.ih5",
    "recx.ih5",
    "rec.h5",
    "rec.ih5.lock",
]


def test_discover_containers_ignores_foreign_files(tmp_path: Path) -> None:
    for name in [*FOREIGN, "rec.ih5", "rec.p1.ih5", "rec.p2.ih5"]:
        (tmp_path / name).write_bytes(b"not even HDF5")
    temp_path_for(tmp_path / "rec.p3.ih5").write_bytes(b"half-written")
    (tmp_path / "rec.p4.ih5").mkdir()
    assert discover_containers(tmp_path, "rec") == [
        tmp_path / "rec.ih5",
        tmp_path / "rec.p1.ih5",
        tmp_path / "rec.p2.ih5",
    ]


def test_discover_containers_sorts_by_index_not_text(tmp_path: Path) -> None:
    for index in [10, 2, 1, 0]:
        (tmp_path / container_name("rec", index)).touch()
    assert [path.name for path in discover_containers(tmp_path, "rec")] == [
        "rec.ih5",
        "rec.p1.ih5",
        "rec.p2.ih5",
        "rec.p10.ih5",
    ]


def test_discover_containers_allows_patches_without_base(tmp_path: Path) -> None:
    (tmp_path / "rec.p2.ih5").touch()
    assert discover_containers(tmp_path, "rec") == [tmp_path / "rec.p2.ih5"]


def test_discover_containers_returns_empty_for_missing_directory(tmp_path: Path) -> None:
    assert discover_containers(tmp_path / "missing", "rec") == []


def test_discover_containers_does_not_open_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rec.ih5").touch()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("discovery opened a file")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    assert discover_containers(tmp_path, "rec") == [tmp_path / "rec.ih5"]


def test_discover_containers_refuses_bad_record_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidKeyError):
        discover_containers(tmp_path, "../rec")


def test_list_containers_names_every_file_the_scan_saw_but_not_directories_or_links(
    tmp_path: Path,
) -> None:
    for name in ["rec.ih5", "rec.p1.ih5", "rec.p1.ih5mf.json", "other.ih5"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "rec.p2.ih5").mkdir()
    (tmp_path / "link.ih5").symlink_to(tmp_path / "other.ih5")
    containers, files = list_containers(tmp_path, "rec")
    assert containers == discover_containers(tmp_path, "rec")
    assert sorted(files) == ["other.ih5", "rec.ih5", "rec.p1.ih5", "rec.p1.ih5mf.json"]


def test_list_containers_of_a_missing_directory_finds_nothing(tmp_path: Path) -> None:
    assert list_containers(tmp_path / "missing", "rec") == ([], [])
