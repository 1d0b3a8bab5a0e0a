"""Names and paths from callers and from crafted files never reach outside their place.

Record names, group member names and attribute names are refused when they are no
plain names; manifest skeleton paths cannot make a stub write elsewhere; unpacking
refuses links leaving the destination, packing links leaving the source. Every test
compares listings of the directories around the intended place before and after.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ih5
from ih5 import IH5MFRecord, IH5Record, pack_directory, unpack_record
from ih5.format import discover_containers

from .fuzzing import FIXTURES, Tally, fingerprint, report, seal, typed_or_result, wants_long

# --- record names ---------------------------------------------------------------------

# Not "DIR/." or "DIR/": pathlib reads those as the record DIR, which is a plain name.
BAD_RECORD_NAMES = ["x/..", "..", "a b", "x\x00", "é", "x.p1", "a.b", "x\u202e", "x;", "-\n"]


@pytest.mark.parametrize("mode", ["r", "w"])
@pytest.mark.parametrize("name", BAD_RECORD_NAMES)
def test_record_refuses_names_that_are_not_plain(tmp_path: Path, name: str, mode: str) -> None:
    (tmp_path / "place").mkdir()
    before = fingerprint(tmp_path)
    with pytest.raises(ih5.InvalidKeyError):
        IH5Record(f"{tmp_path}/place/{name}", mode)
    assert fingerprint(tmp_path) == before


@pytest.mark.parametrize(
    "source",
    [["x\x00.ih5"], "di\x00r/x", ["ok.ih5", "x\x00.ih5"]],
    ids=["file", "directory", "second-file"],
)
def test_regression_record_refuses_nul_in_paths(tmp_path: Path, source: Any) -> None:
    """Was a bare ValueError ('embedded null byte') from the OS calls."""
    with pytest.raises(ih5.InvalidKeyError, match="NUL"):
        IH5Record(source)


def test_regression_record_open_of_a_missing_container_file_is_typed(tmp_path: Path) -> None:
    """An explicit list naming a missing file raised a bare FileNotFoundError."""
    with pytest.raises(ih5.RecordNotFoundError) as caught:
        IH5Record([tmp_path / "missing.ih5"])
    assert isinstance(caught.value, FileNotFoundError)


def test_regression_record_open_of_a_directory_is_typed(tmp_path: Path) -> None:
    """An explicit list naming a directory raised a bare IsADirectoryError."""
    (tmp_path / "dir.ih5").mkdir()
    with pytest.raises(ih5.NotAnIH5ContainerError, match="directory"):
        IH5Record([tmp_path / "dir.ih5"])


def test_record_given_a_parent_relative_path_writes_only_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work" / "sub")
    before = fingerprint(tmp_path)
    with IH5Record("../x", "w") as record:
        record["data"] = np.arange(3)
    assert set(fingerprint(tmp_path)) - set(before) == {"work/x.ih5", "work/x.ih5.lock"}
    assert [path.name for path in discover_containers(tmp_path / "work", "x")] == ["x.ih5"]


# --- member and attribute names -------------------------------------------------------

BAD_KEYS = [".", "..", "a/../b", "a\x00", "g/./d", "../x", "g/..", "/.."]
OPERATIONS: dict[str, Callable[[Any, str], object]] = {
    "get": lambda group, key: group[key],
    "contains": lambda group, key: key in group,
    "create_group": lambda group, key: group.create_group(key),
    "create_dataset": lambda group, key: group.create_dataset(key, data=1),
    "setitem": lambda group, key: group.__setitem__(key, 1),
    "delitem": lambda group, key: group.__delitem__(key),
    "require_group": lambda group, key: group.require_group(key),
    "move": lambda group, key: group.move("d", key),
}


@pytest.fixture
def open_record(tmp_path: Path) -> Iterator[IH5Record]:
    with _writable(tmp_path) as record:
        yield record


def _writable(tmp_path: Path) -> IH5Record:
    """A new record open for writing, holding /g, /g/d and /d."""
    (tmp_path / "rec").mkdir()
    record = IH5Record(tmp_path / "rec" / "r", "w")
    record.create_group("g")
    record["g/d"] = 1
    record["d"] = 2
    return record


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("key", BAD_KEYS)
def test_group_refuses_member_names_that_are_not_plain(
    open_record: IH5Record, key: str, operation: str
) -> None:
    with pytest.raises(ih5.InvalidKeyError):
        OPERATIONS[operation](open_record["g"], key)


def test_group_writes_only_plain_names_into_its_container(tmp_path: Path) -> None:
    with _writable(tmp_path) as record:
        for key in BAD_KEYS:
            for operation in OPERATIONS.values():
                typed_or_result(partial(operation, record, key))
        record.create_group("//a//b")
        record["/abs"] = 3
    with h5py.File(tmp_path / "rec" / "r.ih5", "r") as file:
        names: list[str] = []
        file.visit(names.append)
    assert sorted(names) == ["a", "a/b", "abs", "d", "g", "g/d"]
    assert sorted(os.listdir(tmp_path / "rec")) == ["r.ih5", "r.ih5.lock"]


@pytest.mark.parametrize("name", ["a\x00b", "\x00"])
def test_regression_attribute_set_refuses_a_name_with_nul(
    open_record: IH5Record, name: str
) -> None:
    """HDF5 cut the name at the NUL: the overlay showed 'a\\x00b', the container held 'a'."""
    with pytest.raises(ih5.InvalidKeyError, match="NUL"):
        open_record.attrs[name] = 1
    assert list(open_record.attrs) == []


def test_regression_attribute_set_refuses_an_empty_name(open_record: IH5Record) -> None:
    """Was a bare RuntimeError from h5py ('no attribute name')."""
    with pytest.raises(ih5.InvalidKeyError, match="empty"):
        open_record["g"].attrs[""] = 1


# --- manifest skeleton paths -------------------------------------------------------------


def crafted_manifest(path: Path, skeleton: dict[str, Any]) -> Path:
    """A copy of a real manifest whose skeleton is replaced by ``skeleton``."""
    document = json.loads((FIXTURES / "mfrec.p1.ih5mf.json").read_text("utf-8"))
    document["skeleton"] = skeleton
    path.write_text(json.dumps(document), "utf-8")
    return path


def entry(node_type: str = "group", attrs: dict[str, int] | None = None) -> dict[str, Any]:
    return {"node_type": node_type, "patch_index": 0, "attrs": attrs or {}}


def stub_files(directory: Path) -> list[str]:
    """What a stub attempt left: its files, without the persistent lock file."""
    return sorted(name for name in os.listdir(directory) if not name.endswith(".lock"))


ESCAPING_PATHS = {
    "/../x": ih5.InvalidKeyError,
    "/a/./b": ih5.InvalidKeyError,
    "/a\x00b": ih5.InvalidKeyError,
    "a/../../x": ih5.InvalidKeyError,
    "/x/..": ih5.InvalidKeyError,
    "//": ih5.NodeExistsError,
    "": ih5.NodeExistsError,
}


@pytest.mark.parametrize("node_type", ["group", "dataset"])
@pytest.mark.parametrize("path", sorted(ESCAPING_PATHS))
def test_create_stub_refuses_skeleton_paths_that_are_not_plain(
    tmp_path: Path, path: str, node_type: str
) -> None:
    if not FIXTURES.is_dir():
        pytest.skip("metador-core fixtures not found")
    manifest = crafted_manifest(tmp_path / "in.json", {"/": entry(), path: entry(node_type)})
    (tmp_path / "stub").mkdir()
    before = fingerprint(tmp_path)
    with pytest.raises(ESCAPING_PATHS[path]):
        IH5MFRecord.create_stub(tmp_path / "stub" / "s", manifest)
    after = fingerprint(tmp_path)
    assert {name for name in after if name not in before} <= {"stub/s.ih5.lock"}
    assert stub_files(tmp_path / "stub") == []


@pytest.mark.parametrize("path", ["/a//b", "x", "/..\\x", "/é", "/" + "x" * 5000])
def test_create_stub_keeps_odd_skeleton_paths_inside_the_stub(tmp_path: Path, path: str) -> None:
    if not FIXTURES.is_dir():
        pytest.skip("metador-core fixtures not found")
    manifest = crafted_manifest(tmp_path / "in.json", {"/": entry(), path: entry()})
    (tmp_path / "stub").mkdir()
    before = fingerprint(tmp_path)
    IH5MFRecord.create_stub(tmp_path / "stub" / "s", manifest)
    after = fingerprint(tmp_path)
    assert {name for name in after if name not in before} == {
        "stub/s.ih5",
        "stub/s.ih5.lock",
        "stub/s.ih5mf.json",
    }
    with IH5Record(tmp_path / "stub" / "s") as stub:
        assert path.strip("/").replace("//", "/") in stub


def test_regression_create_stub_refuses_an_empty_attribute_name(tmp_path: Path) -> None:
    """A crafted manifest with an attribute named "" ended in a bare RuntimeError."""
    if not FIXTURES.is_dir():
        pytest.skip("metador-core fixtures not found")
    manifest = crafted_manifest(tmp_path / "in.json", {"/": entry(attrs={"": 0})})
    with pytest.raises(ih5.InvalidKeyError):
        IH5MFRecord.create_stub(tmp_path / "s", manifest)
    assert stub_files(tmp_path) == ["in.json"]


_SEGMENTS = st.sampled_from(["a", "b", ".", "..", "", "\x00", "\\", "é", " ", "\x1a", "~"])
_PATHS = st.lists(_SEGMENTS, min_size=1, max_size=5).map("/".join) | st.text(max_size=12)


def test_create_stub_of_random_skeleton_paths_stays_in_place(
    tmp_path: Path, request: pytest.FixtureRequest, capsys: Any
) -> None:
    """Any skeleton paths: a typed error or a stub, and files only beside the stub."""
    if not FIXTURES.is_dir():
        pytest.skip("metador-core fixtures not found")
    tally = Tally("create_stub skeleton paths")
    examples = 1000 if wants_long(request.config) else 60

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        paths=st.dictionaries(_PATHS, st.sampled_from(["group", "dataset"]), max_size=4),
        attrs=st.dictionaries(st.text(max_size=4), st.just(0), max_size=2),
    )
    def run(paths: dict[str, str], attrs: dict[str, int]) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
            base = Path(scratch)
            skeleton = {"/": entry(attrs=attrs), **{p: entry(t) for p, t in paths.items()}}
            manifest = crafted_manifest(base / "in.json", skeleton)
            (base / "stub").mkdir()
            before = fingerprint(tmp_path)
            typed, _ = typed_or_result(
                lambda: IH5MFRecord.create_stub(base / "stub" / "s", manifest)
            )
            outside = {
                name
                for name, digest in fingerprint(tmp_path).items()
                if before.get(name) != digest and not name.startswith(f"{base.name}/stub/")
            }
            assert outside == set()
            left = stub_files(base / "stub")
            assert left == ([] if typed else ["s.ih5", "s.ih5mf.json"])
        tally.count("typed" if typed else "correct")

    run()
    report(tally, capsys)


# --- unpacking crafted records ---------------------------------------------------------


def crafted_record(
    path: Path, links: dict[str, str], files: dict[str, bytes] | None = None
) -> Path:
    """A record as 'ih5 pack' would write it, with hand-made symlink entries (and files
    whose hashsum is wrong)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with IH5Record(path, "w") as record:
        for name, target in links.items():
            dataset = record.create_dataset(name, shape=(0,), dtype="u1")
            dataset.attrs["codec"] = "symlink"
            dataset.attrs["target"] = target
        for name, data in (files or {}).items():
            dataset = record.create_dataset(name, data=np.frombuffer(data, np.uint8))
            dataset.attrs["codec"] = "raw"
            dataset.attrs["hashsum"] = "sha256:" + "0" * 64
    return path


def links_below(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): os.readlink(path)
        for path in root.rglob("*")
        if path.is_symlink()
    }


LEAVING = {
    "parent": {"esc": "../outside"},
    "absolute": {"abs": "/etc"},
    "deep": {"sub/l": "../.."},
    "dot-dot-after-name": {"l": "x/../../y"},
    "empty": {"e": ""},
    "redirected-by-a-later-link": {"a": "b/../x", "b": "."},
    "loop": {"a": "b", "b": "a"},
}


@pytest.mark.parametrize("case", sorted(LEAVING))
def test_unpack_record_refuses_links_leaving_the_destination(tmp_path: Path, case: str) -> None:
    """Was: every link made as given ('redirected': a made before b -> '.', then leaving)."""
    record = crafted_record(tmp_path / "recs" / "r", LEAVING[case])
    before = fingerprint(tmp_path)
    with pytest.raises(ih5.PackError, match="link"):
        unpack_record(record, tmp_path / "dest")
    assert links_below(tmp_path / "dest") == {}
    assert {name for name in fingerprint(tmp_path) if name not in before} <= {
        "dest",
        "dest/sub",
    }


def test_unpack_record_removes_links_when_restoring_fails_half_way(tmp_path: Path) -> None:
    record = crafted_record(
        tmp_path / "recs" / "r", {"a": "b/../x", "b": "."}, files={"c": b"damaged"}
    )
    with pytest.raises(ih5.Ih5Error):
        unpack_record(record, tmp_path / "dest")
    assert links_below(tmp_path / "dest") == {}


def test_unpack_record_keeps_links_inside_the_destination(tmp_path: Path) -> None:
    links = {"x": "y", "sub/l": "../x", "sub/self": ".", "dangling": "missing"}
    record = crafted_record(tmp_path / "recs" / "r", links)
    result = unpack_record(record, tmp_path / "dest")
    assert links_below(tmp_path / "dest") == links
    assert result.symlinks == len(links)


def test_regression_unpack_record_refuses_external_links(tmp_path: Path) -> None:
    """An external link in a container made unpack copy another HDF5 file's content."""
    (tmp_path / "elsewhere").mkdir()
    with h5py.File(tmp_path / "elsewhere" / "secret.h5", "w") as other:
        other["key"] = np.frombuffer(b"secret", np.uint8)
    (tmp_path / "recs").mkdir()
    with h5py.File(tmp_path / "recs" / "r.ih5", "w", userblock_size=1024) as file:
        file["leak"] = h5py.ExternalLink(str(tmp_path / "elsewhere" / "secret.h5"), "/")
    seal(tmp_path / "recs" / "r.ih5")
    with pytest.raises(ih5.IntegrityError, match="another file"):
        unpack_record(tmp_path / "recs" / "r", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


# --- packing ----------------------------------------------------------------------------


def source_tree(root: Path, links: dict[str, str]) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "file.txt").write_bytes(b"text")
    (root.parent / "outside.txt").write_bytes(b"secret")
    for name, target in links.items():
        os.symlink(target, root / name)
    return root


LEAVING_SOURCE = {
    # Each link alone stays inside; followed through the other, it leaves.
    "via-an-intermediate-link": {"a": "b/../outside.txt", "b": "."},
    "to-the-parent-via-a-symlinked-directory": {"d": ".", "l": "d/.."},
    "chain-ending-outside": {"first": "second", "second": "sub/third", "sub/third": "../.."},
}


@pytest.mark.parametrize("case", sorted(LEAVING_SOURCE))
def test_pack_directory_refuses_link_chains_leaving_the_tree(tmp_path: Path, case: str) -> None:
    source = source_tree(tmp_path / "src", LEAVING_SOURCE[case])
    before = fingerprint(tmp_path)
    with pytest.raises(ih5.PackError, match="outside"):
        pack_directory(source, tmp_path / "out" / "rec")
    assert fingerprint(tmp_path) == before


@pytest.mark.parametrize("links", [{"self": "self"}, {"a": "b", "b": "a"}], ids=["self", "pair"])
def test_regression_pack_directory_refuses_a_link_loop(
    tmp_path: Path, links: dict[str, str]
) -> None:
    """Was a bare RuntimeError ('Symlink loop') from pathlib."""
    source = source_tree(tmp_path / "src", links)
    before = fingerprint(tmp_path)
    with pytest.raises(ih5.PackError, match="loop"):
        pack_directory(source, tmp_path / "out" / "rec")
    assert fingerprint(tmp_path) == before
