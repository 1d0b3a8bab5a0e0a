"""The closing reliability tables explain every column once."""

from __future__ import annotations

from dataclasses import fields

from .stats import STRESS_COLUMNS, SWEEP_COLUMNS, Report, StressRow, SweepRow


def test_every_sweep_and_stress_column_is_explained_once() -> None:
    report = Report()
    report.sweep("commit", "kill").tried = 3
    report.stress_run("2 competing writers").processes = 2
    lines = list(report.lines())
    swept = [f.name for f in fields(SweepRow) if f.name != "remains"]
    assert list(SWEEP_COLUMNS) == swept
    assert list(STRESS_COLUMNS) == [f.name for f in fields(StressRow)]
    legend = [line.split()[0] for line in lines if line.startswith("  ")]
    assert legend == [*SWEEP_COLUMNS, *STRESS_COLUMNS]
    assert lines.count("columns:") == 2
