"""Everything the runner shows a person: rich tables and progress, or plain text off a TTY."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runner.analysis.failure_classes import hint
from runner.analysis.summary import EVERY_ATTEMPT_BASIS, Summary
from runner.aws.job_logs import LogStream
from runner.aws.job_status import STATUSES
from runner.aws.job_status import Progress as JobProgress
from runner.indices import format_ranges
from runner.runs.code_package import describe_code, short
from runner.runs.collect import Collected
from runner.runs.results import RowResults
from runner.runs.retry import describe_changes
from runner.runs.rows import ROW_STATES, STATE_TITLES
from runner.runs.service import RowLog
from runner.runs.store import Pruned, RunRecord

FAILURES_SHOWN = 20
STATUS_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "RUNNING": "cyan", "RUNNABLE": "yellow"}
OUTCOME_STYLE = {"failed": "red", "incomplete": "yellow", "cancelled": "yellow"}
CLASS_STYLE = {"spot": "yellow", "infra": "yellow", "app": "red", "oom": "magenta", "timeout": "magenta"}


PLAIN_WIDTH = 200


def make_console(stderr: bool = False) -> Console:
    """Rich decides colour from the TTY and NO_COLOR; highlighting off keeps output literal.

    Off a terminal lines are not wrapped at 80 columns, so piped output stays greppable.
    """
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console.width = PLAIN_WIDTH
    return console


def print_json(data: Any) -> None:
    """Stable machine-readable output: sorted keys, one document, on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def counts_text(progress: JobProgress | Summary) -> str:
    return "  ".join(
        f"{name} {progress.counts.get(name, 0)}"
        for name in STATUSES
        if progress.counts.get(name, 0) or name in ("SUCCEEDED", "FAILED")
    )


class ProgressView:
    """Live progress: a bar on a terminal, one line per change otherwise."""

    def __init__(
        self, console: Console, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    ) -> None:
        self.console = console
        self.clock = clock
        self._bar: Progress | None = None
        self._task: Any = None
        self._last: dict[str, int] | None = None

    @contextmanager
    def running(self) -> Iterator[ProgressView]:
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            with self._bar:
                yield self
        else:
            yield self

    def update(self, progress: JobProgress) -> None:
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(
                    progress.job_name or progress.job_id, total=progress.size, counts=""
                )
            self._bar.update(self._task, completed=progress.finished, counts=counts_text(progress))
            return
        if progress.counts != self._last:
            stamp = self.clock().strftime("%H:%M:%S")
            self.console.print(f"{stamp}  {progress.finished}/{progress.size} done  {counts_text(progress)}")
            self._last = dict(progress.counts)

    def stuck(self, progress: JobProgress, run: str) -> None:
        """Tasks wait in RUNNABLE and nothing finishes: point at the command that says why."""
        line = (
            f"{progress.counts.get('RUNNABLE', 0):,} task(s) have waited RUNNABLE for 10 minutes with none "
            f"finishing: `runner why {run}` says why"
        )
        if self._bar is not None:
            self._bar.console.print(line, markup=False)
        else:
            self.console.print(f"{self.clock().strftime('%H:%M:%S')}  {line}", markup=False)

    def retrying(self, error: Exception, delay: float) -> None:
        """A failed poll that will be retried: shown, never fatal."""
        line = f"poll failed: {error}; retrying in {delay:.0f}s"
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, counts=f"[yellow]{line}[/yellow]")
        else:
            stamp = self.clock().strftime("%H:%M:%S")
            self.console.print(f"{stamp}  {line}", markup=False)


def _seconds(value: float) -> str:
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.2f}h"


def show_summary(console: Console, summary: Summary, *, memory_mib: int | None = None) -> None:
    """Counts, failures by class with what to do, the first failures, runtimes, Spot and cost."""
    title = f"Run {summary.run_id}" if summary.run_id else f"Job {summary.job_id}"
    state = "complete" if summary.complete else "in progress"
    console.print(f"[bold]{title}[/bold]  {summary.job_name}  {summary.status} ({state})")
    shards = len(summary.job_ids)
    where = f"job {summary.job_id}" if shards <= 1 else f"{shards} array jobs"
    console.print(f"{summary.size:,} task{'s' if summary.size != 1 else ''}, {where}")
    if summary.folded_run_ids:
        console.print(f"latest outcome per index, with retry runs {', '.join(summary.folded_run_ids)}")

    counts = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for name in STATUSES:
        counts.add_column(name, justify="right", style=STATUS_STYLE.get(name, ""))
    counts.add_row(*(f"{summary.counts.get(name, 0):,}" for name in STATUSES))
    console.print(counts)

    if summary.failures:
        run = summary.run_id or summary.job_id
        classes = Table(
            title=f"{summary.failed:,} failed, by class",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            title_justify="left",
            title_style="bold red",
        )
        for column in ("class", "tasks", "indices", "what to do"):
            classes.add_column(column, overflow="fold", justify="right" if column == "tasks" else "left")
        for name, indices in summary.failure_classes.items():
            classes.add_row(
                name,
                f"{len(indices):,}",
                format_ranges(indices, limit=6),
                hint(name, run, first_index=indices[0], memory_mib=memory_mib),
                style=CLASS_STYLE.get(name, ""),
            )
        console.print(classes)
        failures = Table(box=box.SIMPLE_HEAD, show_edge=False)
        for column in ("index", "class", "exit", "attempts", "status reason", "container reason"):
            failures.add_column(column, overflow="fold")
        for failure in summary.failures[:FAILURES_SHOWN]:
            failures.add_row(
                "-" if failure.index is None else str(failure.index),
                failure.failure_class,
                "-" if failure.exit_code is None else str(failure.exit_code),
                str(failure.attempts),
                failure.status_reason or "",
                failure.reason or "",
            )
        console.print(failures)
        hidden = len(summary.failures) - FAILURES_SHOWN
        if hidden > 0:
            console.print(f"... and {hidden:,} more failures: `runner summary --json` lists them all")

    if summary.runtime:
        r = summary.runtime
        console.print(
            f"runtime  min {_seconds(r.min)}  p50 {_seconds(r.p50)}  p90 {_seconds(r.p90)}"
            f"  max {_seconds(r.max)}"
        )
    cost = summary.cost
    over = f"; {cost.basis.removeprefix('estimate: ').split(' x ')[0]}" if cost else ""
    console.print(f"compute  {summary.vcpu_hours:.3f} vCPU-hours ({summary.vcpus} vCPU per task{over})")
    if summary.spot and summary.spot.attempts:
        more = "" if summary.spot.basis == EVERY_ATTEMPT_BASIS else "; `--attempts` counts every attempt"
        console.print(
            f"spot     {summary.spot.attempts:,} attempt{'s' if summary.spot.attempts != 1 else ''} "
            f"reclaimed, {summary.spot.vcpu_hours:.3f} vCPU-hours lost ({summary.spot.basis}{more})"
        )
    if cost:
        wasted = f", of which reclaimed attempts ~${cost.wasted_usd:.2f}" if cost.wasted_usd else ""
        source = cost.basis.split(" x ", 1)[1] if " x " in cost.basis else cost.basis
        console.print(
            f"cost     ~${cost.estimated_usd:.2f} estimated on {cost.purchase_model} at "
            f"${cost.usd_per_vcpu_hour:g}/vCPU-h ({source}){wasted}; on {cost.alternative_model} "
            f"~${cost.alternative_usd:.2f} at ${cost.alternative_usd_per_vcpu_hour:g}/vCPU-h"
        )
    run = summary.run_id or summary.job_id
    console.print(f"report   `runner report {run}`: timeline, runtimes and failures as one HTML file")


def show_written(console: Console, html: Path, size: int, pngs: Sequence[Path]) -> None:
    console.print(f"Report written to [bold]{html}[/bold] ({size / 1024:,.0f} KiB, self-contained)")
    for png in pngs:
        console.print(f"  chart {png}")


def show_code(console: Console, lineage: Sequence[RunRecord]) -> None:
    """The code each run of a lineage ran and what each retry changed (nothing when none shipped code)."""
    if not any(record.code or record.changes for record in lineage):
        return
    for number, record in enumerate(lineage):
        label = "code     " if number == 0 else "         "
        which = "run" if record.parent_run_id is None else "retry"
        changed = "; ".join(describe_changes(record.changes))
        console.print(
            f"{label}{describe_code(record.code)} in {which} {record.run_id}"
            + (f": {changed}" if changed else "")
        )


def code_rows_text(results: RowResults) -> str:
    """``4c5b0686fdfc rows 0-1,3,5; 9be41d07aa21 rows 2,4``: the done rows by the code that made them."""
    return "; ".join(
        f"{short(code)} row{'s' if len(rows) != 1 else ''} {format_ranges(rows, limit=12)}"
        for code, rows in results.done_by_code().items()
    )


def show_runs(console: Console, records: Sequence[RunRecord]) -> None:
    """Runs newest first: who, when, tasks (and rows), state, vCPU-hours and cost, code and lineage."""
    if not records:
        console.print("no runs yet: submit one with `runner submit --array N`")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    columns = ("run", "who", "stack", "created", "tasks", "state", "vCPU-h", "cost", "code and lineage")
    for column in columns:
        table.add_column(
            column,
            overflow="fold",
            no_wrap=column == "run",
            justify="right" if column in ("vCPU-h", "cost") else "left",
            min_width=14 if column == "state" else None,
            max_width=12 if column == "tasks" else None,
        )
    for record in records:
        summary = record.summary or {}
        state = record.outcome
        if summary:
            counts = summary.get("counts") or {}
            state += f"\n{counts.get('SUCCEEDED', 0):,} ok, {counts.get('FAILED', 0):,} failed"
        elif record.error:
            state += f"\n{record.error}"
        if record.missing_shards:
            state += (
                f"\n{len(record.job_ids)} of {len(record.shards)} shards submitted: `runner submit --resume`"
            )
        lineage = []
        if record.code and not (record.changes or {}).get("code"):
            lineage.append(f"code {short(record.code['digest'])}" + ("*" if record.code.get("dirty") else ""))
        if record.parent_run_id:
            lineage.append(f"retry of {record.parent_run_id}")
            lineage += describe_changes(record.changes)
        if record.retry_run_ids:
            lineage.append(f"retried by {', '.join(record.retry_run_ids)}")
        tasks = f"{record.tasks:,}"
        if len(record.shards) > 1:
            tasks += f" in {len(record.shards)} shards"
        if record.sweep:
            tasks += f"\n{record.sweep['rows']:,} rows"
        cost = (summary.get("cost") or {}).get("estimatedUsd")
        table.add_row(
            record.run_id,
            record.user if record.submitted_by else "",
            record.stack + (" (local)" if record.endpoint_url else ""),
            record.created_at[:16].replace("T", " "),
            tasks,
            state,
            f"{summary['vcpuHours']:,.3f}" if summary.get("vcpuHours") is not None else "",
            f"${cost:,.2f}" if cost is not None else "",
            "\n".join(lineage),
            style=OUTCOME_STYLE.get(record.outcome, ""),
        )
    console.print(table)


def show_totals(console: Console, found: Sequence[Any], by: str, since: str | None) -> None:
    """``runs --by user|day``: what each spent over the period, largest first."""
    period = f"since {since}" if since else "over every run"
    if not found:
        console.print(f"no runs {period}")
        return
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        title=f"vCPU-hours and estimated cost by {by}, {period}",
        title_justify="left",
    )
    for column, justify in (
        (by, "left"),
        ("runs", "right"),
        ("vCPU-hours", "right"),
        ("est. cost", "right"),
        ("not summarized", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for total in found:
        table.add_row(
            total.key,
            f"{total.runs:,}",
            f"{total.vcpu_hours:,.3f}",
            f"${total.cost_usd:,.2f}",
            f"{total.unsummarized:,}" if total.unsummarized else "",
        )
    runs_total = sum(t.runs for t in found)
    table.add_row(
        "all",
        f"{runs_total:,}",
        f"{sum(t.vcpu_hours for t in found):,.3f}",
        f"${sum(t.cost_usd for t in found):,.2f}",
        "",
        style="bold",
    )
    console.print(table)
    if any(t.unsummarized for t in found):
        console.print("runs not summarized yet count no hours: `runner summary RUN` summarizes one")


def show_pruned(console: Console, pruned: Sequence[Pruned]) -> None:
    if not pruned:
        console.print("Nothing to prune.")
        return
    for entry in pruned:
        console.print(f"forgot {entry.name}: {entry.reason}", markup=False)
    console.print(f"Pruned {len(pruned)} run record{'s' if len(pruned) != 1 else ''}.")


def show_outputs(console: Console, stack: str, outputs: dict[str, Any]) -> None:
    table = Table(title=f"stack {stack}", box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
    table.add_column("output")
    table.add_column("value", overflow="fold")
    for key, value in outputs.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)


def show_log(console: Console, log: LogStream) -> None:
    console.print(f"[dim]{log.group} {log.stream}[/dim]")
    for event in log.events:
        console.print(event.message, markup=False)
    if log.truncated:
        console.print(f"[dim]... truncated after {len(log.events)} lines; use --tail N[/dim]")


def show_row_log(console: Console, log: RowLog) -> None:
    attempt = f", attempt {log.attempt}" if log.attempt else ", latest attempt"
    console.print(f"[dim]row {log.row}: job {log.job_id}{attempt}, {log.stream}[/dim]")
    for line in log.lines:
        console.print(line, markup=False)


def show_stacks(console: Console, rows: Sequence[dict[str, Any]], work: Any = None) -> None:
    """Stacks as columns, what they are and cost as rows; a stack that cannot be read shows its error."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("")
    for row in rows:
        table.add_column(row["stack"], overflow="fold")

    def money(value: Any, unit: str = "") -> str:
        return "-" if value is None else f"${value:,.2f}{unit}"

    lines: list[tuple[str, Any]] = [
        ("capacity", lambda r: f"{r['purchaseModel']} {r['platform']}"),
        ("allocation", lambda r: r["allocationStrategy"] or "-"),
        ("vCPUs", lambda r: f"{r['minVcpus']} to {r['maxVcpus']:,}"),
        ("job size", lambda r: f"{r['jobVcpus']} vCPU, {r['jobMemoryMiB']:,} MiB"),
        ("retries", lambda r: f"{r['retryAttempts']} attempts (Spot reclaims)"),
        ("RUNNABLE limit", lambda r: f"{r['runnableTimeoutMinutes']} min"),
        ("price", lambda r: f"${r['usdPerVcpuHour']:g}/vCPU-h"),
        ("max burn", lambda r: money(r["maxBurnUsdPerHour"], "/h")),
        ("idle", lambda r: money(r["idleUsdPerHour"], "/h")),
        ("budget", lambda r: money(r["hourlyBudgetUsd"], "/h") if r["hourlyBudgetUsd"] else "none"),
    ]
    if work is not None:
        lines += [
            (
                "estimate: time",
                lambda r: _seconds(r["estimate"]["wallMinutes"] * 60) if r["estimate"] else "-",
            ),
            ("estimate: cost", lambda r: money(r["estimate"]["estimatedUsd"]) if r["estimate"] else "-"),
        ]
    for label, cell in lines:
        table.add_row(label, *(("[red]error[/red]" if row["error"] else str(cell(row))) for row in rows))
    if work is not None:
        console.print(f"estimate for {work.tasks:,} tasks of {work.minutes:g} min at full scale:")
    console.print(table)
    for row in rows:
        if row["error"]:
            console.print(f"[red]{row['stack']}[/red]: {row['error']}", markup=True, highlight=False)
        elif row["hourlyBudgetUsd"] and row["maxBurnUsdPerHour"] > row["hourlyBudgetUsd"]:
            console.print(
                f"{row['stack']}: at full scale it burns {money(row['maxBurnUsdPerHour'], '/h')}, over its "
                f"budget of {money(row['hourlyBudgetUsd'], '/h')}; lower compute.maxVcpus"
            )


def show_verdict(console: Console, verdict: Any) -> None:
    """The verdict first (what to do), then what it rests on."""
    console.print(f"[bold]{verdict.line}[/bold]")
    for line in verdict.evidence:
        console.print(f"  - {line}", markup=False)


def _bytes(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} TiB"


ROW_STYLE = {
    "succeeded": "green",
    "no-outputs": "yellow",
    "failed": "red",
    "killed": "magenta",
    "not-run": "dim",
}


def rows_counts_text(results: RowResults) -> str:
    """``97 succeeded with outputs, 93 failed, 2 killed, ...``: the states some row is in."""
    counts = results.counts
    return ", ".join(f"{counts[state]:,} {STATE_TITLES[state]}" for state in ROW_STATES if counts[state])


def show_row_fates(console: Console, results: RowResults, *, label: str = "") -> None:
    """The rows that did not succeed, by name: row, key, state, exit code, reason, last output line."""
    if not results.details:
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, title=label or None, title_justify="left")
    for column, justify in (("row", "right"), (results.sweep.key_column, "left"), ("state", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    table.add_column("exit", justify="right")
    table.add_column("reason", overflow="fold")
    table.add_column("last output line", overflow="fold")
    for item in results.details:
        style = ROW_STYLE[item.state]
        table.add_row(
            str(item.row),
            item.key,
            f"[{style}]{STATE_TITLES[item.state]}[/]",
            "" if item.exit_code is None else str(item.exit_code),
            item.reason,
            item.last_line,
        )
    console.print(table)
    hidden = len(results.not_done) - len(results.details)
    if hidden > 0:
        console.print(
            f"... and {hidden:,} more; `runner results {results.run_id} --all` shows every one, "
            f"`--state STATE` lists a state's rows"
        )


def show_results(console: Console, results: RowResults) -> None:
    """A sweep's rows by state, the rows that did not succeed by name, and what to do next."""
    sweep = results.sweep
    per_task = f", {sweep.per_task} per task" if sweep.per_task > 1 else ""
    console.print(f"Run {results.run_id}: {sweep.rows:,} rows{per_task}, named by {sweep.key_column}")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("rows", justify="right")
    table.add_column("state")
    table.add_column("which")
    for state in ROW_STATES:
        rows = results.rows_in(state)
        if rows:
            title = f"[{ROW_STYLE[state]}]{STATE_TITLES[state]}[/]"
            table.add_row(f"{len(rows):,}", title, format_ranges(rows, limit=12))
    console.print(table)
    show_row_fates(console, results)
    if results.done_by_code():
        console.print(f"code     done {code_rows_text(results)}")
    console.print(f"outputs  {sweep.outputs_uri} (each done row's manifest under {sweep.rows_uri})")
    if results.not_done:
        run = results.run_id
        console.print(f"next     `runner retry {run} --skip-existing` runs the rows not done again")
        console.print(f"         `runner logs {run} --row R` shows a row's output")
        console.print(f"         `runner collect {run} --to DIR` downloads the done rows' outputs")
    else:
        console.print(f"next     `runner collect {results.run_id} --to DIR` downloads the outputs")


def show_rows_in_state(results: RowResults, state: str) -> None:
    """``--state``: one row a line, its number and key separated by a tab, for scripts."""
    for fate in results.fates:
        if fate.state == state:
            sys.stdout.write(f"{fate.row}\t{results.keys.get(fate.row, '')}\n")


def show_sweep_rows(console: Console, results: RowResults) -> None:
    """The summary's lines for a sweep: rows by state beside the tasks, then the rows not done."""
    sweep = results.sweep
    per_task = f", {sweep.per_task} per task" if sweep.per_task > 1 else ""
    console.print(f"rows     {sweep.rows:,} rows{per_task}: {rows_counts_text(results)}")
    if results.done_by_code():
        console.print(f"         done by code: {code_rows_text(results)}")
    if results.not_done:
        show_row_fates(console, results)
        console.print(f"         every row's fate: `runner results {results.run_id}`")


class Transfer:
    """A transfer's progress bar on stderr (nothing with ``quiet`` or off a terminal): a download
    (``collecting``) or an upload (``uploading inputs``)."""

    def __init__(self, console: Console, *, quiet: bool = False, doing: str = "collecting") -> None:
        self.console = console
        self.quiet = quiet or not console.is_terminal
        self.bar = Progress(
            TextColumn(doing),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} bytes"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None

    def __enter__(self) -> Transfer:
        if not self.quiet:
            self.bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if not self.quiet:
            self.bar.stop()

    def plan(self, files: int, size: int) -> None:
        if not self.quiet:
            self.task = self.bar.add_task("collect", total=max(size, 1))

    def advance(self, size: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, size)


def show_collected(console: Console, done: Collected, dest: Path) -> None:
    skipped = f"; {done.skipped:,} already there and matching" if done.skipped else ""
    replaced = f"; {done.replaced:,} that differed replaced" if done.replaced else ""
    console.print(
        f"Collected {done.downloaded:,} file(s), {_bytes(done.bytes)}, of {done.rows:,} done row(s) "
        f"into {dest}{skipped}{replaced}"
    )
    if done.not_done:
        console.print(
            f"Skipped {len(done.not_done):,} row(s) with no outputs (not done): "
            f"{format_ranges(done.not_done, limit=12)}"
        )
