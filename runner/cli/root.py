"""The ``runner`` group: the options every command shares, and the commands by concept.

Commands load when they are named: ``runner --help`` imports none of them, and a command's own
parsing imports its module but neither the Pulumi SDK nor boto3 nor the report's libraries (those
load inside the commands that use them).
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

import click

from runner.cli.group import RunnerGroup
from runner.cli.options import target_options

# Every command: its module and attribute, and the one line ``runner --help`` shows for it.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "submit": (
        "runner.cli.submit",
        "submit",
        "Submit an array job, one job, or a sweep over a table's rows.",
    ),
    "retry": ("runner.cli.submit", "retry", "Run a run's failed tasks or unfinished rows again, with a fix."),
    "watch": ("runner.cli.runs", "watch_command", "Show live progress until every task has finished."),
    "summary": ("runner.cli.runs", "summary_command", "Counts, failures by class, runtimes and cost."),
    "report": ("runner.cli.runs", "report", "Write the run's report: one self-contained HTML file."),
    "logs": ("runner.cli.runs", "logs", "Print a task's or a row's latest log."),
    "cancel": ("runner.cli.runs", "cancel", "Cancel what is queued and terminate what is running."),
    "runs": ("runner.cli.runs", "runs", "Recent runs from the run records, newest first."),
    "why": ("runner.cli.runs", "why", "Why tasks sit in RUNNABLE or PENDING: one verdict."),
    "results": ("runner.cli.rows", "results", "A --tasks run's rows by fate, the ones not done by key."),
    "collect": ("runner.cli.rows", "collect", "Download the done rows' outputs, checked against manifests."),
    "outputs": ("runner.cli.stacks", "outputs", "The resolved stack outputs the runner uses."),
    "stacks": ("runner.cli.stacks", "stacks", "Every stack of the project side by side."),
    "local": ("runner.cli.local", "local", "The embedded local default: moto's server on loopback."),
}


class LazyRunnerGroup(RunnerGroup):
    """Imports a command's module only when the command is named."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attribute, _ = entry
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table above: no command module is imported for it."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])


@click.group(name="runner", cls=LazyRunnerGroup)
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

    from runner.cli.context import CliContext

    context = ctx.ensure_object(CliContext)
    context.stack_option, context.outputs_file, context.local = stack, outputs_file, local
