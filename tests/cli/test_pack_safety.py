"""What never goes into an archive, what a pack refuses, and what it says while it waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ih5.cli import _exits as exits
from ih5.cli import cli
from ih5.metadata import AtomicMetadataWriter, get_metadata_path


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def packed_paths(record: Path) -> list[str]:
    result = invoke("tree", record, "--json")
    assert result.exit_code == 0, result.stderr
    return [entry["path"] for entry in json.loads(result.stdout)]


def test_ih5_lock_files_are_left_out_but_a_users_lock_file_is_data(tmp_path: Path) -> None:
    plate = tmp_path / "plate"
    plate.mkdir()
    AtomicMetadataWriter(5).update_subdirectory_metadata(
        get_metadata_path(plate), "images", {"main": True}
    )
    assert (plate / "openhcs_metadata.json.lock").exists()
    (plate / "poetry.lock").write_text("[[package]]\n")
    (plate / "orphan.json.lock").write_text("")  # no orphan.json beside it: data
    record = tmp_path / "archive" / "plate"
    assert invoke("pack", plate, record).exit_code == 0
    assert packed_paths(record) == [
        "/",
        "/openhcs_metadata.json",
        "/orphan.json.lock",
        "/poetry.lock",
    ]


def test_ih5_staging_and_temp_files_are_left_out(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "data.txt").write_text("data")
    (source / ".rec.p1.ih5.host-123-abcd1234.writing").write_bytes(b"staged")
    (source / ".doc.json.x1y2.ih5tmp").write_bytes(b"temp")
    record = tmp_path / "archive" / "rec"
    assert invoke("pack", source, record).exit_code == 0
    assert packed_paths(record) == ["/", "/data.txt"]


def test_exclude_patterns_leave_out_matching_paths_at_any_depth_or_from_the_root(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src"
    (source / "cache").mkdir(parents=True)
    (source / "sub" / "cache").mkdir(parents=True)
    (source / "cache" / "x.bin").write_bytes(b"x")
    (source / "sub" / "cache" / "y.bin").write_bytes(b"y")
    (source / "sub" / "keep.txt").write_text("keep")
    (source / "sub" / "scratch.tmp").write_text("tmp")
    (source / "top.tmp").write_text("tmp")
    record = tmp_path / "archive" / "rec"
    result = invoke("pack", source, record, "--exclude", "*.tmp", "--exclude", "/cache/")
    assert result.exit_code == 0, result.stderr
    assert packed_paths(record) == [
        "/",
        "/sub",
        "/sub/cache",
        "/sub/cache/y.bin",
        "/sub/keep.txt",
    ]


def test_an_unsupported_exclude_pattern_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    result = invoke("pack", tmp_path / "src", tmp_path / "rec", "--exclude", "!keep.txt")
    assert result.exit_code == exits.REFUSED
    assert "'!' negation are not supported" in result.stderr


def test_packing_into_a_subfolder_of_the_source_refuses(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    result = invoke("pack", source, source / "archive" / "rec")
    assert result.exit_code == exits.REFUSED
    assert "the record would archive itself; write it outside, e.g. " in result.stderr
    assert not (source / "archive").exists()


def test_packing_a_different_source_into_a_record_asks_for_replace(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "a.txt").write_text("a")
    (first / "b.txt").write_text("b")
    (second / "other.txt").write_text("other")
    record = tmp_path / "archive" / "rec"
    assert invoke("pack", first, record).exit_code == 0
    refused = invoke("pack", second, record)
    assert refused.exit_code == exits.REFUSED
    assert "would remove every path packed before (a.txt, b.txt) and add 1" in refused.stderr
    assert "pass --replace" in refused.stderr
    assert not (tmp_path / "archive" / "rec.p1.ih5").exists()
    replaced = invoke("pack", second, record, "--replace", "--json")
    assert replaced.exit_code == 0, replaced.stderr
    assert json.loads(replaced.stdout)["removed"] == ["/a.txt", "/b.txt"]


HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from ih5.fs import file_lock
    with file_lock(sys.argv[1], 10):
        print("locked", flush=True)
        sys.stdin.readline()  # held until the test says so
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="lock holders are read from /proc")
def test_a_second_pack_says_it_waits_for_the_writer_and_then_packs(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    record = tmp_path / "archive" / "rec"
    assert invoke("pack", source, record).exit_code == 0
    (source / "b.txt").write_text("b")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "archive" / "rec.ih5")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    packer = None
    try:
        assert holder.stdout.readline() == "locked\n"
        packer = subprocess.Popen(
            [sys.executable, "-m", "ih5", "pack", str(source), str(record)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert packer.stderr is not None
        first = packer.stderr.readline().rstrip("\n")  # said while it waits
        holder.stdin.write("release\n")
        holder.stdin.flush()
        rest = packer.stderr.read().splitlines()
        assert packer.wait(timeout=60) == 0, rest
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
        if packer is not None:
            if packer.poll() is None:
                packer.kill()
                packer.wait()
            if packer.stderr is not None:
                packer.stderr.close()
    assert first == (
        f"ih5: waiting for the writer of record {record} (pid {holder.pid} on {os.uname()[1]}) "
        "to finish"
    )
    (last,) = rest
    assert last.startswith(f"{record}: wrote patch 1 (1 added, 0 changed, 0 removed)")


def python2_npy(values: list[int]) -> bytes:
    """An .npy file as Python 2's numpy wrote it: long integers (``3L``) in the header."""
    header = f"{{'descr': '<i8', 'fortran_order': False, 'shape': ({len(values)}L,), }}"
    padded = header.ljust(118) + "\n"
    return (
        b"\x93NUMPY\x01\x00"
        + len(padded).to_bytes(2, "little")
        + padded.encode()
        + bytes(b"".join(value.to_bytes(8, "little") for value in values))
    )


def test_an_old_npy_file_packs_and_unpacks_without_warnings(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "old.npy").write_bytes(python2_npy([1, 2, 3]))
    record = tmp_path / "archive" / "rec"
    packed = invoke("pack", source, record)  # warnings are errors in this test run
    assert packed.exit_code == 0, packed.stderr
    assert packed.stderr.count("\n") == 1
    result = invoke("cat", record, "/old.npy")
    assert result.exit_code == 0
    assert result.stdout_bytes == python2_npy([1, 2, 3])
    assert result.stderr == ""
