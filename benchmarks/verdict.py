"""PASS/FAIL lines for the benchmarks' targets, one format that ``run_all.py`` reads back.

Every benchmark ends by printing one line per target::

    PASS  bench_records | open + first read, 1000 patches | 12.3 ms (5.1x h5py) | <= 50 ms

and exits with status 1 when any target failed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

LINE = re.compile(r"^(PASS|FAIL)  (\S+) \| (.+?) \| (.+?) \| (.+)$")


@dataclass(frozen=True)
class Check:
    """One target: what was measured, against what, and whether it was met."""

    bench: str
    what: str
    measured: str
    target: str
    ok: bool

    def line(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        return f"{verdict}  {self.bench} | {self.what} | {self.measured} | {self.target}"


def parse(text: str) -> list[Check]:
    """The checks a benchmark printed (other lines are ignored)."""
    checks = []
    for raw in text.splitlines():
        match = LINE.match(raw.rstrip())
        if match:
            verdict, bench, what, measured, target = match.groups()
            checks.append(Check(bench, what, measured, target, verdict == "PASS"))
    return checks


def finish(checks: Sequence[Check]) -> int:
    """Print every check; return the exit status (1 when one failed)."""
    for check in checks:
        print(check.line(), flush=True)
    return 0 if all(check.ok for check in checks) else 1


def load_note() -> str:
    """The machine's load average, for captions: benchmarks here share 2 cores with others."""
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())
