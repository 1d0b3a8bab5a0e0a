"""Run every benchmark (``bench_*.py`` beside this file) CI-sized and print one table.

Each benchmark runs with ``--quick`` in its own process, one after the other;
their own tables go to this script's stderr, their PASS/FAIL lines (see
``verdict.py``) are gathered into one table of every target. A benchmark that
crashes, or prints no target, counts as a FAIL. Exit status 1 when any failed.
First the peers in ``peers.txt`` are installed into this environment (skip with
``--no-peers``); a benchmark whose peer is missing says so and skips that arm.

    .venv/bin/python benchmarks/run_all.py                  # every benchmark, --quick
    .venv/bin/python benchmarks/run_all.py --full           # every benchmark, full size
    .venv/bin/python benchmarks/run_all.py bench_pack bench_startup
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from verdict import Check, load_note, parse

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers.txt"


def install_peers(talk: Console) -> None:
    """Install the peer packages the benchmarks compare against (no-op when present)."""
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-r", str(PEERS)]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        talk.print(f"could not install the peers in {PEERS.name}; their arms are skipped")
        talk.print(done.stdout[-2000:])


FULL_FLAGS = {"bench_chunks": ["--full"], "bench_remote": ["--full"]}
"""Benchmarks whose default run is CI-sized: what makes them run the issues' sizes."""


def run(script: Path, full: bool, talk: Console) -> tuple[list[Check], float]:
    """Run one benchmark; return its checks (a FAIL for a crash) and its wall time."""
    flags = FULL_FLAGS.get(script.stem, []) if full else ["--quick"]
    command = [sys.executable, str(script), *flags]
    talk.rule(" ".join([script.name, *flags]))
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    elapsed = time.perf_counter() - start
    sys.stderr.write(done.stdout)
    checks = parse(done.stdout)
    name = script.stem
    if done.returncode not in (0, 1) or not checks:
        checks.append(Check(name, "benchmark ran", f"exit status {done.returncode}", "0", False))
    elif done.returncode == 1 and all(check.ok for check in checks):
        checks.append(Check(name, "exit status", "1 with no FAIL line", "0", False))
    return checks, elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="benchmark names to run (default: all)")
    parser.add_argument("--full", action="store_true", help="full sizes instead of --quick")
    parser.add_argument("--no-peers", action="store_true", help=f"do not install {PEERS.name}")
    args = parser.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {name.removesuffix(".py") for name in args.only}
        scripts = [script for script in scripts if script.stem in wanted]
    talk = Console(stderr=True)
    if not args.no_peers:
        install_peers(talk)
    checks: list[Check] = []
    times: dict[str, float] = {}
    for script in scripts:
        found, times[script.stem] = run(script, args.full, talk)
        checks += found
    table = Table(
        title=f"ih5 benchmarks ({'full' if args.full else '--quick'}), one run",
        caption=f"load average {load_note()} at the end",
    )
    for column in ("benchmark", "target", "measured", "goal", "verdict"):
        table.add_column(column)
    for check in checks:
        verdict = "[green]PASS[/green]" if check.ok else "[red]FAIL[/red]"
        table.add_row(check.bench, check.what, check.measured, check.target, verdict)
    console = Console()
    console.width = max(console.width, 140)
    console.print(table)
    failed = sum(not check.ok for check in checks)
    spent = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items())
    console.print(f"{len(checks) - failed} passed, {failed} failed targets ({spent})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
