"""The ``runner`` group: the options every command shares, and the commands by concept."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from runner.cli import rows, runs, stacks, submit
from runner.cli.context import CliContext
from runner.cli.group import RunnerGroup
from runner.cli.local import local as local_group
from runner.cli.options import target_options


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


for command in (
    submit.submit,
    submit.retry,
    runs.watch_command,
    runs.summary_command,
    runs.report,
    runs.logs,
    runs.cancel,
    runs.runs,
    runs.why,
    rows.results,
    rows.collect,
    stacks.outputs,
    stacks.stacks,
    local_group,
):
    cli.add_command(command)


def main() -> None:
    """The ``runner`` console script."""
    cli.main(prog_name="runner", windows_expand_args=False)
