"""``ih5 pack``, ``unpack`` and ``pack-many`` end to end: real entry points, exit codes,
--json checked against the record, byte-exact round trips and stdout kept for data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ih5 import IH5Dataset, IH5Group, IH5Record
from ih5.cli import _exits as exits
from ih5.cli import cli
from tests.helpers.trees import files_of, snapshot

pytestmark = pytest.mark.skipif(os.name == "nt", reason="source trees hold symlinks")


@dataclass(frozen=True)
class Run:
    """How one ``ih5`` invocation ended."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The parsed stdout of a run that must have succeeded."""
        assert self.exit_code == 0, self.stderr
        return json.loads(self.stdout)


Ih5 = Callable[..., Run]


def invoke(*args: Any) -> Run:
    """``ih5 ...`` in this process through click's runner: fast, stdout and stderr apart."""
    result = CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def run_json(*args: Any) -> Any:
    """Run a command with --json that must succeed; return the parsed stdout."""
    return invoke(*args, "--json").json()


def ih5_script() -> str:
    """The installed ``ih5`` console script: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("ih5")
    found = str(beside) if beside.exists() else shutil.which("ih5")
    assert found is not None, "the ih5 console script is not installed"
    return found


def plain_env() -> dict[str, str]:
    """This environment without the variables that make rich take a pipe for a terminal."""
    forcing = {"FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}
    return {key: value for key, value in os.environ.items() if key not in forcing}


def spawner(command: list[str]) -> Ih5:
    """Run ``command ...`` as a child process with stdout and stderr piped."""

    def run(*args: Any) -> Run:
        done = subprocess.run(
            [*command, *(str(arg) for arg in args)],
            capture_output=True,
            text=True,
            env=plain_env(),
            timeout=120,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    return run


ENTRY_POINTS: dict[str, Callable[[], Ih5]] = {
    "runner": lambda: invoke,
    "module": lambda: spawner([sys.executable, "-m", "ih5"]),
    "script": lambda: spawner([ih5_script()]),
}


# --- source trees ------------------------------------------------------------

ZEROS = 200_000
"""Size of a very compressible file, so that compression shows in the container size."""


def make_source(root: Path) -> Path:
    """A plate-like tree: text, random bytes, zeros, an .npy image, an empty dir, symlinks."""
    (root / "images").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("plate 1\n")
    (root / "zeros.bin").write_bytes(bytes(ZEROS))
    (root / "images" / "raw.bin").write_bytes(np.random.default_rng(7).bytes(70_000))
    np.save(root / "images" / "A01.npy", np.arange(4096, dtype=np.uint16).reshape(64, 64))
    os.symlink("../notes.txt", root / "images" / "notes-link")
    os.symlink("images", root / "latest")
    return root


SOURCE_PATHS = [  # as 'ih5 pack --json' and 'ih5 diff' spell archive paths
    "/empty",
    "/images",
    "/images/A01.npy",
    "/images/notes-link",
    "/images/raw.bin",
    "/latest",
    "/notes.txt",
    "/zeros.bin",
]


def edit_source(root: Path) -> dict[str, list[str]]:
    """Add, change and remove paths of a ``make_source`` tree; return what ``pack`` must list."""
    (root / "notes.txt").write_text("plate 1, imaged again\n")
    np.save(root / "images" / "B01.npy", np.ones((8, 8), dtype=np.float32))
    (root / "extra").mkdir()
    (root / "extra" / "log.txt").write_text("second run\n")
    (root / "images" / "raw.bin").unlink()
    (root / "empty").rmdir()
    (root / "latest").unlink()
    os.symlink("notes.txt", root / "latest")
    return {
        "added": ["/extra", "/extra/log.txt", "/images/B01.npy"],
        "changed": ["/latest", "/notes.txt"],
        "removed": ["/empty", "/images/raw.bin"],
    }


def edit_images(root: Path) -> dict[str, list[str]]:
    """An edit that applies before and after ``edit_source``: one image, a new dir, a link."""
    np.save(root / "images" / "A01.npy", np.zeros((64, 64), dtype=np.uint16))
    (root / "images" / "deep").mkdir()
    (root / "images" / "deep" / "C01.txt").write_text("C01\n")
    (root / "images" / "notes-link").unlink()
    return {
        "added": ["/images/deep", "/images/deep/C01.txt"],
        "changed": ["/images/A01.npy"],
        "removed": ["/images/notes-link"],
    }


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def check_against_record(data: dict[str, Any], source: Path) -> None:
    """The --json of ``ih5 pack`` says what the record holds, and the record mirrors ``source``."""
    tree = snapshot(source)
    with IH5Record(data["record"]) as rec:
        user_block = rec.user_block
        newest = rec.history()[-1]
        nodes: dict[str, IH5Group | IH5Dataset] = {}
        rec.visititems(lambda name, obj: nodes.update({name: obj}))
        assert data["record_uuid"] == str(user_block.record_uuid)
        assert data["patch_index"] == user_block.patch_index == newest.index
        assert data["manifest_hashsum"] == user_block.ub_exts["ih5mf_v01"]["manifest_hashsum"]
        if data["action"] != "unchanged":
            assert data["written"] == [str(path) for path in newest.files]
        assert sorted(nodes) == list(tree)
        for path, (kind, content) in tree.items():
            node = nodes[path]
            if kind == "dir":
                assert isinstance(node, IH5Group)
            elif kind == "link":
                assert (node.attrs["codec"], node.attrs["target"]) == ("symlink", content)
            else:
                assert isinstance(content, bytes)
                assert node.attrs["hashsum"] == sha256(content)
                assert node.attrs["size"] == len(content)
    sizes = [len(content) for kind, content in tree.values() if isinstance(content, bytes)]
    assert (data["files"], data["total_bytes"]) == (len(sizes), sum(sizes))
    changed = [*data["added"], *data["changed"]]
    assert data["bytes_packed"] == sum(
        len(content)
        for path in changed
        if isinstance(content := tree[path.removeprefix("/")][1], bytes)
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path / "plate")


@pytest.fixture
def record(source: Path, tmp_path: Path) -> Path:
    """``source`` packed once into ``tmp_path/archive/rec``."""
    path = tmp_path / "archive" / "rec"
    assert invoke("pack", source, path).exit_code == 0
    return path


# --- ih5 pack ----------------------------------------------------------------


def test_pack_first_run_json_matches_the_new_record(source: Path, tmp_path: Path) -> None:
    record = tmp_path / "archive" / "rec"
    data = run_json("pack", source, record)
    assert (data["record"], data["action"], data["patch_index"]) == (str(record), "created", 0)
    assert (data["added"], data["changed"], data["removed"]) == (SOURCE_PATHS, [], [])
    assert data["written"] == [str(record.parent / name) for name in ("rec.ih5", "rec.ih5mf.json")]
    check_against_record(data, source)


def test_pack_first_run_talks_on_stderr_only(source: Path, tmp_path: Path) -> None:
    record = tmp_path / "archive" / "rec"
    result = invoke("pack", source, record)
    assert result.exit_code == 0
    assert result.stdout == ""
    size = sum((record.parent / name).stat().st_size for name in ("rec.ih5",))
    assert result.stderr == (
        f"{record}: created the record, 4 files ({ZEROS + 70_000 + 8 + 8320} bytes) "
        f"in rec.ih5, rec.ih5mf.json ({size} bytes)\n"
    )


def test_pack_unchanged_rerun_says_nothing_changed_and_writes_nothing(
    record: Path, source: Path
) -> None:
    before = files_of(record.parent)
    result = invoke("pack", source, record)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == f"{record}: nothing changed since patch 0; no patch written\n"
    data = run_json("pack", source, record)
    assert (data["action"], data["patch_index"], data["written"]) == ("unchanged", 0, [])
    assert [data[key] for key in ("added", "changed", "removed", "bytes_packed")] == [[], [], [], 0]
    check_against_record(data, source)
    assert files_of(record.parent) == before


def test_pack_after_edits_writes_one_patch_listing_exactly_the_changes(
    record: Path, source: Path
) -> None:
    before = files_of(record.parent)
    expected = edit_source(source)
    data = run_json("pack", source, record)
    assert (data["action"], data["patch_index"]) == ("patched", 1)
    assert {key: data[key] for key in expected} == expected
    check_against_record(data, source)
    after = files_of(record.parent)
    assert sorted(set(after) - set(before)) == ["rec.p1.ih5", "rec.p1.ih5mf.json"]
    assert {name: after[name] for name in before} == before
    assert run_json("pack", source, record)["action"] == "unchanged"


def test_pack_patch_summary_counts_the_changes(record: Path, source: Path) -> None:
    edit_source(source)
    result = invoke("pack", source, record)
    assert result.exit_code == 0
    assert result.stdout == ""
    patch = (record.parent / "rec.p1.ih5").stat().st_size
    written = len("plate 1, imaged again\n") + len("second run\n") + 128 + 8 * 8 * 4
    unchanged = ZEROS + 8320
    assert result.stderr == (
        f"{record}: wrote patch 1 (3 added, 2 changed, 2 removed) in rec.p1.ih5, "
        f"rec.p1.ih5mf.json ({patch} bytes); {written} bytes written, {unchanged} bytes "
        "of unchanged files not written again\n"
    )


@pytest.mark.parametrize(
    ("options", "compression", "level"),
    [
        ([], None, None),
        (["--compression", "gzip"], "gzip", None),
        (["--compression", "gzip", "--level", "9"], "gzip", 9),
        (["--compression", "lzf"], "lzf", None),
    ],
    ids=["none", "gzip", "gzip-9", "lzf"],
)
def test_pack_compression_applies_to_every_file_dataset(
    source: Path, tmp_path: Path, options: list[str], compression: str | None, level: int | None
) -> None:
    record = tmp_path / "archive" / "rec"
    data = run_json("pack", source, record, *options)
    check_against_record(data, source)
    with IH5Record(record) as rec:
        for path in ("zeros.bin", "images/raw.bin", "images/A01.npy"):
            dataset = rec[path]
            assert isinstance(dataset, IH5Dataset)
            assert dataset.compression == compression
            if level is not None:
                assert dataset.compression_opts == level
    assert ((record.parent / "rec.ih5").stat().st_size < ZEROS) == (compression is not None)
    assert invoke("unpack", record, tmp_path / "restored").exit_code == 0
    assert snapshot(tmp_path / "restored") == snapshot(source)


def test_pack_trust_mtime_takes_same_size_and_mtime_as_unchanged(
    record: Path, source: Path
) -> None:
    notes = source / "notes.txt"
    before = notes.stat()
    notes.write_text("PLATE 1\n")
    os.utime(notes, ns=(before.st_atime_ns, before.st_mtime_ns))
    trusted = run_json("pack", source, record, "--trust-mtime")
    assert (trusted["action"], trusted["patch_index"], trusted["changed"]) == ("unchanged", 0, [])
    hashed = run_json("pack", source, record)
    assert (hashed["action"], hashed["patch_index"], hashed["changed"]) == (
        "patched",
        1,
        ["/notes.txt"],
    )
    check_against_record(hashed, source)


def test_pack_trust_mtime_still_sees_a_new_size(record: Path, source: Path) -> None:
    notes = source / "notes.txt"
    before = notes.stat()
    notes.write_text("plate 1, longer\n")
    os.utime(notes, ns=(before.st_atime_ns, before.st_mtime_ns))
    data = run_json("pack", source, record, "--trust-mtime")
    assert (data["action"], data["changed"]) == ("patched", ["/notes.txt"])
    check_against_record(data, source)


@pytest.mark.parametrize("existing", [False, True], ids=["new-record", "existing-record"])
@pytest.mark.parametrize("absolute", [False, True], ids=["relative-link", "absolute-link"])
def test_pack_symlink_leaving_the_source_exits_6_naming_it_and_writes_nothing(
    source: Path, tmp_path: Path, existing: bool, absolute: bool
) -> None:
    record = tmp_path / "archive" / "rec"
    if existing:
        assert invoke("pack", source, record).exit_code == 0
    before = files_of(record.parent) if existing else None
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the plate\n")
    target = str(outside) if absolute else "../../outside.txt"
    link = source / "images" / "escape"
    os.symlink(target, link)
    result = invoke("pack", source, record, "--json")
    assert result.exit_code == exits.REFUSED
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: symlink {link} points outside {source} (to {target}); "
        "replace it with the file or remove it before packing"
    ]
    if existing:
        assert files_of(record.parent) == before
    else:
        assert not record.parent.exists()


# --- ih5 unpack ----------------------------------------------------------------


def test_unpack_json_counts_what_it_restored(record: Path, source: Path, tmp_path: Path) -> None:
    destination = tmp_path / "restored"
    assert run_json("unpack", record, destination) == {
        "destination": str(destination),
        "files": 4,
        "directories": 2,
        "symlinks": 2,
        "bytes": sum(len(c) for _, c in snapshot(source).values() if isinstance(c, bytes)),
    }
    assert snapshot(destination) == snapshot(source)


def test_unpack_talks_on_stderr_only(record: Path, source: Path, tmp_path: Path) -> None:
    destination = tmp_path / "restored"
    destination.mkdir()
    result = invoke("unpack", record, destination)
    assert result.exit_code == 0
    assert result.stdout == ""
    size = sum(len(c) for _, c in snapshot(source).values() if isinstance(c, bytes))
    assert result.stderr == (
        f"restored 4 files, 2 directories and 2 symlinks ({size} bytes) to {destination}\n"
    )


@pytest.mark.parametrize("occupant", ["file-inside", "file-itself"])
def test_unpack_into_an_occupied_destination_exits_6_with_one_error_line(
    record: Path, tmp_path: Path, occupant: str
) -> None:
    destination = tmp_path / "restored"
    if occupant == "file-inside":
        destination.mkdir()
        (destination / "keep.txt").write_text("mine\n")
    else:
        destination.write_text("mine\n")
    before = snapshot(tmp_path)
    result = invoke("unpack", record, destination, "--json")
    assert result.exit_code == exits.REFUSED
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: {destination} exists and is not an empty directory; choose a new one"
    ]
    assert snapshot(tmp_path) == before


def test_unpack_missing_record_exits_3_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "rec"
    destination = tmp_path / "restored"
    result = invoke("unpack", missing, destination)
    assert result.exit_code == exits.NOT_FOUND
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: no containers of record {missing} found; check the path"
    ]
    assert not destination.exists()


# --- usage errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["pack", "SRC", "REC", "--bogus"],
        ["pack", "SRC"],
        ["pack", "FILE", "REC"],
        ["pack", "SRC", "REC", "--compression", "zstd"],
        ["pack", "SRC", "REC", "--compression", "gzip", "--level", "12"],
        ["pack", "SRC", "REC", "--compression", "lzf", "--level", "4"],
        ["pack", "SRC", "REC", "--level", "4"],
        ["unpack", "REC", "DEST", "--bogus"],
        ["unpack", "REC"],
        ["pack-many", "ROOT", "OUT", "--jobs", "0"],
        ["pack-many", "ROOT", "OUT", "-j", "two"],
        ["pack-many", "ROOT", "OUT", "--compression", "gzip", "--level", "-1"],
    ],
    ids=" ".join,
)
def test_pack_commands_bad_options_exit_2_and_write_nothing(
    source: Path, tmp_path: Path, args: list[str]
) -> None:
    paths = {
        "SRC": source,
        "FILE": source / "notes.txt",
        "REC": tmp_path / "archive" / "rec",
        "DEST": tmp_path / "restored",
        "ROOT": tmp_path,
        "OUT": tmp_path / "archive",
    }
    before = snapshot(tmp_path)
    result = invoke(*(paths.get(arg, arg) for arg in args))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Error:" in result.stderr
    assert snapshot(tmp_path) == before


# --- the round trip through a manifest alone ------------------------------------


@pytest.mark.parametrize(
    ("entry", "patches_before"),
    [("runner", 0), ("runner", 1), ("module", 1), ("script", 0)],
    ids=["runner-base", "runner-patch", "python-m", "script"],
)
def test_pack_on_a_lone_manifest_round_trips_through_the_real_record(
    source: Path, tmp_path: Path, entry: str, patches_before: int
) -> None:
    ih5 = ENTRY_POINTS[entry]()
    archive, packer = tmp_path / "archive", tmp_path / "packer"
    record = archive / "rec"
    first = ih5("pack", source, record, "--json").json()
    if patches_before:
        assert ih5("pack", source, record, "--json").json()["action"] == "unchanged"
        edit_source(source)
        assert ih5("pack", source, record, "--json").json()["patch_index"] == 1
    expected = edit_images(source)
    k = patches_before
    newest = archive / ("rec.ih5mf.json" if k == 0 else f"rec.p{k}.ih5mf.json")
    packer.mkdir()
    shutil.copy(newest, packer)

    patch = ih5("pack", source, packer / "rec", "--json").json()
    written = [packer / f"rec.p{k + 1}.ih5", packer / f"rec.p{k + 1}.ih5mf.json"]
    assert (patch["record"], patch["action"], patch["patch_index"]) == (
        str(packer / "rec"),
        "patched-on-stub",
        k + 1,
    )
    assert patch["record_uuid"] == first["record_uuid"]
    assert patch["written"] == [str(path) for path in written]
    assert {key: patch[key] for key in expected} == expected
    assert sorted(path.name for path in packer.iterdir()) == sorted(
        [newest.name, *(path.name for path in written)]
    )

    for path in written:
        shutil.copy(path, archive)
    verified = ih5("verify", record)
    assert verified.exit_code == 0, verified.stderr
    assert [line.split("\t")[:4] for line in verified.stdout.splitlines()] == [
        ["index", "file", "status", "manifest"],
        *([str(k), f"rec.p{k}.ih5" if k else "rec.ih5", "ok", "ok"] for k in range(k + 2)),
    ]
    assert verified.stderr.endswith(f"every hashsum and manifest matches ({k + 2} containers)\n")
    history = ih5("log", record, "--json").json()
    assert [row["index"] for row in history] == list(range(k + 2))
    assert history[-1]["files"] == [str(archive / path.name) for path in written]
    changes = ih5("diff", record, "--from", k, "--to", k + 1, "--json").json()
    assert changes == {
        "from": k,
        "to": k + 1,
        "added": expected["added"],
        "removed": expected["removed"],
        "changed": [
            {"path": path, "before": "dataset", "after": "dataset"} for path in expected["changed"]
        ],
        # A rewritten file has new bytes and a new modification time.
        "attrs": {
            "/images/A01.npy": {"added": [], "removed": [], "changed": ["hashsum", "mtime_ns"]}
        },
        "regions": {},
    }
    restored = tmp_path / "restored"
    unpacked = ih5("unpack", record, restored, "--json").json()
    assert unpacked["destination"] == str(restored)
    assert snapshot(restored) == snapshot(source)
    again = ih5("pack", source, record, "--json").json()
    assert (again["action"], again["patch_index"]) == ("unchanged", k + 1)


# --- stdout is data --------------------------------------------------------------


def test_json_stdout_parses_and_stderr_stays_empty_when_piped(source: Path, tmp_path: Path) -> None:
    ih5 = ENTRY_POINTS["script"]()
    record = tmp_path / "archive" / "rec"
    for args in (
        ["pack", source, record],
        ["verify", record],
        ["unpack", record, tmp_path / "restored"],
    ):
        result = ih5(*args, "--json")
        assert result.exit_code == 0, result.stderr
        assert isinstance(json.loads(result.stdout), dict)
        assert result.stderr == ""


def run_with_terminal_stderr(*args: Any) -> tuple[Run, str]:
    """``python -m ih5 ...`` with stdout piped and stderr on a pseudo-terminal."""
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "ih5", *(str(arg) for arg in args)],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=plain_env(),
    )
    os.close(follower)
    terminal = bytearray()
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: every copy of the follower end is closed, the child is gone
            break
        if not chunk:
            break
        terminal += chunk
    os.close(leader)
    assert child.stdout is not None
    stdout = child.stdout.read().decode("utf-8")
    child.stdout.close()
    exit_code = child.wait(timeout=120)
    return Run(exit_code, stdout, ""), terminal.decode("utf-8", errors="replace")


def test_json_stdout_stays_plain_while_progress_bars_draw_on_a_terminal(
    source: Path, tmp_path: Path
) -> None:
    record = tmp_path / "archive" / "rec"
    for args, bar in (
        (["pack", source, record], "packing"),
        (["verify", record], "verifying"),
        (["unpack", record, tmp_path / "restored"], "unpacking"),
        (["merge", record, tmp_path / "merged.ih5"], "verifying"),
        (["get", record, "/zeros.bin", tmp_path / "zeros.bin"], "unpacking"),
    ):
        result, terminal = run_with_terminal_stderr(*args, "--json")
        assert result.exit_code == 0, terminal
        assert "\x1b" not in result.stdout
        assert isinstance(json.loads(result.stdout), dict)
        assert bar in terminal


# --- ih5 pack-many -------------------------------------------------------------

PLATES = {"plate_1": "plate-1", "plate 2": "plate-2", "plate-3": "plate-3"}


def make_plates(root: Path) -> Path:
    """Three small plate directories whose names map to valid record names."""
    for index, directory in enumerate(PLATES):
        plate = root / directory
        (plate / "images").mkdir(parents=True)
        (plate / "images" / "A01.txt").write_text(f"{directory}\n")
        (plate / "notes.txt").write_text("n" * (index + 1))
    return root


def check_catalog(out: Path, rows: list[dict[str, Any]]) -> None:
    """catalog.json holds one entry per packed row, agreeing with the row."""
    catalog = json.loads((out / "catalog.json").read_text(encoding="utf-8"))["records"]
    packed = [row for row in rows if row["error"] is None]
    assert sorted(catalog) == [row["name"] for row in packed]
    for row in packed:
        entry = catalog[row["name"]]
        assert {
            key: entry[key]
            for key in ("record", "record_uuid", "patch_index", "manifest_hashsum", "source")
        } == {
            "record": row["name"],
            "record_uuid": row["record_uuid"],
            "patch_index": row["patch_index"],
            "manifest_hashsum": row["manifest_hashsum"],
            "source": row["source"],
        }
        assert (entry["files"], entry["bytes"], entry["last_action"]) == (
            row["files"],
            row["total_bytes"],
            row["action"],
        )


def test_pack_many_json_has_one_row_per_subdirectory_matching_the_catalog(
    tmp_path: Path,
) -> None:
    root, out = make_plates(tmp_path / "plates"), tmp_path / "archive"
    ih5 = ENTRY_POINTS["module"]()
    rows = ih5("pack-many", root, out, "--jobs", 2, "--json").json()
    assert [(row["name"], row["action"], row["patch_index"], row["error"]) for row in rows] == [
        (name, "created", 0, None) for name in PLATES.values()
    ]
    assert [row["source"] for row in rows] == [str(root / directory) for directory in PLATES]
    for row in rows:
        check_against_record(row, root / Path(row["source"]).name)
    check_catalog(out, rows)

    (root / "plate 2" / "notes.txt").write_text("changed\n")
    again = run_json("pack-many", root, out, "--jobs", 2)
    assert [(row["name"], row["action"], row["patch_index"]) for row in again] == [
        ("plate-1", "unchanged", 0),
        ("plate-2", "patched", 1),
        ("plate-3", "unchanged", 0),
    ]
    assert again[1]["changed"] == ["/notes.txt"]
    check_catalog(out, again)


def test_pack_many_escaping_symlink_fails_that_subdirectory_only(tmp_path: Path) -> None:
    root, out = make_plates(tmp_path / "plates"), tmp_path / "archive"
    (root / "bad").mkdir()
    os.symlink("../../secret.txt", root / "bad" / "leak")
    error = (
        f"symlink {root / 'bad' / 'leak'} points outside {root / 'bad'} (to ../../secret.txt); "
        "replace it with the file or remove it before packing"
    )
    result = invoke("pack-many", root, out, "--jobs", 2, "--json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert rows[0] == {"name": "bad", "source": str(root / "bad"), "error": error}
    assert [(row["name"], row["action"], row["error"]) for row in rows[1:]] == [
        (name, "created", None) for name in PLATES.values()
    ]
    check_catalog(out, rows)
    assert not [path for path in out.iterdir() if path.name.startswith("bad")]

    table = invoke("pack-many", root, out)
    assert table.exit_code == 1
    assert table.stdout.splitlines() == [
        "record\taction\tpatch\tfiles\tbytes\terror",
        f"bad\t\t\t\t\t{error}",
        *(
            f"{row['name']}\tunchanged\t0\t{row['files']}\t{row['total_bytes']}\t"
            for row in rows[1:]
        ),
    ]
    assert sorted(table.stderr.splitlines()) == sorted(
        [
            f"Error: {root / 'bad'}: {error}",
            *(
                f"{out / name}: nothing changed since patch 0; no patch written"
                for name in PLATES.values()
            ),
            f"{len(PLATES) + 1} records: 1 failed, {len(PLATES)} unchanged",
            "failed (the other records are packed; run the same command again to retry these):",
            f"  bad ({root / 'bad'}): {error}",
        ]
    )
