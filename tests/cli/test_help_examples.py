"""Every ``--help`` lists examples, and every example runs as written (in a shell, with jq).

The examples share one small world (``data/rec``, ``plate_1``, ``archive/plate-1``,
``plates/``, ``plate_dir``) built once and copied for each command.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from ih5.cli import _exits as exits
from ih5.cli import cli
from ih5.manifest import IH5MFRecord
from ih5.metadata import AtomicMetadataWriter, get_metadata_path
from ih5.pack import pack_directory

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="the examples use jq")

NEEDS_A_SERVER = ("s3://", "http://", "https://")
"""Examples naming a remote record: tests/remote runs those commands against its servers."""


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


def examples(path: tuple[str, ...]) -> list[str]:
    """The example lines of ``ih5 PATH --help``."""
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0
    block = result.stdout.split("Examples:\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


def split_command(line: str) -> tuple[str, str]:
    """``line`` as (the ih5 command, the shell rest from its first unquoted operator on)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "|>;&":
            return line[:index].rstrip(), line[index:]
    return line, ""


def run_example(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one example line as a shell would, with its ``ih5`` command run in this process.

    ``ih5 A | jq X`` becomes ``(cat OUT; exit CODE) | jq X`` after running ``ih5 A``: the
    shell still sees the command's output and exit code, without a new interpreter each.
    """
    if line.startswith("ih5 "):
        command, rest = split_command(line)
        previous = Path.cwd()
        os.chdir(cwd)
        try:
            result = CliRunner().invoke(cli, shlex.split(command)[1:])
        finally:
            os.chdir(previous)
        out = cwd.parent / "example.out"
        out.write_bytes(result.stdout_bytes)
        if not rest:
            return subprocess.CompletedProcess(line, result.exit_code, "", result.stderr)
        line = f"(cat {shlex.quote(str(out))}; exit {result.exit_code}) {rest}"
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", line],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def build_world(root: Path) -> None:
    """Everything the examples name, relative to ``root``."""
    (root / "data").mkdir()
    with IH5MFRecord(root / "data" / "rec", "w") as rec:
        rec["images/dapi"] = np.arange(400, dtype=np.uint16).reshape(20, 20)
        rec["images"].attrs["channel"] = "dapi"
        rec["label"] = np.array(["a"], dtype=h5py.string_dtype())
    with IH5MFRecord(root / "data" / "rec", "r+") as rec:
        rec["images"].attrs["exposure_ms"] = 20
        rec["extra"] = 1
    plate = root / "plate_1"
    (plate / "images").mkdir(parents=True)
    (plate / "images" / "A01.bin").write_bytes(bytes(range(256)))
    (plate / "notes.txt").write_text("plate 1\n")
    pack_directory(plate, root / "archive" / "plate-1")
    (plate / "notes.txt").write_text("plate 1, imaged again\n")
    pack_directory(plate, root / "archive" / "plate-1")
    for name in ("plate_A", "plate_B"):
        (root / "plates" / name).mkdir(parents=True)
        (root / "plates" / name / "notes.txt").write_text(name)
    plate_dir = root / "plate_dir"
    plate_dir.mkdir()
    AtomicMetadataWriter(5).update_subdirectory_metadata(
        get_metadata_path(plate_dir), "images", {"main": True, "image_files": ["A01.tif"]}
    )
    (root / "record.json").write_text(json.dumps({"main": True, "image_files": ["B01.tif"]}))
    (root / "merged").mkdir()
    (root / "elsewhere").mkdir()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("help-world")
    build_world(root)
    return root


@pytest.mark.parametrize("path", [(), *command_paths(cli)], ids=lambda path: " ".join(path))
def test_every_help_lists_examples_that_run_as_written(
    path: tuple[str, ...], world: Path, tmp_path: Path
) -> None:
    lines = examples(path)
    assert any(line.startswith("ih5 ") for line in lines), f"'ih5 {' '.join(path)}' has none"
    here = tmp_path / "world"
    shutil.copytree(world, here, symlinks=True)
    env = {key: value for key, value in os.environ.items() if key != "FORCE_COLOR"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for line in lines:
        if any(scheme in line for scheme in NEEDS_A_SERVER):
            continue  # run against real servers by tests/remote (push, pull, pack into s3://)
        done = run_example(line, here, env)
        assert done.returncode == 0, f"{line!r} failed:\n{done.stderr}"


def test_root_help_documents_every_exit_code() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    codes = [
        exits.OK,
        exits.CHECK_FAILED,
        exits.USAGE,
        exits.NOT_FOUND,
        exits.DAMAGED,
        exits.BUSY,
        exits.REFUSED,
        exits.OS_ERROR,
        exits.BUG,
        exits.INTERRUPTED,
        exits.BROKEN_PIPE,
    ]
    documented = [
        int(line.split()[0])
        for line in result.stdout.split("Exit codes:", 1)[1].splitlines()
        if line.strip() and line.split()[0].isdigit()
    ]
    assert documented == codes
