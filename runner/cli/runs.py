"""Commands that follow and inspect runs: watch, summary, report, logs, cancel, runs, why."""

from __future__ import annotations

import sys
import webbrowser
from dataclasses import replace
from pathlib import Path

import click

from runner.analysis.why import diagnose, diagnose_queue
from runner.aws.job_logs import read_log
from runner.cli.context import CliContext, pass_context
from runner.cli.follow import summarize_and_show, watch_with_progress
from runner.cli.group import EXIT_JOBS_FAILED
from runner.cli.options import interval_option, json_option, price_option, target_options
from runner.errors import InvalidInputError, RunnerError
from runner.runs.cancel import cancel_jobs
from runner.runs.store import prune_runs, prune_shared
from runner.runs.team import GROUPINGS, since_run_id, team_runs, totals
from runner.show import terminal


@click.command("watch")
@click.argument("run_or_job_id")
@target_options
@interval_option
@json_option
@pass_context
def watch_command(context: CliContext, run_or_job_id: str, interval: float, as_json: bool) -> None:
    """Show live progress until every task has SUCCEEDED or FAILED.

    Exits 0 when all succeeded, 3 when any failed. Ctrl-C stops watching, not the jobs.
    """
    ref = context.service().resolve(run_or_job_id)
    progress = watch_with_progress(ref, interval)
    if as_json:
        terminal.print_json({"runId": ref.run_id, **progress.to_json()})
    else:
        click.echo(
            f"Done: {terminal.counts_text(progress)}. Details: `runner summary {ref.run_id or ref.job_id}`"
        )
    if progress.failed:
        sys.exit(EXIT_JOBS_FAILED)


@click.command("summary")
@click.argument("run_or_job_id")
@target_options
@click.option("--refresh", is_flag=True, help="Ask AWS again even if the run's summary is cached.")
@click.option(
    "--attempts",
    "all_attempts",
    is_flag=True,
    help="Count Spot interruptions over every attempt of every task (describes every task, "
    "100 per call, once; cached when the run is complete).",
)
@price_option
@json_option
@pass_context
def summary_command(
    context: CliContext,
    run_or_job_id: str,
    refresh: bool,
    all_attempts: bool,
    vcpu_hour_price: float | None,
    as_json: bool,
) -> None:
    """Counts by status, failures by class and logical index, runtimes, vCPU-hours and cost.

    A run's retries are folded in: each index shows its latest outcome. Exits 3 when any task failed.
    """
    ref = context.service().resolve(run_or_job_id)
    summarize_and_show(
        context, ref, as_json, price=vcpu_hour_price, refresh=refresh, all_attempts=all_attempts
    )


@click.command()
@click.argument("run_or_job_id")
@target_options
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The HTML file to write [default: <run id>.html in the current directory].",
)
@click.option(
    "--png",
    "png_dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Also write each chart as a PNG into DIR (for a ticket or a chat).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the report in the default browser.")
@click.option("--refresh", is_flag=True, help="Ask AWS again even if the run's summary is cached.")
@click.option(
    "--attempts",
    "all_attempts",
    is_flag=True,
    help="Count every attempt of every task (describes every task, 100 per call, once).",
)
@price_option
@json_option
@pass_context
def report(
    context: CliContext,
    run_or_job_id: str,
    out: Path | None,
    png_dir: Path | None,
    open_browser: bool,
    refresh: bool,
    all_attempts: bool,
    vcpu_hour_price: float | None,
    as_json: bool,
) -> None:
    """Write the run's report: one self-contained HTML file to open, mail or attach.

    Headline, tasks running over time with Spot reclaims, runtime histogram and slowest tasks,
    failures by class with their logs, and each index's latest outcome over the retries.
    """
    from runner.report.make import make_report  # matplotlib loads only for this command

    service = context.service()
    written = make_report(
        service,
        service.resolve(run_or_job_id),
        now=context.now(),
        out=out,
        png_dir=png_dir,
        all_attempts=all_attempts,
        refresh=refresh,
        price=vcpu_hour_price,
    )
    if as_json:
        terminal.print_json(written.to_json())
    else:
        terminal.show_written(terminal.make_console(), written.html, written.report_bytes, written.pngs)
    if open_browser and not webbrowser.open(written.html.resolve().as_uri()):
        click.echo(f"Warning: no browser could be started; open {written.html} yourself", err=True)


@click.command()
@click.argument("run_or_job_id")
@target_options
@click.option(
    "--index", type=click.IntRange(min=0), help="Logical task index (0 to tasks-1); its latest run."
)
@click.option(
    "--row",
    type=click.IntRange(min=0),
    help="A --tasks run's row: its lines from the attempt that ran it last.",
)
@click.option("--tail", type=click.IntRange(min=1, max=10_000), help="Only the last N lines.")
@json_option
@pass_context
def logs(
    context: CliContext,
    run_or_job_id: str,
    index: int | None,
    row: int | None,
    tail: int | None,
    as_json: bool,
) -> None:
    """Print a task's latest attempt's CloudWatch log, or one row's lines of a --tasks run.

    \b
    Example:
        runner logs 20261124-151012-ab12 --index 3
        runner logs 20261124-151012-ab12 --row 57
    """
    service = context.service()
    ref = service.resolve(run_or_job_id)
    if row is not None:
        if index is not None:
            raise InvalidInputError("--row and --index both name what to read; pass one")
        found = service.row_log(ref, row)
        if tail is not None:
            found = replace(found, lines=found.lines[-tail:])
        if as_json:
            terminal.print_json(found.to_json())
        else:
            terminal.show_row_log(terminal.make_console(), found)
        return
    target, job_id, outputs = service.task(ref, index)
    stack_group = {outputs.job_definition_name: outputs.log_group_name}
    log = read_log(target.client("batch"), target.client("logs"), job_id, tail=tail, known_groups=stack_group)
    if as_json:
        terminal.print_json(log.to_json())
    else:
        terminal.show_log(terminal.make_console(), log)


@click.command()
@click.argument("run_or_job_id")
@target_options
@click.option(
    "--reason",
    default="cancelled with runner cancel",
    show_default=True,
    help="Status reason AWS records on each cancelled task.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_context
def cancel(context: CliContext, run_or_job_id: str, reason: str, yes: bool, as_json: bool) -> None:
    """Cancel what is queued and terminate what is running."""
    ref = context.service().resolve(run_or_job_id)
    if not yes:
        if not sys.stdin.isatty():
            raise RunnerError("cancel needs confirmation; pass --yes when not at a terminal")
        what = f"run {ref.run_id}" if ref.whole_run else f"job {ref.job_id}"
        click.confirm(f"Cancel {what} and every task still running?", abort=True)
    result = cancel_jobs(ref.target.client("batch"), ref.job_ids, reason)
    if ref.whole_run and ref.record is not None and not result.nothing_to_do:
        when = context.now().isoformat()
        context.store.update(ref.record.run_id, lambda record: setattr(record, "cancelled_at", when))
    if as_json:
        terminal.print_json({"runId": ref.run_id, **result.to_json()})
    elif result.nothing_to_do:
        click.echo(f"Nothing to cancel: {terminal.counts_text(result.before)}.")
    else:
        click.echo(
            f"Cancelled {result.cancelled} queued and terminating {result.terminated} running "
            f"task(s) of {f'run {ref.run_id}' if ref.whole_run else f'job {ref.job_id}'}."
        )


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Runs to list.")
@click.option("--mine", is_flag=True, help="Only the runs you submitted (your caller identity).")
@click.option("--user", "user_name", metavar="NAME", help="Only the runs NAME submitted.")
@click.option("--since", metavar="PERIOD", help="Only runs since then: 7d, 12h or a date (2026-11-25).")
@click.option(
    "--by",
    "grouping",
    type=click.Choice(GROUPINGS),
    help="Totals over the period instead of runs: vCPU-hours and estimated cost by user or by day.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Forget finished runs older than --older-than days, runs on an emulator that is "
    "gone, and unreadable records; an unreadable record in the stack's bucket is repaired from "
    "this machine's copy, or removed.",
)
@click.option(
    "--older-than",
    "older_than_days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    metavar="DAYS",
    help="With --prune: the age in days of finished runs to forget.",
)
@target_options
@json_option
@pass_context
def runs(
    context: CliContext,
    limit: int,
    mine: bool,
    user_name: str | None,
    since: str | None,
    grouping: str | None,
    prune: bool,
    older_than_days: int,
    as_json: bool,
) -> None:
    """The team's runs on the stack, newest first: who, when, tasks, state, vCPU-hours, cost.

    For a stack with a data bucket the runs are the records there, shared by everyone with access
    to it; otherwise (and for runs not shared yet) the records on this machine. --by user (or day)
    adds up vCPU-hours and estimated cost over the period: who spent what on the lab this week.

    \b
    Example:
        runner runs --mine
        runner runs --by user --since 7d
    """
    if prune:
        pruned = prune_runs(context.store, context.now(), older_than_days, context.emulator_gone)
        shared = context.shared_records()
        if shared is not None:
            pruned += prune_shared(context.store, shared)
        if as_json:
            terminal.print_json([entry.to_json() for entry in pruned])
        else:
            terminal.show_pruned(terminal.make_console(), pruned)
        return
    if mine and user_name:
        raise InvalidInputError("--mine and --user both name whose runs; pass one")
    window = since_run_id(since, context.now()) if since else ""
    shared = context.shared_records()
    if shared is None and (mine or user_name or grouping):
        raise InvalidInputError(
            "--mine, --user and --by read the team's run records, kept in the stack's data bucket; "
            "name a stack that has one (--stack, or --local)"
        )
    who = (context.identity() or {}).get("user") if mine else user_name
    local, unreadable = context.store.scan()
    for problem in unreadable:
        click.echo(f"Warning: {problem}", err=True)
    if shared is not None:
        team = team_runs(shared, limit=None if grouping else limit, user=who, since=window)
        for problem in team.problems:
            click.echo(f"Warning: {problem}", err=True)
        if grouping:
            found = totals(team.records, grouping)  # type: ignore[arg-type]
            if as_json:
                terminal.print_json([total.to_json() for total in found])
            else:
                terminal.show_totals(terminal.make_console(), found, grouping, since)
            return
        known = {record.run_id for record in team.records}
        stack = context.outputs().stack
        unshared = [r for r in local if r.stack == stack and r.run_id not in known and r.run_id >= window]
        records = sorted([*team.records, *([] if who else unshared)], key=lambda r: r.run_id, reverse=True)
    else:
        records = [r for r in local if r.run_id >= window]
    if as_json:
        terminal.print_json([record.to_json() for record in records[:limit]])
    else:
        terminal.show_runs(terminal.make_console(), records[:limit])


@click.command()
@click.argument("run_or_job_id", required=False)
@click.option(
    "--queue", "queue_only", is_flag=True, help="Check the stack's queue and compute environments only."
)
@target_options
@json_option
@pass_context
def why(context: CliContext, run_or_job_id: str | None, queue_only: bool, as_json: bool) -> None:
    """Why tasks sit in RUNNABLE (or PENDING): one verdict with the fix, then the evidence.

    \b
    Example:
        runner why 20261124-151012-ab12
        runner why --queue --stack prod
    """
    if queue_only == bool(run_or_job_id):
        raise InvalidInputError("name a run or job id, or pass --queue (not both)")
    if queue_only:
        home = context.home()
        verdict = diagnose_queue(home.target.client("batch"), home.outputs.job_queue_arn)
    else:
        ref = context.service().resolve(run_or_job_id or "")
        verdict = diagnose(ref.target.client("batch"), ref.job_ids, ref.outputs.job_queue_arn)
    if as_json:
        terminal.print_json(verdict.to_json())
    else:
        terminal.show_verdict(terminal.make_console(), verdict)
