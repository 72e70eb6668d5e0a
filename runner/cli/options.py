"""Every option more than one command takes, declared once (as pip-tools' options module does)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from infra.limits import MAX_JOB_VCPUS


def _set_on_context(attribute: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A callback that lets a target option given after the command name override the group's."""

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        from runner.cli.context import CliContext

        if value not in (None, False):
            setattr(ctx.ensure_object(CliContext), attribute, value)

    return callback


def target_options(command: Callable[..., Any], *, expose: bool = False) -> Callable[..., Any]:
    """``--stack``, ``--outputs`` and ``--local``: before the command name or after it."""
    for option in reversed(
        [
            click.option(
                "--stack",
                envvar=None if not expose else "RUNNER_STACK",
                metavar="NAME",
                expose_value=expose,
                callback=None if expose else _set_on_context("stack_option"),
                help="Stack name (env RUNNER_STACK; default: the selected Pulumi stack).",
            ),
            click.option(
                "--outputs",
                "outputs_file",
                type=click.Path(path_type=Path, dir_okay=False),
                expose_value=expose,
                callback=None if expose else _set_on_context("outputs_file"),
                help="Stack outputs JSON saved with `pulumi stack output --json` (no Pulumi CLI needed).",
            ),
            click.option(
                "--local",
                is_flag=True,
                envvar=None if not expose else "RUNNER_LOCAL",
                expose_value=expose,
                callback=None if expose else _set_on_context("local"),
                help="Use the local emulator started by `runner local up` (env RUNNER_LOCAL=1).",
            ),
        ]
    ):
        command = option(command)
    return command


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document (shapes in the README)."
    )(command)


def price_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--vcpu-hour-price",
        type=click.FloatRange(min=0),
        envvar="RUNNER_VCPU_HOUR_PRICE",
        help="USD per vCPU-hour for the cost estimate (default: a list price per purchase model).",
    )(command)


def task_size_options(default: str, *, vcpus_note: str = "", attempts_note: str = "") -> Callable[..., Any]:
    """``--vcpus``, ``--memory``, ``--timeout`` and ``--attempts``, each held to AWS Batch's range."""
    from runner.runs.submit import ATTEMPTS, MEMORY, TIMEOUT

    options = [
        click.option(
            "--vcpus",
            type=click.IntRange(1, MAX_JOB_VCPUS),
            metavar="N",
            help=f"vCPUs per task{vcpus_note} (default: {default}).",
        ),
        click.option(
            "--memory",
            "memory_mib",
            type=click.IntRange(MEMORY.low, MEMORY.high),
            metavar="MIB",
            help=f"Memory per task in MiB (default: {default}).",
        ),
        click.option(
            "--timeout",
            "timeout_seconds",
            metavar="SECONDS",
            type=click.IntRange(TIMEOUT.low, TIMEOUT.high),
            help=f"Per-attempt timeout (default: {default}).",
        ),
        click.option(
            "--attempts",
            type=click.IntRange(ATTEMPTS.low, ATTEMPTS.high),
            metavar="N",
            help=f"Attempts per task{attempts_note} (default: {default}).",
        ),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def interval_option(command: Callable[..., Any]) -> Callable[..., Any]:
    from runner.runs.watch import DEFAULT_INTERVAL

    return click.option(
        "--interval",
        type=click.FloatRange(min=1),
        default=DEFAULT_INTERVAL,
        show_default=True,
        help="Seconds between the first polls; backs off to 60 s while nothing changes.",
    )(command)


def code_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--code",
        type=click.Path(path_type=Path),
        metavar="PATH",
        help="Ship this script or folder with the run: the task unpacks it and runs the command in it "
        "(RUNNER_CODE_DIR). In a git work tree, the files git would track; .runnerignore leaves out "
        "more. Uploaded once per content digest.",
    )(command)
