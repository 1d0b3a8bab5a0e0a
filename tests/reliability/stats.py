"""Counters of one reliability run, printed as tables at the end of a ``--long`` session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields


@dataclass
class SweepRow:
    """One operation swept under one fault mode."""

    operation: str
    mode: str
    points: int = 0
    """Injection points the operation passes (its dry run's count)."""
    tried: int = 0
    """Trials run (points faulted)."""
    injected: int = 0
    """Errors raised into the operation."""
    kills: int = 0
    old: int = 0
    new: int = 0
    forward: int = 0
    """Trials after which the next writer found the new state where the reader saw the old
    one: it rolled a sealed container forward, resumed a suspended one, or (pack, merge,
    stub) ran the operation again."""
    late_raise: int = 0
    """The operation raised although its new state was already visible (directory fsync)."""
    swallowed: int = 0
    """The operation completed although a fault was injected (the error was handled)."""
    inconsistent: int = 0
    lost: int = 0
    garbage: int = 0
    """Trials after which the next writer left files ih5 should have removed."""
    kinds: set[str] = field(default_factory=set)
    """Kinds of injection points faulted (os.replace, h5py.close, ...)."""
    remains: set[str] = field(default_factory=set)
    """Files the next writer leaves besides containers, manifests and JSON documents."""


@dataclass
class StressRow:
    """One concurrency run."""

    test: str
    processes: int = 0
    operations: int = 0
    """Commits or updates acknowledged by the workers."""
    reads: int = 0
    """Reader passes over the record or document."""
    states: int = 0
    """Distinct committed states the readers saw."""
    kills: int = 0
    retries: int = 0
    """Lock timeouts and conflicts the writers retried after."""
    lost: int = 0
    inconsistent: int = 0
    seconds: float = 0.0


@dataclass
class Report:
    """Everything counted in this pytest process."""

    long: bool = False
    sweeps: list[SweepRow] = field(default_factory=list)
    stress: list[StressRow] = field(default_factory=list)

    def sweep(self, operation: str, mode: str) -> SweepRow:
        row = SweepRow(operation, mode)
        self.sweeps.append(row)
        return row

    def stress_run(self, test: str) -> StressRow:
        row = StressRow(test)
        self.stress.append(row)
        return row

    def lines(self) -> Iterator[str]:
        if not self.sweeps and not self.stress:
            return
        size = "long (--long)" if self.long else "CI-sized (pass --long for the full sweep)"
        yield f"mode: {size}"
        if self.sweeps:
            yield from _table(
                [
                    {
                        **{
                            f.name: getattr(row, f.name)
                            for f in fields(row)
                            if f.name not in ("kinds", "remains")
                        },
                        "kinds": len(row.kinds),
                    }
                    for row in self.sweeps
                ],
                total_from=2,
            )
            yield "columns:"
            yield from _legend(SWEEP_COLUMNS)
            covered = sorted({kind for row in self.sweeps for kind in row.kinds})
            yield "injection point kinds faulted: " + ", ".join(covered)
            remains = sorted({name for row in self.sweeps for name in row.remains})
            yield "the next writer leaves, besides records and documents: " + (
                ", ".join(remains) or "nothing"
            )
        if self.stress:
            yield ""
            yield from _table(
                [{f.name: getattr(row, f.name) for f in fields(row)} for row in self.stress],
                total_from=1,
            )
            yield "columns:"
            yield from _legend(STRESS_COLUMNS)


SWEEP_COLUMNS = {
    "operation": "what was run with faults injected (commit, pack, merge, stub, ...)",
    "mode": "the fault: error (raise once), sticky (raise from then on, as a full disk), "
    "kill (SIGKILL)",
    "points": "injection points the operation passes (counted by a dry run)",
    "tried": "trials run, one fault at one point each",
    "injected": "errors raised into the operation",
    "kills": "trials whose process was SIGKILLed at the point",
    "old": "trials after which a reader saw the state before the operation",
    "new": "trials after which a reader saw the state after the operation",
    "forward": "trials after which the next writer completed the operation (rolled forward, "
    "resumed or re-ran it) where the reader had seen the old state",
    "late_raise": "trials in which the operation raised although its new state was visible",
    "swallowed": "trials in which the operation handled the fault and completed",
    "inconsistent": "trials after which a reader saw neither state or could not open it "
    "(must be 0)",
    "lost": "trials that lost acknowledged data (must be 0)",
    "garbage": "trials after which the next writer left files ih5 should have removed",
    "kinds": "how many kinds of injection point were faulted (os.replace, h5py.close, ...)",
}
"""What each column of the sweep table counts (printed once under the table)."""

STRESS_COLUMNS = {
    "test": "the concurrency run",
    "processes": "worker processes",
    "operations": "commits or updates the workers acknowledged",
    "reads": "reader passes over the record or document",
    "states": "distinct committed states the readers saw",
    "kills": "workers SIGKILLed during the run",
    "retries": "lock timeouts and conflicts the writers retried after",
    "lost": "acknowledged operations missing at the end (must be 0)",
    "inconsistent": "reads that saw a torn or invalid state (must be 0)",
    "seconds": "wall time of the run",
}
"""What each column of the stress table counts."""


def _legend(columns: dict[str, str]) -> Iterator[str]:
    width = max(len(name) for name in columns)
    for name, meaning in columns.items():
        yield f"  {name.ljust(width)}  {meaning}"


def _cell(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _table(rows: list[dict[str, object]], total_from: int) -> Iterator[str]:
    """A plain text table with a totals line (numeric columns from ``total_from`` on)."""
    headers = list(rows[0])
    totals: dict[str, object] = {header: "" for header in headers}
    totals[headers[0]] = "TOTAL"
    for header in headers[total_from:]:
        column = [row[header] for row in rows]
        numbers = [value for value in column if isinstance(value, (int, float))]
        if len(numbers) == len(column):
            totals[header] = sum(numbers)
    body = [[_cell(row[header]) for header in headers] for row in [*rows, totals]]
    widths = [
        max(len(header), *(len(line[i]) for line in body)) for i, header in enumerate(headers)
    ]

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < total_from else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    yield render(headers)
    yield render(["-" * width for width in widths])
    for line in body[:-1]:
        yield render(line)
    yield render(["-" * width for width in widths])
    yield render(body[-1])


REPORT = Report()
"""The counters of this session (filled by the tests, printed by conftest.py)."""
