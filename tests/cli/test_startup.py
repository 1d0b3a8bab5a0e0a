"""Start-up stays light: ``ih5 --help`` and ``import ih5`` load no h5py, numpy or pydantic;
``ih5 pack`` loads no pydantic or rich, no object-storage client, no metadata scan of the
installed packages, and none of the other commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ih5

HEAVY = ("h5py", "numpy", "pydantic", "rich")

PROBE = """
import sys
from ih5.cli import cli
try:
    cli(sys.argv[1:], prog_name="ih5")
except SystemExit:
    pass
print(" ".join(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["meta", "--help"], ["pack", "--help"]])
def test_command_help_loads_no_heavy_module(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "Usage: ih5" in done.stdout
    assert done.stderr.strip().splitlines()[-1:] in ([], [""])


def test_import_ih5_loads_no_heavy_module() -> None:
    probe = f"import sys, ih5; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_every_public_name_of_ih5_resolves_on_first_use() -> None:
    for name in ih5.__all__:
        assert getattr(ih5, name) is not None, name
    assert set(ih5.__all__) <= set(dir(ih5))


def test_an_unknown_name_of_ih5_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        ih5.no_such_name  # noqa: B018


PACK_PROBE = """
import json, sys
from ih5.cli import main
sys.argv = ["ih5", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    status = exc.code
print(json.dumps([status, sorted(set(sys.modules) & {light!r})]))
"""
"""Runs the ``ih5`` entry point as a script would (stderr is no terminal, so no bar is
shown), then prints its exit status and which of the modules a pack must not need it
loaded."""

NOT_FOR_PACKING = {
    "pydantic",
    "pydantic_core",
    "rich",
    "obstore",  # the object-storage client: only for s3:// and http(s):// records
    "importlib.metadata",  # the scan for codec plug-ins, skipped when none is installed
    "email",  # what importlib.metadata imports
    "ih5.record._diff",
    "ih5.record._transfer",
    "ih5.cli._records",  # the other commands
    "ih5.cli._contents",
    "ih5.cli._meta",
}
"""Modules (exact names) a pack by the command does without."""


def _pack_in_subprocess(source: Path, record: Path, *options: str) -> list[object]:
    probe = PACK_PROBE.format(light=NOT_FOR_PACKING)
    done = subprocess.run(
        [sys.executable, "-c", probe, "pack", str(source), str(record), *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    result: list[object] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result[0] in (0, None), done.stderr
    return result


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    for index in range(3):
        (source / "sub" / f"f{index}.bin").write_bytes(bytes([index]) * 1000)
    (source / "notes.txt").write_text("notes\n")
    return source


def test_a_trust_mtime_repack_by_the_command_loads_none_of_what_it_does_without(
    tmp_path: Path,
) -> None:
    source = _source(tmp_path)
    record = tmp_path / "archive" / "rec"
    _pack_in_subprocess(source, record)
    (source / "sub" / "f1.bin").write_bytes(b"changed" * 100)
    (source / "new.txt").write_text("added\n")
    assert _pack_in_subprocess(source, record, "--trust-mtime") == [0, []]
    # The patch is the real thing: the record holds the change.
    with ih5.IH5MFRecord(record) as rec:
        assert rec.user_block.patch_index == 1
        assert sorted(rec.manifest_exts["ih5_pack"]["entries"]) == [
            "new.txt",
            "notes.txt",
            "sub",
            "sub/f0.bin",
            "sub/f1.bin",
            "sub/f2.bin",
        ]


def test_a_first_pack_by_the_command_loads_none_of_what_it_does_without(tmp_path: Path) -> None:
    result = _pack_in_subprocess(_source(tmp_path), tmp_path / "archive" / "rec")
    assert result == [0, []]
    assert (tmp_path / "archive" / "rec.ih5mf.json").is_file()


BLAS_PROBE = """
import os, sys
from ih5.cli import main
sys.argv = ["ih5", "--version"]
try:
    main()
except SystemExit:
    pass
print(os.environ.get("OPENBLAS_NUM_THREADS"))
"""


@pytest.mark.parametrize(("given", "seen"), [(None, "1"), ("3", "3")])
def test_the_command_asks_numpy_for_one_blas_thread_unless_told(
    given: str | None, seen: str
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    done = subprocess.run(
        [sys.executable, "-c", BLAS_PROBE],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    assert done.stdout.split()[-1] == seen
