"""``runner submit`` and ``runner retry``: what puts work on a queue."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from runner.analysis.failure_classes import CLASSES
from runner.cli.context import CliContext, pass_context
from runner.cli.follow import summarize_and_show, watch_with_progress
from runner.cli.options import (
    code_option,
    interval_option,
    json_option,
    price_option,
    target_options,
    task_size_options,
)
from runner.errors import InvalidInputError
from runner.indices import format_ranges
from runner.runs.code_package import code_drift, describe_code
from runner.runs.launch import interpreter, plan_launch
from runner.runs.local_inputs import LocalInput, upload_inputs
from runner.runs.retry import RetryOptions, describe_changes, latest_attempt, parse_classes, retry_run
from runner.runs.service import StackTarget
from runner.runs.store import RunRecord, is_run_id
from runner.runs.submit import MAX_ARRAY, MIN_ARRAY, SubmitOptions, parse_pairs, resume_run, submit_run
from runner.runs.sweep import MAX_PER_TASK, Sweep, submit_sweep
from runner.runs.table import FORMATS, read_table
from runner.show import terminal


@click.command()
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
@click.option(
    "--key",
    "key_column",
    metavar="COLUMN",
    help="With --tasks: the column that names each row in results, summaries, reports and logs "
    "(default: the table's first column).",
)
@code_option
@click.option(
    "--input",
    "input_columns",
    multiple=True,
    metavar="COLUMN",
    help="With --tasks: the column holds s3:// addresses (a folder ends in /) the task downloads "
    "into the row's folder first; the column's variable is the local path, <COLUMN>_URI the address "
    "(repeatable). Every address is checked before anything is submitted.",
)
@click.option(
    "--no-input-check",
    is_flag=True,
    help="Skip the check that every --input address exists (a missing one fails its row).",
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
    key_column: str | None,
    code: Path | None,
    input_columns: tuple[str, ...],
    no_input_check: bool,
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
        runner submit --tasks samples.csv --key sample --per-task 10 --command 'python3 qc.py'
        runner submit --tasks samples.csv --code ./analysis --input reads --command 'python3 qc.py'
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
        after_submit(context, record, as_json=as_json, wait=wait, interval=interval, price=vcpu_hour_price)
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
    for option, given in (("--key", key_column), ("--input", input_columns)):
        if given and tasks_source is None:
            raise InvalidInputError(
                f"{option} names a column of the --tasks table; pass --tasks FILE with it"
            )
    python = interpreter(home.target.endpoint_url)
    if tasks_source is not None:
        s3 = functools.partial(home.target.client, "s3")
        table = read_table(tasks_source, table_format, stdin=sys.stdin.buffer, s3=s3)
        # Local paths in --input columns are relative to the table's folder (or to here).
        local_table = tasks_source != "-" and not tasks_source.startswith("s3://")
        base = Path(tasks_source).absolute().parent if local_table else Path.cwd()
        transfer = terminal.Transfer(
            terminal.make_console(stderr=True), quiet=as_json, doing="uploading inputs"
        )

        def uploads(items: list[LocalInput]) -> list[LocalInput]:
            assert home.outputs.data is not None  # a sweep needs a data bucket (checked before)
            with transfer:
                return upload_inputs(
                    s3(), home.outputs.data, items, on_plan=transfer.plan, on_bytes=transfer.advance
                )

        record = submit_sweep(
            home.target.client("batch"),
            s3(),
            context.store,
            options,
            table,
            home.outputs,
            per_task=per_task,
            key=key_column,
            code=code,
            inputs=input_columns,
            check_inputs_exist=not no_input_check,
            now=context.now(),
            python=python,
            depends_on_job_ids=depends_on_jobs,
            endpoint_url=home.target.endpoint_url,
            emulator=home.target.emulator,
            input_base=base,
            uploads=uploads,
        )
        after_submit(context, record, as_json=as_json, wait=wait, interval=interval, price=vcpu_hour_price)
        return
    launch = plan_launch(home.outputs, code, python) if code is not None else None
    record = submit_run(
        home.target.client("batch"),
        context.store,
        options,
        home.outputs,
        now=context.now(),
        depends_on_job_ids=depends_on_jobs,
        endpoint_url=home.target.endpoint_url,
        emulator=home.target.emulator,
        launch=launch,
        s3=home.target.client("s3") if launch else None,
    )
    after_submit(context, record, as_json=as_json, wait=wait, interval=interval, price=vcpu_hour_price)


def after_submit(
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
        rows = rows_note(context, record)
        click.echo(
            f"Submitted run {record.run_id}: {jobs} ({tasks}{rows}) to "
            f"{record.stack_outputs.job_queue_name}{lineage}"
        )
        if record.code and "uploaded" in record.code:
            sent = "uploaded" if record.code["uploaded"] else "already in the data bucket; nothing uploaded"
            click.echo(f"Code {describe_code(record.code)}: {sent}.")
        for line in describe_changes(record.changes):
            click.echo(f"Changed: {line}")
    if not wait:
        if as_json:
            terminal.print_json(submitted)
        else:
            click.echo(f"Watch it with `runner watch {record.run_id}`.")
        return
    service = context.service()
    ref = service.resolve(record.parent_run_id or record.run_id)
    own = service.resolve(record.run_id)
    watch_with_progress(own, interval)
    summarize_and_show(context, ref, as_json, price=price, submitted=submitted)


def rows_note(context: CliContext, record: RunRecord) -> str:
    """A sweep's rows, for the line submit and retry print: all of them, or those a retry runs."""
    if record.sweep:
        return f" of {record.sweep['rows']:,} rows"
    root = context.store.load(record.parent_run_id) if record.parent_run_id else None
    if root is None or not root.sweep:
        return ""
    tasks = (index for shard in record.shards for index in range(shard.offset, shard.stop))
    return f", rows {format_ranges(Sweep.from_json(root.sweep).rows_of(tasks), limit=12)}"


@click.command()
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
    help="For a run submitted with --tasks: rerun exactly the rows not done (no manifest); rows "
    "that are done are not run again.",
)
@task_size_options("the run's")
@code_option
@click.option("--command", help="Run this command instead of the run's (one shell-quoted string).")
@click.option(
    "--env", multiple=True, metavar="K=V", help="Set this variable for the retried tasks (repeatable)."
)
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
    code: Path | None,
    command: str | None,
    env: tuple[str, ...],
    wait: bool,
    interval: float,
    vcpu_hour_price: float | None,
    as_json: bool,
) -> None:
    """Run exactly the failed tasks of a run again, as a new run linked to it.

    Each contiguous range of logical indices becomes one array job with its RUNNER_INDEX_OFFSET.
    The run's command, environment, parameters, tags and overrides carry over unless overridden;
    --stack runs them on another stack (a lab run's Spot failures on prod's on-demand capacity).
    --code, --command and --env carry a fix; the new record keeps what changed (code digest,
    command, variables: before and after), shown by `runner runs`, the summary and the report.

    \b
    Example:
        runner retry 20261124-151012-ab12 --class spot --stack prod
        runner retry 20261124-151012-ab12 --class oom --memory 8192 --wait
        runner retry 20261124-151012-ab12 --skip-existing --code ./analysis
    """
    service = context.service()
    ref = service.resolve(run_id)
    if ref.record is None or not ref.whole_run:
        raise InvalidInputError(f"retry takes a run id (see `runner runs`), got {run_id!r}")
    if skip_existing and ref.sweep is not None and indices is None and classes is None:
        indices = service.tasks_not_done(ref)
    options = RetryOptions(
        parse_classes(classes),
        indices,
        memory_mib,
        vcpus,
        timeout_seconds,
        attempts,
        skip_existing,
        command=command,
        env=parse_pairs(env, "--env"),
    )
    there = context.home() if context.overrides_stack else StackTarget(ref.outputs, ref.target)
    launch = plan_launch(ref.outputs, code, interpreter(there.target.endpoint_url)) if code else None
    summary = service.summary(ref)
    latest = latest_attempt(context.store, ref.record)
    if code is None:
        drift = code_drift(latest.code, latest.run_id)
        if drift:
            click.echo(f"Note: {drift}", err=True)
    record = retry_run(
        there.target.client("batch"),
        context.store,
        ref.record,
        summary,
        options,
        there.outputs,
        now=context.now(),
        endpoint_url=there.target.endpoint_url,
        emulator=there.target.emulator,
        launch=launch,
        s3=ref.target.client("s3") if launch else None,
        latest=latest,
    )
    after_submit(context, record, as_json=as_json, wait=wait, interval=interval, price=vcpu_hour_price)
