"""Commands about stacks: the outputs the runner uses, and every stack side by side."""

from __future__ import annotations

import click

from runner.analysis.stacks import Workload, read_stacks
from runner.aws.stack_outputs import find_project_dir
from runner.cli.context import CliContext, pass_context
from runner.cli.options import json_option, target_options
from runner.errors import InvalidInputError, RunnerError
from runner.runs.submit import MAX_ARRAY
from runner.show import terminal


@click.command()
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


@click.command()
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
