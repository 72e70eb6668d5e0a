"""What several commands end with: watching a run with live progress, then its summary (in rows,
for a sweep)."""

from __future__ import annotations

import sys
from typing import Any

import click

from runner.aws.job_status import Progress
from runner.cli import EXIT_INTERRUPTED
from runner.cli.context import CliContext
from runner.cli.group import EXIT_JOBS_FAILED
from runner.runs.service import JobRef
from runner.runs.watch import watch
from runner.show import terminal

# Rows not done that a summary names (results shows more).
SUMMARY_ROWS = 10


def watch_with_progress(ref: JobRef, interval: float) -> Progress:
    """Watch with live progress; Ctrl-C stops watching, never the jobs."""
    console = terminal.make_console(stderr=True)
    view = terminal.ProgressView(console)
    try:
        with view.running():
            return watch(
                ref.target.client("batch"),
                ref.job_ids,
                interval=interval,
                on_progress=view.update,
                on_retry=view.retrying,
                on_stuck=lambda p: view.stuck(p, ref.run_id or ref.job_id),
            )
    except KeyboardInterrupt:
        resume = ref.run_id or ref.job_id
        click.echo(
            f"Stopped watching; the jobs keep running. Resume with `runner watch {resume}`, "
            f"stop them with `runner cancel {resume}`.",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)


def summarize_and_show(
    context: CliContext,
    ref: JobRef,
    as_json: bool,
    *,
    price: float | None = None,
    refresh: bool = False,
    all_attempts: bool = False,
    submitted: dict[str, Any] | None = None,
) -> None:
    """The run's summary, a sweep's rows by state beside its tasks (from the same lineage, read
    once); exits 3 when a task or row failed."""
    service = context.service()
    parts = service.summary_lineage(ref, refresh=refresh, all_attempts=all_attempts)
    summary = service.fold(ref, parts, price)
    rows = service.results(ref, shown=SUMMARY_ROWS, parts=parts) if ref.sweep else None
    lineage = service.code_lineage(ref) if ref.whole_run else []
    if as_json:
        document = summary.to_json()
        document["code"] = [
            {"runId": record.run_id, "code": record.code, "changes": record.changes} for record in lineage
        ]
        if rows is not None:
            document["rows"] = {
                "rows": rows.sweep.rows,
                "perTask": rows.sweep.per_task,
                "keyColumn": rows.sweep.key_column,
                "counts": rows.counts_json(),
                "doneByCode": rows.done_by_code_json(),
                "notDone": [item.to_json() for item in rows.details],
            }
        terminal.print_json(document if submitted is None else {**submitted, "summary": document})
    else:
        console = terminal.make_console()
        terminal.show_summary(console, summary, memory_mib=ref.memory_mib)
        terminal.show_code(console, lineage)
        if rows is not None:
            terminal.show_sweep_rows(console, rows)
    if summary.failed or (rows is not None and summary.complete and not rows.complete):
        sys.exit(EXIT_JOBS_FAILED)
