"""Many records at once: the plan and summary of ``pack-many``, ``verify`` and ``push`` on an
engine, and ``ih5 catalog``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ih5.cli._engine import open_engine
from ih5.cli._output import echo_json, echo_table, json_option, say
from ih5.cli._progress import byte_progress

if TYPE_CHECKING:  # imported where used: ``ih5 --help`` loads no h5py, numpy or rich
    from ih5.pack import (
        ContainerCheck,
        PackOutcome,
        PackPlan,
        PushItem,
        PushOutcome,
    )
    from ih5.store import RemoteOptions


def show_plan(plan: PackPlan, as_json: bool) -> None:
    """Print what ``pack-many`` would pack (records, sizes) and what it skips."""
    if as_json:
        echo_json(plan.to_json())
        return
    echo_table(
        f"plan: {plan.root} -> {plan.out_dir}",
        ["record", "source", "files", "bytes", "record exists"],
        [
            [item.name, item.source, item.files, item.bytes, "yes" if item.exists else "no"]
            for item in plan.items
        ],
    )
    report_skipped(plan)
    say(
        f"{len(plan.items)} records, {plan.files} files, {plan.bytes} bytes would be packed; "
        "nothing was written (run again without --plan to pack)"
    )


def report_skipped(plan: PackPlan) -> None:
    """Say which entries of the root do not become records."""
    for entry in plan.skipped:
        say(f"skipped {entry.path}: {entry.reason}")


def report_outcomes(outcomes: Sequence[PackOutcome]) -> None:
    """One summary line, then every failure with its error; exit 1 if any record failed."""
    actions = Counter(
        outcome.result.action if outcome.result is not None else "failed" for outcome in outcomes
    )
    counts = ", ".join(f"{count} {action}" for action, count in sorted(actions.items()))
    say(f"{len(outcomes)} records: {counts}")
    failures = [outcome for outcome in outcomes if outcome.error is not None]
    if not failures:
        return
    say("failed (the other records are packed; run the same command again to retry these):")
    for outcome in failures:
        say(f"  {outcome.record_name} ({outcome.source}): {outcome.error}")
    raise click.exceptions.Exit(1)


def verify_on_engine(
    records: Sequence[Path],
    jobs: int | None,
    scheduler: str | None,
    local_dask: bool,
    as_json: bool,
) -> None:
    """``ih5 verify`` with engine options: one task per container, then the same verdicts."""
    from ih5.pack import plan_verify, verify_plan

    plan = plan_verify(records)
    with open_engine(jobs, scheduler, local_dask) as executor, byte_progress() as bar:
        bar.phase("verifying", plan.bytes)

        def advance(check: ContainerCheck) -> None:
            bar.advance(check.size)

        checks = verify_plan(plan, executor=executor, jobs=jobs or 1, on_done=advance)
    if as_json:
        data = [
            {
                "record": check.record,
                "ok": check.ok,
                "containers": len(check.containers),
                "size": check.size,
                "error": check.error,
                "checks": [
                    {
                        "container": container.container,
                        "status": container.status,
                        "size": container.size,
                        "error": container.error,
                    }
                    for container in check.containers
                ],
            }
            for check in checks
        ]
        echo_json(data[0] if len(data) == 1 else data)
    for check in checks:
        if check.ok:
            if not as_json:
                say(
                    f"{check.record}: {len(check.containers)} containers, {check.size} bytes; "
                    "every hashsum matches"
                )
            continue
        for error in check.errors():
            say(f"Error: {error}")
    if not all(check.ok for check in checks):
        raise click.exceptions.Exit(1)


def push_items(records: Sequence[Path], url: str) -> list[PushItem]:
    """What ``ih5 push`` pushes where: one record to the record URL, or several records
    (directories stand for every record in them) each to ``URL/NAME``."""
    from ih5.cli._arguments import records_in
    from ih5.format import discover_containers, split_record_path
    from ih5.pack import PushItem, plan_push

    def is_parent(path: Path) -> bool:
        if not path.is_dir():
            return False
        try:
            directory, name = split_record_path(path)
        except ValueError:
            return True
        return not discover_containers(directory, name)

    if len(records) == 1 and not is_parent(records[0]):
        (item,) = plan_push(records, url)
        return [PushItem(item.record, url, item.bytes)]
    expanded: list[Path] = []
    for path in records:
        if not is_parent(path):
            expanded.append(path)
            continue
        inside = records_in(path)
        if not inside:
            raise click.BadParameter(f"{path} is a directory without records; nothing to push")
        expanded += [path / name for name in inside]
    try:
        return plan_push(expanded, url)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def push_on_engine(
    items: Sequence[PushItem],
    jobs: int | None,
    scheduler: str | None,
    local_dask: bool,
    remote: RemoteOptions,
    as_json: bool,
) -> None:
    """``ih5 push`` of several records: one task per record; every failure is listed."""
    from ih5.pack import push_plan

    with open_engine(jobs, scheduler, local_dask) as executor, byte_progress() as bar:
        bar.phase("pushing", sum(item.bytes for item in items))

        def advance(outcome: PushOutcome) -> None:
            bar.advance(outcome.bytes)

        outcomes = push_plan(
            items, executor=executor, jobs=jobs or 1, remote=remote, on_done=advance
        )
    if as_json:
        echo_json(
            [
                {
                    "record": outcome.record,
                    "url": outcome.url,
                    "copied": None if outcome.result is None else list(outcome.result.copied),
                    "present": None if outcome.result is None else outcome.result.present,
                    "bytes": None if outcome.result is None else outcome.result.bytes_transferred,
                    "error": outcome.error,
                }
                for outcome in outcomes
            ]
        )
    else:
        for outcome in outcomes:
            if outcome.result is not None:
                copied = len(outcome.result.copied)
                say(f"{outcome.url}: {'up to date' if not copied else f'{copied} files pushed'}")
    report_pushes(outcomes)


def report_pushes(outcomes: Sequence[PushOutcome]) -> None:
    """One summary line, then every failure with its error; exit 1 if any record failed."""
    failures = [outcome for outcome in outcomes if outcome.error is not None]
    pushed = sum(1 for outcome in outcomes if outcome.result and outcome.result.copied)
    say(
        f"{len(outcomes)} records: {pushed} pushed, "
        f"{len(outcomes) - pushed - len(failures)} up to date, {len(failures)} failed"
    )
    if not failures:
        return
    say("failed (the other records are pushed; run the same command again to retry these):")
    for outcome in failures:
        say(f"  {outcome.record} -> {outcome.url}: {outcome.error}")
    raise click.exceptions.Exit(1)


@click.command("catalog")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@json_option
def catalog_command(out_dir: Path, as_json: bool) -> None:
    """Rebuild OUT_DIR/catalog.json from the records in OUT_DIR as they are now.

    Use it after patches were copied next to the records by hand (pack-many
    keeps the catalog up to date itself). Only user blocks and manifests are
    read; no payload is hashed.

    \b
    Examples:
      ih5 catalog archive/
      ih5 catalog archive/ --json | jq '.records[] | .patch_index'
    """
    from ih5.pack import CATALOG_NAME, rebuild_catalog

    rebuilt = rebuild_catalog(out_dir)
    if as_json:
        echo_json({"records": rebuilt.records, "problems": rebuilt.problems})
    else:
        echo_table(
            str(out_dir / CATALOG_NAME),
            ["record", "patch", "files", "bytes", "source"],
            [
                [name, entry["patch_index"], entry["files"], entry["bytes"], entry["source"]]
                for name, entry in rebuilt.records.items()
            ],
        )
    for name, problem in rebuilt.problems.items():
        say(f"Error: {name} left out of the catalog: {problem}")
    if rebuilt.problems:
        raise click.exceptions.Exit(1)
