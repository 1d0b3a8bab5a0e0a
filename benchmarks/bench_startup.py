"""Command start-up: ``ih5 --help`` and metadata commands, against a bare Python start-up.

Each command runs in a fresh process, best of ``--repeat`` runs, arms interleaved,
with Python's bytecode cache on as in an installation (``pycache_env.py``).
The table also says which heavy modules (h5py, numpy, pydantic) the command
imported. Target: ``ih5 --help`` in 0.15 s or less, and neither it nor
``ih5 meta --help`` importing h5py, numpy or pydantic.

    .venv/bin/python benchmarks/bench_startup.py            # best of 15
    .venv/bin/python benchmarks/bench_startup.py --quick    # CI-sized: best of 5
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pycache_env import cached_bytecode_env, warm_up
from rich.console import Console
from rich.table import Table
from verdict import Check, finish, load_note

BENCH = "bench_startup"
TARGET_HELP_S = 0.15
HEAVY = ("h5py", "numpy", "pydantic")

PROBE = """
import runpy, sys
sys.argv = ["ih5", *sys.argv[1:]]
try:
    runpy.run_module("ih5", run_name="__main__")
except SystemExit:
    pass
print("\\nHEAVY " + " ".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""

ARMS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "ih5 --help": [sys.executable, "-m", "ih5", "--help"],
    "ih5 meta --help": [sys.executable, "-m", "ih5", "meta", "--help"],
}


def run_once(command: list[str], env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def heavy_imports(args: list[str]) -> list[str]:
    """The heavy modules a command imported."""
    probe = PROBE.format(heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", probe, *args], check=True, capture_output=True, text=True
    )
    line = out.stderr.strip().splitlines()[-1]
    return line.split()[1:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs per arm; best counts")
    parser.add_argument("--quick", action="store_true", help="CI-sized: best of 5")
    args = parser.parse_args(argv)
    repeat = 5 if args.quick else args.repeat
    best = dict.fromkeys(ARMS, float("inf"))
    with tempfile.TemporaryDirectory(prefix="bench_startup-pyc-") as cache:
        env = cached_bytecode_env(Path(cache))
        warm_up(ARMS.values(), env)
        for _ in range(repeat):
            for name, command in ARMS.items():
                best[name] = min(best[name], run_once(command, env))
    imported = {
        "ih5 --help": heavy_imports(["--help"]),
        "ih5 meta --help": heavy_imports(["meta", "--help"]),
    }
    table = Table(
        title=f"ih5 start-up, best of {repeat}",
        caption=f"load average {load_note()} at the end",
    )
    for column in ("command", "seconds", "vs python -c pass", "imports"):
        table.add_column(column, justify="right" if column != "command" else "left")
    bare = best["python -c pass"]
    for name, seconds in best.items():
        heavy = ", ".join(imported.get(name, [])) or ("-" if name in imported else "")
        table.add_row(name, f"{seconds:.3f}", f"{seconds / bare:.1f}x", heavy)
    Console(width=100).print(table)
    checks = [
        Check(
            BENCH,
            "ih5 --help start-up",
            f"{best['ih5 --help']:.3f} s",
            f"<= {TARGET_HELP_S} s",
            best["ih5 --help"] <= TARGET_HELP_S,
        ),
    ]
    for name, heavy in imported.items():
        checks.append(
            Check(
                BENCH,
                f"{name} imports h5py/numpy/pydantic",
                ", ".join(heavy) or "none",
                "none",
                not heavy,
            )
        )
    return finish(checks)


if __name__ == "__main__":
    sys.exit(main())
