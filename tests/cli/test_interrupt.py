"""Ctrl-C in any command: exit code 130 and one line on stderr saying what happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ih5 import IH5Record
from ih5.cli import cli
from ih5.cli._app import _redelivering_interrupts
from ih5.pack import pack_directory
from tests.helpers.nodes import as_dataset

MIB = 1 << 20


def test_cli_reports_ctrl_c_in_one_line_with_exit_code_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyboardInterrupt is neither swallowed nor shown as click's bare 'Aborted!'."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("ih5.pack.pack_directory", interrupted)  # looked up per call
    (tmp_path / "src").mkdir()
    result = CliRunner().invoke(cli, ["pack", str(tmp_path / "src"), str(tmp_path / "rec")])
    assert result.exit_code == 130
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("ih5 pack: interrupted by Ctrl-C; nothing half-written")
    assert result.stdout == ""


def _ih5() -> list[str]:
    return [sys.executable, "-c", "from ih5.cli import main; main()"]


def _ctrl_c_handled() -> None:
    """In the child: Ctrl-C as in a terminal. A test run started in the background of a
    shell ignores SIGINT, children inherit that, and Python then never handles it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in this process, as it does at a terminal."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_regression_ctrl_c_during_pack_exits_130_and_leaves_the_record_as_it_was(
    tmp_path: Path,
) -> None:
    """SIGINT while a patch is written: exit 130, one line, the record opens in its old state."""
    source = tmp_path / "src"
    source.mkdir()
    for index in range(24):
        (source / f"f{index:02d}.bin").write_bytes(b"old")
    record = tmp_path / "out" / "rec"
    pack_directory(source, record)
    for index in range(24):
        with open(source / f"f{index:02d}.bin", "wb") as handle:
            handle.write(os.urandom(4 * MIB))
    with subprocess.Popen(
        [*_ih5(), "pack", str(source), str(record)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_handled,
    ) as process:
        deadline = time.monotonic() + 60
        while not list(record.parent.glob(".rec.p1.ih5*")) and process.poll() is None:
            assert time.monotonic() < deadline, "the patch never started"
            time.sleep(0.002)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.count("\n") == 1 and "interrupted by Ctrl-C" in stderr
    assert stdout == ""
    with IH5Record(record) as rec:
        assert [entry.index for entry in rec.history()] == [0]
        assert bytes(as_dataset(rec["f00.bin"])[()]) == b"old"


class _Unraisable:
    """What Python hands sys.unraisablehook (only the fields the hook reads)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc_type = type(exc)
        self.exc_value = exc
        self.exc_traceback = None
        self.err_msg = None
        self.object = None


@pytest.mark.usefixtures("ctrl_c_raises")
def test_a_ctrl_c_swallowed_by_a_weakref_callback_is_raised_again_in_the_main_thread() -> None:
    """h5py runs a weakref callback per dying HDF5 object; Python drops what one raises."""
    passed_on: list[object] = []
    hook = _redelivering_interrupts(passed_on.append)
    hook(_Unraisable(KeyboardInterrupt()))  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        time.sleep(5)
    assert passed_on == []


def test_other_unraisable_errors_go_to_the_previous_hook() -> None:
    passed_on: list[object] = []
    hook = _redelivering_interrupts(passed_on.append)
    unraisable = _Unraisable(ValueError("in a finalizer"))
    hook(unraisable)  # type: ignore[arg-type]
    assert passed_on == [unraisable]
