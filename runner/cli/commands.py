"""runner: the click CLI. Parse, call the core, terminal. Nothing else lives here."""

from __future__ import annotations

import functools
import sys
import webbrowser
from pathlib import Path
from typing import Any

import click

from runner.analysis.failure_classes import CLASSES
from runner.analysis.stacks import Workload, read_stacks
from runner.analysis.summary import Summary
from runner.analysis.why import diagnose, diagnose_queue
from runner.aws.job_logs import read_log
from runner.aws.job_status import Progress
from runner.aws.stack_outputs import find_project_dir
from runner.cli.context import CliContext
from runner.cli.group import EXIT_INTERRUPTED, EXIT_JOBS_FAILED, RunnerGroup
from runner.cli.local import local as local_group
from runner.cli.options import (
    interval_option,
    json_option,
    pass_context,
    price_option,
    target_options,
    task_size_options,
)
from runner.errors import InvalidInputError, RunnerError
from runner.indices import format_ranges, parse_ranges
from runner.runs.cancel import cancel_jobs
from runner.runs.collect import collect_outputs
from runner.runs.retry import RetryOptions, parse_classes, retry_run
from runner.runs.service import JobRef, StackTarget
from runner.runs.store import RunRecord, is_run_id, prune_runs
from runner.runs.submit import MAX_ARRAY, MIN_ARRAY, SubmitOptions, parse_pairs, resume_run, submit_run
from runner.runs.sweep import IMAGE_LAUNCHER, MAX_PER_TASK, Sweep, local_launcher, submit_sweep
from runner.runs.table import FORMATS, read_table
from runner.runs.watch import watch
from runner.show import terminal


@click.group(name="runner", cls=RunnerGroup)
@functools.partial(target_options, expose=True)
@click.version_option(package_name="batch-stacks")
@click.pass_context
def cli(ctx: click.Context, stack: str | None, outputs_file: Path | None, local: bool) -> None:
    """Submit, watch and summarize AWS Batch array jobs on a batch-stacks stack.

    --stack, --outputs and --local may also follow the command name. Exit codes: 0 done (every
    task succeeded), 1 an error, 2 a usage mistake or a value out of range, 3 some tasks failed,
    130 interrupted.

    \b
    Example:
        runner submit --array 100 --wait
        runner summary 20261124-151012-ab12
    """
    context = ctx.ensure_object(CliContext)
    context.stack_option, context.outputs_file, context.local = stack, outputs_file, local


def _watch_with_progress(ref: JobRef, interval: float) -> Progress:
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


def _show_summary(
    summary: Summary, as_json: bool, submitted: dict[str, Any] | None = None, ref: JobRef | None = None
) -> None:
    sweep = ref.sweep if ref else None
    failed_tasks = [failure.index or 0 for failure in summary.failures]
    if as_json:
        document = summary.to_json()
        if sweep:
            document["rows"] = sweep.rows_json(failed_tasks)
        terminal.print_json(document if submitted is None else {**submitted, "summary": document})
    else:
        console = terminal.make_console()
        terminal.show_summary(console, summary, memory_mib=ref.memory_mib if ref else None)
        if sweep:
            terminal.show_sweep_rows(console, sweep.rows_json(failed_tasks), summary.run_id or "RUN")
    if summary.failed:
        sys.exit(EXIT_JOBS_FAILED)


@cli.command()
@click.option(
    "--array",
    "array_size",
    type=int,
    metavar="N",
    help=f"Array size, {MIN_ARRAY} to {MAX_ARRAY:,} (omit: one job).",
)
@click.option("--name", help="Job name prefix (default: the stack name).")
@click.option("--command", help="Command override, as one shell-quoted string (default: the definition's).")
@click.option("--env", multiple=True, metavar="K=V", help="Environment variable (repeatable).")
@task_size_options(
    "the definition's",
    vcpus_note=", at most the stack's maxVcpus",
    attempts_note="; retries follow the definition's rules",
)
@click.option("--param", multiple=True, metavar="K=V", help="Job parameter for Ref::K (repeatable).")
@click.option("--tag", multiple=True, metavar="K=V", help="Tag on the job, up to 48 (repeatable).")
@click.option("--depends-on", metavar="RUN_OR_JOB_ID", help="Run id or job id this run waits for.")
@click.option(
    "--tasks",
    "tasks_source",
    metavar="FILE",
    help="A table with one row per task (CSV, TSV or JSON Lines; a file, s3://bucket/key, or - for "
    "standard input): each column becomes an environment variable of its row's task.",
)
@click.option(
    "--format",
    "table_format",
    type=click.Choice(FORMATS),
    help="The --tasks table's format (default: from its extension; needed for -).",
)
@click.option(
    "--per-task",
    type=click.IntRange(1, MAX_PER_TASK),
    default=1,
    show_default=True,
    metavar="K",
    help="With --tasks: K consecutive rows per task, run one after another.",
)
@click.option("--wait", is_flag=True, help="Watch until done, then print the summary.")
@click.option(
    "--resume",
    "resume_run_id",
    metavar="RUN_ID",
    help="Submit only the missing shards of an interrupted or refused run (other options ignored).",
)
@target_options
@interval_option
@price_option
@json_option
@pass_context
def submit(
    context: CliContext,
    array_size: int | None,
    name: str | None,
    command: str | None,
    env: tuple[str, ...],
    vcpus: int | None,
    memory_mib: int | None,
    param: tuple[str, ...],
    attempts: int | None,
    timeout_seconds: int | None,
    tag: tuple[str, ...],
    depends_on: str | None,
    tasks_source: str | None,
    table_format: str | None,
    per_task: int,
    wait: bool,
    resume_run_id: str | None,
    interval: float,
    vcpu_hour_price: float | None,
    as_json: bool,
) -> None:
    """Submit an array job (or one job) to the stack's queue and job definition.

    Above 10,000 tasks the run is split into shards of 10,000 (AWS's array limit), one run id for
    all. Each task's logical index is RUNNER_INDEX_OFFSET + AWS_BATCH_JOB_ARRAY_INDEX; the run's
    size is RUNNER_ARRAY_SIZE.

    \b
    Example:
        runner submit --array 100 --env SWEEP=alpha --vcpus 2 --wait
        runner submit --array 250000
        runner submit --resume 20261124-151012-ab12
    """
    if resume_run_id:
        if not is_run_id(resume_run_id):
            raise InvalidInputError(
                f"--resume takes a run id such as 20261124-151012-ab12, got {resume_run_id!r}"
            )
        service = context.service()
        parked = context.store.load(resume_run_id)
        service.require_emulator(parked)
        record = resume_run(service.target_of(parked).client("batch"), context.store, parked)
        _after_submit(context, record, as_json=as_json, wait=wait, interval=interval, price=vcpu_hour_price)
        return
    options = SubmitOptions(
        array_size=array_size,
        name=name,
        command=command,
        env=parse_pairs(env, "--env"),
        vcpus=vcpus,
        memory_mib=memory_mib,
        parameters=parse_pairs(param, "--param"),
        attempts=attempts,
        timeout_seconds=timeout_seconds,
        tags=parse_pairs(tag, "--tag"),
    )
    home = context.home()
    depends_on_jobs = context.service().depends_on_jobs(depends_on, home) if depends_on else []
    if tasks_source is not None:
        s3 = functools.partial(home.target.client, "s3")
        table = read_table(tasks_source, table_format, stdin=sys.stdin.buffer, s3=s3)
        record = submit_sweep(
            home.target.client("batch"),
            s3(),
            context.store,
            options,
            table,
            home.outputs,
            per_task=per_task,
            now=context.now(),
            launcher=local_launcher() if home.target.endpoint_url else IMAGE_LAUNCHER,
            depends_on_job_ids=depends_on_jobs,
            endpoint_url=home.target.endpoint_url,
        )
        _after_submit(context, record, as_json=as_json, wait=wait, interval=interval, price=vcpu_hour_price)
        return
    record = submit_run(
        home.target.client("batch"),
        context.store,
        options,
        home.outputs,
        now=context.now(),
        depends_on_job_ids=depends_on_jobs,
        endpoint_url=home.target.endpoint_url,
    )
    _after_submit(context, record, as_json=as_json, wait=wait, interval=interval, price=vcpu_hour_price)


def _after_submit(
    context: CliContext, record: RunRecord, *, as_json: bool, wait: bool, interval: float, price: float | None
) -> None:
    """What submit, resume and retry print; with ``wait``, watch and summarize."""
    submitted = record.submitted_json()
    if not as_json:
        tasks = f"{record.tasks:,} task{'s' if record.tasks != 1 else ''}"
        arrays = sum(shard.is_array for shard in record.shards)
        kind = "array jobs" if arrays == len(record.shards) else "jobs"
        jobs = f"job {record.job_id}" if len(record.shards) == 1 else f"{len(record.shards)} {kind}"
        lineage = f", retrying run {record.parent_run_id}" if record.parent_run_id else ""
        rows = _rows_note(context, record)
        click.echo(
            f"Submitted run {record.run_id}: {jobs} ({tasks}{rows}) to "
            f"{record.stack_outputs.job_queue_name}{lineage}"
        )
    if not wait:
        if as_json:
            terminal.print_json(submitted)
        else:
            click.echo(f"Watch it with `runner watch {record.run_id}`.")
        return
    service = context.service()
    ref = service.resolve(record.parent_run_id or record.run_id)
    own = service.resolve(record.run_id)
    _watch_with_progress(own, interval)
    _show_summary(service.summary(ref, price=price), as_json, submitted, ref)


def _rows_note(context: CliContext, record: RunRecord) -> str:
    """A sweep's rows, for the line submit and retry print: all of them, or those a retry runs."""
    if record.sweep:
        return f" of {record.sweep['rows']:,} rows"
    root = context.store.load(record.parent_run_id) if record.parent_run_id else None
    if root is None or not root.sweep:
        return ""
    tasks = (index for shard in record.shards for index in range(shard.offset, shard.stop))
    return f", rows {format_ranges(Sweep.from_json(root.sweep).rows_of(tasks), limit=12)}"


@cli.command()
@click.argument("run_id")
@click.option(
    "--class",
    "classes",
    metavar="CLASS[,CLASS]",
    help=f"Only failures of these classes: {', '.join(CLASSES)} (default: every failed task).",
)
@click.option("--indices", metavar="RANGES", help="Only these logical indices, e.g. 3,17-19.")
@click.option(
    "--skip-existing",
    is_flag=True,
    help="For a run submitted with --tasks: rows that already have outputs are not run again.",
)
@task_size_options("the run's")
@click.option(
    "--wait", is_flag=True, help="Watch until done, then print the run's summary with retries folded in."
)
@target_options
@interval_option
@price_option
@json_option
@pass_context
def retry(
    context: CliContext,
    run_id: str,
    classes: str | None,
    indices: str | None,
    skip_existing: bool,
    vcpus: int | None,
    memory_mib: int | None,
    timeout_seconds: int | None,
    attempts: int | None,
    wait: bool,
    interval: float,
    vcpu_hour_price: float | None,
    as_json: bool,
) -> None:
    """Run exactly the failed tasks of a run again, as a new run linked to it.

    Each contiguous range of logical indices becomes one array job with its RUNNER_INDEX_OFFSET.
    The run's command, environment, parameters, tags and overrides carry over unless overridden;
    --stack runs them on another stack (a lab run's Spot failures on prod's on-demand capacity).

    \b
    Example:
        runner retry 20261124-151012-ab12 --class spot --stack prod
        runner retry 20261124-151012-ab12 --class oom --memory 8192 --wait
    """
    options = RetryOptions(
        parse_classes(classes), indices, memory_mib, vcpus, timeout_seconds, attempts, skip_existing
    )
    service = context.service()
    ref = service.resolve(run_id)
    if ref.record is None or not ref.whole_run:
        raise InvalidInputError(f"retry takes a run id (see `runner runs`), got {run_id!r}")
    summary = service.summary(ref)
    there = context.home() if context.overrides_stack else StackTarget(ref.outputs, ref.target)
    record = retry_run(
        there.target.client("batch"),
        context.store,
        ref.record,
        summary,
        options,
        there.outputs,
        now=context.now(),
        endpoint_url=there.target.endpoint_url,
    )
    _after_submit(context, record, as_json=as_json, wait=wait, interval=interval, price=vcpu_hour_price)


@cli.command("watch")
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
    progress = _watch_with_progress(ref, interval)
    if as_json:
        terminal.print_json({"runId": ref.run_id, **progress.to_json()})
    else:
        click.echo(
            f"Done: {terminal.counts_text(progress)}. Details: `runner summary {ref.run_id or ref.job_id}`"
        )
    if progress.failed:
        sys.exit(EXIT_JOBS_FAILED)


@cli.command("summary")
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
    service = context.service()
    ref = service.resolve(run_or_job_id)
    summary = service.summary(ref, price=vcpu_hour_price, refresh=refresh, all_attempts=all_attempts)
    _show_summary(summary, as_json, ref=ref)


@cli.command()
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


@cli.command()
@click.argument("run_or_job_id")
@target_options
@click.option(
    "--index", type=click.IntRange(min=0), help="Logical task index (0 to tasks-1); its latest run."
)
@click.option("--tail", type=click.IntRange(min=1, max=10_000), help="Only the last N lines.")
@json_option
@pass_context
def logs(context: CliContext, run_or_job_id: str, index: int | None, tail: int | None, as_json: bool) -> None:
    """Print a task's latest attempt's CloudWatch log."""
    service = context.service()
    target, job_id, outputs = service.task(service.resolve(run_or_job_id), index)
    log = read_log(target.client("batch"), target.client("logs"), job_id, outputs.log_group_name, tail=tail)
    if as_json:
        terminal.print_json(log.to_json())
    else:
        terminal.show_log(terminal.make_console(), log)


@cli.command()
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
    if as_json:
        terminal.print_json({"runId": ref.run_id, **result.to_json()})
    elif result.nothing_to_do:
        click.echo(f"Nothing to cancel: {terminal.counts_text(result.before)}.")
    else:
        click.echo(
            f"Cancelled {result.cancelled} queued and terminating {result.terminated} running "
            f"task(s) of {f'run {ref.run_id}' if ref.whole_run else f'job {ref.job_id}'}."
        )


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Runs to list.")
@click.option(
    "--prune",
    is_flag=True,
    help="Forget finished runs older than --older-than days, runs on an emulator that is "
    "gone, and unreadable records.",
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
@json_option
@pass_context
def runs(context: CliContext, limit: int, prune: bool, older_than_days: int, as_json: bool) -> None:
    """Recent runs from the local run records, newest first.

    A record that cannot be read is skipped with a warning naming its file.
    """
    if prune:
        pruned = prune_runs(context.store, context.now(), older_than_days, context.emulator_endpoint())
        if as_json:
            terminal.print_json([entry.to_json() for entry in pruned])
        else:
            terminal.show_pruned(terminal.make_console(), pruned)
        return
    records, unreadable = context.store.scan()
    for problem in unreadable:
        click.echo(f"Warning: {problem}", err=True)
    if as_json:
        terminal.print_json([record.to_json() for record in records[:limit]])
    else:
        terminal.show_runs(terminal.make_console(), records[:limit])


@cli.command()
@target_options
@json_option
@pass_context
def outputs(context: CliContext, as_json: bool) -> None:
    """The resolved stack outputs the runner uses."""
    resolved = context.outputs()
    if as_json:
        terminal.print_json(resolved.to_json())
    else:
        terminal.show_outputs(terminal.make_console(), resolved.stack, resolved.to_json())


@cli.command()
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


@cli.command()
@click.option(
    "--estimate",
    "estimate_run",
    metavar="RUN_ID",
    help="Estimate each stack for this run's tasks and median runtime.",
)
@click.option(
    "--tasks", type=click.IntRange(1, MAX_ARRAY), metavar="N", help="Estimate N tasks (with --minutes)."
)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    metavar="M",
    help="Minutes each task runs (with --tasks).",
)
@json_option
@pass_context
def stacks(
    context: CliContext, estimate_run: str | None, tasks: int | None, minutes: float | None, as_json: bool
) -> None:
    """Every stack of the project side by side: capacity, prices, burn rates, and what a run would cost.

    \b
    Example:
        runner stacks
        runner stacks --tasks 250000 --minutes 12
        runner stacks --estimate 20261124-151012-ab12
    """
    if (tasks is None) != (minutes is None):
        raise InvalidInputError("--tasks and --minutes go together (N tasks of M minutes each)")
    work = Workload(tasks, minutes) if tasks is not None and minutes is not None else None
    if estimate_run:
        if work is not None:
            raise InvalidInputError("use --estimate RUN_ID or --tasks/--minutes, not both")
        service = context.service()
        summary = service.summary(service.resolve(estimate_run))
        if summary.runtime is None:
            raise RunnerError(f"run {estimate_run} has no finished task to take a runtime from yet")
        work = Workload(summary.size, summary.runtime.p50 / 60)
    rows = read_stacks(find_project_dir())
    if as_json:
        terminal.print_json([row.to_json(work) for row in rows])
    else:
        terminal.show_stacks(terminal.make_console(), [row.to_json(work) for row in rows], work)


@cli.command()
@click.argument("run_id")
@target_options
@json_option
@pass_context
def results(context: CliContext, run_id: str, as_json: bool) -> None:
    """A --tasks run's rows: succeeded with outputs, succeeded without, failed, not run.

    Each row's outcome is its task's latest (retries folded in); its outputs are what is under
    its folder in the stack's data bucket. Exits 0 when every row succeeded, 3 otherwise.

    \b
    Example:
        runner results 20261124-151012-ab12
        runner collect 20261124-151012-ab12 --to results/
    """
    service = context.service()
    found = service.results(service.resolve(run_id))
    if as_json:
        terminal.print_json(found.to_json())
    else:
        terminal.show_results(terminal.make_console(), found)
    if not found.complete:
        sys.exit(EXIT_JOBS_FAILED)


@cli.command()
@click.argument("run_id")
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Where to put the outputs: DIR/<row>/<path>.",
)
@click.option("--rows", metavar="RANGES", help="Only these rows, e.g. 3,17-19 (default: every row).")
@target_options
@json_option
@pass_context
def collect(context: CliContext, run_id: str, dest: Path, rows: str | None, as_json: bool) -> None:
    """Download a --tasks run's outputs; files already there with the same size are skipped."""
    service = context.service()
    ref = service.resolve(run_id)
    sweep = service.sweep(ref)
    chosen = set(parse_ranges(rows, sweep.rows, option="--rows")) if rows else None
    with terminal.Transfer(terminal.make_console(stderr=True), quiet=as_json) as transfer:
        done = collect_outputs(
            ref.target.client("s3"),
            sweep.data.bucket,
            sweep.outputs_key,
            dest,
            chosen,
            on_plan=transfer.plan,
            on_file=transfer.advance,
        )
    if as_json:
        terminal.print_json({"runId": sweep.run_id, "to": str(dest), **done.to_json()})
    else:
        terminal.show_collected(terminal.make_console(), done, dest)


cli.add_command(local_group)


def main() -> None:
    """The ``runner`` console script."""
    cli.main(prog_name="runner", windows_expand_args=False)
