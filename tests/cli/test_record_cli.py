"""The record and manifest commands: exit codes, --json against the record, errors and --help."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import h5py
import numpy as np
import pytest
from click.testing import CliRunner, Result

from ih5.cli import _exits as exits
from ih5.cli import cli
from ih5.errors import RecordNotFoundError
from ih5.format import read_user_block
from ih5.manifest import IH5MFRecord
from ih5.record import IH5Record

PAYLOAD = np.frombuffer(b"IH5-CLI-PAYLOAD!" * 64, dtype=np.uint8)
"""Recognisable dataset bytes, so a test can find them in the base container and flip one."""


def invoke(*args: Any) -> Result:
    """Run ``ih5 ...`` as a user would, stdout and stderr kept apart."""
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def run_json(*args: Any) -> Any:
    """Run a command with --json that must succeed; return the parsed stdout."""
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def build(directory: Path, record_class: type[IH5Record]) -> Path:
    """A record with a base and one patch that adds, deletes and changes something."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rec"
    with record_class(path, "w") as rec:
        rec["data"] = np.arange(10)
        rec["payload"] = PAYLOAD
        rec["names"] = np.array(["a", "bé"], dtype=h5py.string_dtype())
        rec.create_group("grp/sub").attrs["depth"] = 2
        rec.attrs["title"] = "base"
    with record_class(path, "r+") as rec:
        rec["p1"] = np.full(3, 1.5)
        rec.attrs["title"] = "patch 1"
        del rec["grp/sub"]
    return path


def containers(record: Path) -> list[Path]:
    return [record.parent / "rec.ih5", record.parent / "rec.p1.ih5"]


def damaged_copy(record: Path, destination: Path, offset: int | None = None) -> Path:
    """A copy of ``record`` whose base has one byte flipped (of PAYLOAD, or at ``offset``)."""
    shutil.copytree(record.parent, destination)
    base = destination / "rec.ih5"
    data = bytearray(base.read_bytes())
    if offset is None:
        offset = data.find(PAYLOAD.tobytes()) + 3
    data[offset] ^= 0xFF
    base.write_bytes(bytes(data))
    return destination / record.name


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    return build(tmp_path / "plain", IH5Record)


@pytest.fixture
def backed(tmp_path: Path) -> Path:
    return build(tmp_path / "backed", IH5MFRecord)


@pytest.fixture(params=["plain", "backed"])
def record(request: pytest.FixtureRequest) -> Path:
    path: Path = request.getfixturevalue(request.param)
    return path


def is_backed(record: Path) -> bool:
    return record.parent.name == "backed"


# --- info and log ------------------------------------------------------------


def test_info_json_describes_the_record(record: Path) -> None:
    newest = read_user_block(containers(record)[1])
    assert run_json("info", record) == {
        "name": "rec",
        "record_uuid": str(newest.record_uuid),
        "containers": 2,
        "patch_index": 1,
        "patch_uuid": str(newest.patch_uuid),
        "size": sum(path.stat().st_size for path in containers(record)),
        "manifest": is_backed(record),
        "groups": 2,
        "datasets": 4,
    }


def test_info_table_has_one_row_per_field(plain: Path) -> None:
    result = invoke("info", plain)
    assert result.exit_code == 0
    summary = run_json("info", plain)
    assert result.stdout.splitlines() == [
        "field\tvalue",
        *(f"{key.replace('_', ' ')}\t{value}" for key, value in summary.items()),
    ]


def test_log_json_lists_every_container_with_full_hashsums(record: Path) -> None:
    expected = []
    for index, path in enumerate(containers(record)):
        user_block = read_user_block(path)
        manifest = path.with_name(path.name + "mf.json")
        expected.append(
            {
                "index": index,
                "file": str(path),
                "status": "ok",
                "reason": "",
                "patch_uuid": str(user_block.patch_uuid),
                "hashsum": user_block.hdf5_hashsum,
                "size": path.stat().st_size,
                "hashed": False,
                "manifest": {"file": str(manifest), "status": "ok", "reason": ""}
                if is_backed(record)
                else None,
                "files": [str(path), str(manifest)] if is_backed(record) else [str(path)],
            }
        )
    assert run_json("log", record) == expected


def test_log_table_shortens_hashsums(plain: Path) -> None:
    result = invoke("log", plain)
    assert result.exit_code == 0
    rows = [
        f"{entry['index']}\tok\t{entry['patch_uuid']}\t{entry['hashsum'][:19]}\t{entry['size']}\t"
        f"{Path(entry['files'][0]).name}\t"
        for entry in run_json("log", plain)
    ]
    assert result.stdout.splitlines() == [
        "index\tstatus\tpatch uuid\thashsum\tsize\tfiles\tdetail",
        *rows,
    ]


# --- tree and cat ------------------------------------------------------------


def node(path: str, kind: str = "group", shape: Any = None, dtype: Any = None) -> dict[str, Any]:
    return {"path": path, "type": kind, "shape": shape, "dtype": dtype}


def test_tree_json_lists_nodes_with_shape_and_dtype(plain: Path) -> None:
    assert run_json("tree", plain) == [
        node("/"),
        node("/data", "dataset", [10], "int64"),
        node("/grp"),
        node("/names", "dataset", [2], "vlen str"),
        node("/p1", "dataset", [3], "float64"),
        node("/payload", "dataset", [1024], "uint8"),
    ]


def test_tree_at_shows_an_older_state_with_attributes(plain: Path) -> None:
    entries = run_json("tree", plain, "--at", 0, "--attrs")
    assert [entry["path"] for entry in entries] == [
        "/",
        "/data",
        "/grp",
        "/grp/sub",
        "/names",
        "/payload",
    ]
    assert entries[0]["attrs"] == {"title": "base"}
    assert entries[3]["attrs"] == {"depth": 2}


def test_tree_text_is_indented_by_depth(plain: Path) -> None:
    result = invoke("tree", plain, "--at", 0, "--attrs")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "/",
        "  @title = base",
        "  data  (10,) int64",
        "  grp/",
        "    sub/",
        "      @depth = 2",
        "  names  (2,) vlen str",
        "  payload  (1024,) uint8",
    ]


def test_cat_json_gives_the_selected_values(plain: Path) -> None:
    assert run_json("cat", plain, "/data", "--slice", "2:8:2") == {
        **node("/data", "dataset", [10], "int64"),
        "value": [2, 4, 6],
    }


@pytest.mark.parametrize(
    ("path", "options", "text"),
    [
        ("/data", ["--slice", "2:8:2"], "[2 4 6]"),
        ("/data", ["--slice", "-1"], "9"),
        ("/p1", ["--slice", "..."], "[1.5 1.5 1.5]"),
        ("/names", [], "['a' 'bé']"),
        ("/names", ["--attrs"], "['a' 'bé']"),
        ("/", [], "@title = patch 1"),
        ("/p1", ["--attrs", "--slice", ":1"], "[1.5]"),
    ],
)
def test_cat_prints_values_with_numpy(
    plain: Path, path: str, options: list[str], text: str
) -> None:
    result = invoke("cat", plain, path, *options)
    assert result.exit_code == 0
    assert result.stdout == text + "\n"


def test_cat_json_decodes_strings_and_shows_attributes(plain: Path) -> None:
    assert run_json("cat", plain, "/names", "--attrs") == {
        **node("/names", "dataset", [2], "vlen str"),
        "attrs": {},
        "value": ["a", "bé"],
    }
    assert run_json("cat", plain, "/") == {**node("/"), "attrs": {"title": "patch 1"}}


def test_cat_json_gives_bytes_nan_and_complex_as_plain_json(tmp_path: Path) -> None:
    with IH5Record(tmp_path / "rec", "w") as rec:
        rec["raw"] = np.array([b"ok", b"\xff\xfe"])
        rec["raw"].attrs["nan"] = np.nan
        rec["raw"].attrs["z"] = np.array([1 + 2j])
        rec["raw"].attrs["empty"] = h5py.Empty("f8")
    entry = run_json("cat", tmp_path / "rec", "/raw", "--attrs")
    assert entry["value"] == ["ok", {"base64": "//4="}]
    assert entry["attrs"] == {
        "empty": "Empty(dtype=dtype('<f8'))",
        "nan": "nan",
        "z": [[1.0, 2.0]],
    }


@pytest.mark.parametrize("selection", ["a:b", "::0", "::-1", "1:2:3:4", "0.5"])
def test_cat_malformed_slice_is_a_usage_error(plain: Path, selection: str) -> None:
    result = invoke("cat", plain, "/data", "--slice", selection)
    assert result.exit_code == 2
    assert "Invalid value for '--slice'" in result.stderr


@pytest.mark.parametrize(("path", "selection"), [("/data", "20"), ("/data", "0,0"), ("/", "0")])
def test_cat_slice_that_does_not_fit_is_a_usage_error(
    plain: Path, path: str, selection: str
) -> None:
    result = invoke("cat", plain, path, "--slice", selection)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Invalid value for '--slice'" in result.stderr


def test_cat_missing_path_exits_3_with_one_error_line(plain: Path) -> None:
    result = invoke("cat", plain, "/nope")
    assert result.exit_code == exits.NOT_FOUND
    assert result.stderr.splitlines() == [f"Error: no object at '/nope' in record {plain}"]


# --- diff --------------------------------------------------------------------


def test_diff_json_lists_paths_and_attributes(plain: Path) -> None:
    assert run_json("diff", plain, "--from", 0, "--to", 1) == {
        "from": 0,
        "to": 1,
        "added": ["/p1"],
        "removed": ["/grp/sub"],
        "changed": [],
        "attrs": {"/": {"added": [], "removed": [], "changed": ["title"]}},
        "regions": {},
    }


def test_diff_table_has_one_row_per_change(plain: Path) -> None:
    result = invoke("diff", plain, "--from", 1, "--to", 0)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "change\tpath\tdetail",
        "attr changed\t/\t@title",
        "added\t/grp/sub\t",
        "removed\t/p1\t",
    ]


def test_diff_same_state_says_so_on_stderr(plain: Path) -> None:
    result = invoke("diff", plain, "--from", 1, "--to", 1)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == f"no differences between states 1 and 1 of {plain}\n"


def test_diff_unknown_state_exits_3(plain: Path) -> None:
    result = invoke("diff", plain, "--from", 0, "--to", 7)
    assert result.exit_code == exits.NOT_FOUND
    assert result.stderr.splitlines() == [
        f"Error: record {plain} has no committed state 7; known: [0, 1]"
    ]


# --- verify ------------------------------------------------------------------


def test_verify_intact_record_exits_0_with_a_table_on_stdout(record: Path) -> None:
    result = invoke("verify", record)
    assert result.exit_code == 0
    manifest = "ok" if is_backed(record) else ""
    assert result.stdout.splitlines() == [
        "index\tfile\tstatus\tmanifest\tdetail",
        f"0\trec.ih5\tok\t{manifest}\t",
        f"1\trec.p1.ih5\tok\t{manifest}\t",
    ]
    assert result.stderr == f"{record}: every hashsum and manifest matches (2 containers)\n"


def test_verify_json_reports_every_container(record: Path) -> None:
    report = run_json("verify", record)
    assert (report["record"], report["ok"]) == (str(record), True)
    assert [(row["file"], row["status"], row["hashed"]) for row in report["containers"]] == [
        (str(path), "ok", True) for path in containers(record)
    ]
    assert [row["size"] for row in report["containers"]] == [
        path.stat().st_size for path in containers(record)
    ]


@pytest.mark.parametrize("offset", [None, 1024 + 8], ids=["payload", "superblock"])
def test_verify_damaged_container_exits_1_reporting_every_container(
    record: Path, tmp_path: Path, offset: int | None
) -> None:
    damaged = damaged_copy(record, tmp_path / "damaged", offset)
    result = invoke("verify", damaged, "--json")
    assert result.exit_code == exits.CHECK_FAILED
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(Path(row["file"]).name, row["status"]) for row in report["containers"]] == [
        ("rec.ih5", "damaged"),
        ("rec.p1.ih5", "ok"),
    ]
    assert "its payload hashes to sha256:" in report["containers"][0]["reason"]
    assert result.stderr == ""


def test_verify_damaged_container_table_names_it_and_the_sound_states(
    plain: Path, tmp_path: Path
) -> None:
    damaged = damaged_copy(plain, tmp_path / "damaged")
    result = invoke("verify", damaged)
    assert result.exit_code == exits.CHECK_FAILED
    rows = [line.split("\t")[:3] for line in result.stdout.splitlines()]
    assert rows == [
        ["index", "file", "status"],
        ["0", "rec.ih5", "damaged"],
        ["1", "rec.p1.ih5", "ok"],
    ]
    assert result.stderr == f"{damaged}: 1 damaged\n"


def test_verify_missing_patch_is_reported_missing(plain: Path) -> None:
    with IH5Record(plain, "r+") as rec:
        rec["p2"] = 2
    (plain.parent / "rec.p1.ih5").unlink()
    result = invoke("verify", plain, "--json")
    assert result.exit_code == exits.CHECK_FAILED
    assert [
        (Path(row["file"]).name, row["status"]) for row in json.loads(result.stdout)["containers"]
    ] == [
        ("rec.ih5", "ok"),
        ("rec.p1.ih5", "missing"),
        ("rec.p2.ih5", "ok"),
    ]
    table = invoke("verify", plain)
    assert table.stderr == f"{plain}: 1 missing; states up to 0 are sound (--at 0)\n"


@pytest.mark.parametrize(
    "args",
    [
        ["info"],
        ["tree"],
        ["cat", "/data"],
        ["diff", "--from", "0", "--to", "1"],
        ["merge", "TARGET"],
        ["manifest"],
    ],
    ids=lambda args: args[0],
)
def test_record_commands_refuse_a_damaged_record(
    backed: Path, tmp_path: Path, args: list[str]
) -> None:
    damaged = damaged_copy(backed, tmp_path / "damaged")
    args = [str(tmp_path / "merged.ih5") if arg == "TARGET" else arg for arg in args]
    result = invoke(args[0], damaged, *args[1:])
    assert result.exit_code == exits.DAMAGED
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: {damaged.parent / 'rec.ih5'} is damaged: ")


# --- merge -------------------------------------------------------------------


def test_merge_writes_one_container_with_the_same_content(record: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "merged.ih5"
    target.parent.mkdir()
    result = invoke("merge", record, target, "--json")
    assert result.exit_code == 0
    newest = read_user_block(containers(record)[1])
    manifest = target.with_name("merged.ih5mf.json")
    assert json.loads(result.stdout) == {
        "target": str(target),
        "patch_index": 1,
        "patch_uuid": str(newest.patch_uuid),
        "hashsum": read_user_block(target).hdf5_hashsum,
        "size": target.stat().st_size,
        "files": [str(target), str(manifest)] if is_backed(record) else [str(target)],
    }
    assert result.stderr.splitlines() == [
        f"merging 2 containers of {record} into {target} ...",
        f"wrote {target} ({target.stat().st_size} bytes, patch index 1)",
    ]
    assert run_json("tree", target, "--attrs") == run_json("tree", record, "--attrs")
    assert run_json("cat", target, "/payload") == run_json("cat", record, "/payload")


def test_merge_existing_target_exits_6(plain: Path) -> None:
    target = containers(plain)[0]
    result = invoke("merge", plain, target)
    assert result.exit_code == exits.REFUSED
    assert result.stderr.splitlines() == [
        f"merging 2 containers of {plain} into {target} ...",
        f"Error: {target} already exists; choose a new file name",
    ]


def test_merge_target_in_missing_directory_is_a_usage_error(plain: Path, tmp_path: Path) -> None:
    result = invoke("merge", plain, tmp_path / "nowhere" / "merged.ih5")
    assert result.exit_code == 2
    assert f"directory {tmp_path / 'nowhere'} does not exist" in result.stderr


# --- manifest and stub -------------------------------------------------------


def test_manifest_json_prints_the_manifest_document(backed: Path) -> None:
    result = invoke("manifest", backed, "--json")
    assert result.exit_code == 0
    assert result.stdout == (backed.parent / "rec.p1.ih5mf.json").read_text(encoding="utf-8")


def test_manifest_table_summarizes_the_manifest(backed: Path) -> None:
    document = json.loads((backed.parent / "rec.p1.ih5mf.json").read_text(encoding="utf-8"))
    result = invoke("manifest", backed)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "field\tvalue",
        f"file\t{backed.parent / 'rec.p1.ih5mf.json'}",
        f"manifest uuid\t{document['manifest_uuid']}",
        f"record uuid\t{document['user_block']['record_uuid']}",
        "patch index\t1",
        f"patch uuid\t{document['user_block']['patch_uuid']}",
        "groups\t2",
        "datasets\t4",
        "manifest exts\t",
    ]


def test_manifest_of_a_plain_record_exits_1(plain: Path) -> None:
    result = invoke("manifest", plain)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: the newest container of {plain} names no manifest; "
        "commit a patch with IH5MFRecord to write one"
    ]


def test_stub_builds_a_stub_from_the_manifest(backed: Path, tmp_path: Path) -> None:
    stub = tmp_path / "stub" / "rec"
    stub.parent.mkdir()
    result = invoke("stub", backed.parent / "rec.p1.ih5mf.json", stub)
    assert result.exit_code == 0
    assert result.stdout == f"{stub.parent / 'rec.ih5'}\n"
    newest = read_user_block(containers(backed)[1])
    info = run_json("info", stub)
    assert (info["containers"], info["patch_index"], info["patch_uuid"], info["manifest"]) == (
        1,
        1,
        str(newest.patch_uuid),
        True,
    )


def test_stub_json_names_the_stub_and_its_identity(backed: Path, tmp_path: Path) -> None:
    newest = read_user_block(containers(backed)[1])
    stub = run_json("stub", backed.parent / "rec.p1.ih5mf.json", tmp_path / "rec")
    assert stub == {
        "stub": str(tmp_path / "rec.ih5"),
        "manifest": str(tmp_path / "rec.ih5mf.json"),
        "record_uuid": str(newest.record_uuid),
        "patch_index": 1,
        "patch_uuid": str(newest.patch_uuid),
    }


def test_stub_tree_shows_placeholders_as_null(backed: Path, tmp_path: Path) -> None:
    invoke("stub", backed.parent / "rec.p1.ih5mf.json", tmp_path / "rec")
    entries = run_json("tree", tmp_path / "rec", "--attrs")
    assert entries[0] == {**node("/"), "attrs": {"title": None}}
    assert entries[1] == {**node("/data", "dataset"), "attrs": {}}
    result = invoke("cat", tmp_path / "rec", "/data")
    assert result.exit_code == exits.REFUSED
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: '/data' is a placeholder of the stub ")


def test_stub_missing_manifest_exits_3(tmp_path: Path) -> None:
    result = invoke("stub", tmp_path / "none.ih5mf.json", tmp_path / "rec")
    assert result.exit_code == exits.NOT_FOUND
    assert result.stderr.splitlines() == [
        f"Error: manifest {tmp_path / 'none.ih5mf.json'} does not exist"
    ]


# --- every command -------------------------------------------------------------

RECORD_COMMANDS = [
    ["info"],
    ["log"],
    ["tree"],
    ["cat", "/data"],
    ["diff", "--from", "0", "--to", "1"],
    ["verify"],
    ["merge", "TARGET"],
    ["manifest"],
]


@pytest.mark.parametrize("args", RECORD_COMMANDS, ids=lambda args: args[0])
def test_record_commands_missing_record_exit_3_naming_it(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "nowhere"
    args = [str(tmp_path / "merged.ih5") if arg == "TARGET" else arg for arg in args]
    result = invoke(args[0], missing, *args[1:])
    assert result.exit_code == exits.NOT_FOUND
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: no containers of record {missing} found; check the path"
    ]


@pytest.mark.parametrize(
    "args",
    [[*args, "--bogus"] for args in RECORD_COMMANDS]
    + [
        ["stub", "MANIFEST", "--bogus"],
        ["tree", "--at", "-1"],
        ["diff", "--from", "x", "--to", "1"],
        ["cat"],
    ],
    ids=lambda args: " ".join(args),
)
def test_record_commands_bad_options_exit_2(plain: Path, args: list[str]) -> None:
    args = [str(plain.parent / "merged.ih5") if arg == "TARGET" else arg for arg in args]
    result = invoke(args[0], plain, *args[1:])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Error:" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = invoke("--debug", "info", tmp_path / "nowhere")
    assert isinstance(result.exception, RecordNotFoundError)


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command below ``group`` (sub-groups and their commands too), as argument lists."""
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += command_paths(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", [(), *command_paths(cli)], ids=" ".join)
def test_every_command_has_help_with_examples(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout


def test_record_commands_are_registered() -> None:
    expected = {"info", "log", "tree", "cat", "diff", "verify", "merge", "manifest", "stub"}
    assert expected <= set(cli.list_commands(click.Context(cli)))


# --- the real entry point ----------------------------------------------------


def ih5_executable() -> list[str]:
    """The installed ``ih5`` script beside this interpreter, else on PATH, else via -c."""
    beside = Path(sys.executable).with_name("ih5")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ih5")
    if found is not None:
        return [found]
    return [sys.executable, "-c", "from ih5.cli import main; main()"]


def test_entry_point_prints_json_and_a_verify_table_exiting_1_on_damage(
    plain: Path, tmp_path: Path
) -> None:
    ok = subprocess.run(
        [*ih5_executable(), "info", str(plain), "--json"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == run_json("info", plain)
    damaged = damaged_copy(plain, tmp_path / "damaged")
    failed = subprocess.run(
        [*ih5_executable(), "verify", str(damaged)], capture_output=True, text=True
    )
    assert failed.returncode == exits.CHECK_FAILED
    assert [line.split("\t")[:3] for line in failed.stdout.splitlines()][1:] == [
        ["0", "rec.ih5", "damaged"],
        ["1", "rec.p1.ih5", "ok"],
    ]
    assert failed.stderr == f"{damaged}: 1 damaged\n"
