"""`runner local up|down|status`: the emulator and the stacks deployed into it."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

import click

from runner.aws.stack_outputs import outputs_from_file
from runner.cli.context import NOT_RUNNING, CliContext, pass_context
from runner.cli.options import json_option
from runner.errors import RunnerError
from runner.local.process import ExecutorOptions, join_server, running_server, start_server, stop_server
from runner.local.project import local_project_dir
from runner.local.reset import forget_local_runs, reset_stack
from runner.local.state import JOINED
from runner.show import terminal

EXIT_NOT_RUNNING = 3


@click.group()
def local() -> None:
    """The embedded local default: moto's server with this project's stacks deployed into it.

    \b
    Example:
        runner local up --stack dev
        runner --local submit --array 100 --wait
        runner local down
    """


@local.command()
@click.option(
    "--stack", "stack_name", default=None, metavar="NAME", help="Stack file to deploy (default: dev)."
)
@click.option(
    "--port", type=click.IntRange(1024, 65535), metavar="PORT", help="Loopback port (default: a free one)."
)
@click.option(
    "--slots",
    type=click.IntRange(1, 256),
    metavar="N",
    help="Tasks that may run at once (default: the number of CPUs).",
)
@click.option(
    "--spot-interruptions",
    type=click.FloatRange(0, 1),
    metavar="RATE",
    help="Fraction of attempts on Spot capacity that are reclaimed, as AWS reports it (default: 0).",
)
@click.option("--seed", type=int, help="Seed for which attempts are reclaimed (default: random).")
@json_option
@pass_context
def up(
    context: CliContext,
    stack_name: str | None,
    port: int | None,
    slots: int | None,
    spot_interruptions: float | None,
    seed: int | None,
    as_json: bool,
) -> None:
    """Start the emulator (or reuse it) and deploy a stack's Pulumi program into it.

    Jobs submitted to it run their command as local processes, walled in where the kernel allows,
    with AWS Batch's states, environment, capacity, exit codes, retries and logs (the image is not
    pulled). From a folder outside a batch-stacks checkout the program that ships with the package
    is deployed.
    """
    stack = stack_name or context.stack_option or "dev"
    project_dir, bundled = local_project_dir()
    if bundled and not as_json:
        click.echo(f"Using the program that ships with batch-stacks ({project_dir}).")
    state = context.local_state
    with state.lock():
        from runner.local.deploy import deploy_or_keep  # the Pulumi SDK, only to deploy

        info, started = start_server(state, port, ExecutorOptions(slots, spot_interruptions, seed))
        try:
            result = deploy_or_keep(project_dir, stack, info.endpoint_url, state)
        except BaseException:
            if started:  # a failed or interrupted first deploy leaves no emulator behind
                stop_server(state)
            raise
    outputs = result.outputs
    if as_json:
        terminal.print_json(
            {
                "endpointUrl": info.endpoint_url,
                "pid": info.pid,
                "started": started,
                "stack": stack,
                "deployment": result.action,
                "outputs": outputs.to_json(),
                "restored": asdict(restored) if (restored := state.restored()) and started else None,
            }
        )
        return
    verb = "Started" if started else "Reusing"
    click.echo(f"{verb} the emulator (moto) at {info.endpoint_url}, pid {info.pid}.")
    restored = state.restored() if started else None
    said = restored.describe() if restored else None
    if said:
        click.echo(said)
    what = {"deployed": "Deployed", "kept": "Kept the unchanged", "replaced": "Replaced the changed"}
    click.echo(
        f"{what[result.action]} stack '{stack}': {outputs.purchase_model} compute up to "
        f"{outputs.max_vcpus} vCPUs, queue {outputs.job_queue_name}."
    )
    click.echo(
        f"Tasks run as local processes ({info.slots} at a time"
        + (f", {info.spot_interruptions:.0%} of Spot attempts reclaimed" if info.spot_interruptions else "")
        + "), each as its job role with IAM enforced; the image is not pulled."
    )
    isolation = state.isolation()
    if isolation is not None:
        click.echo(isolation.describe())
    click.echo(f"Next: runner --local --stack {stack} submit --array 100 --wait")


@local.command()
@click.argument("endpoint_url", metavar="URL")
@click.option(
    "--outputs",
    "outputs_files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A stack's outputs as its owner saved them (`runner --local outputs --json > dev.json`); "
    "the file name is the stack (repeatable).",
)
@json_option
@pass_context
def join(context: CliContext, endpoint_url: str, outputs_files: tuple[Path, ...], as_json: bool) -> None:
    """Use the emulator another user of this machine runs, as a teammate uses a shared stack.

    Sign with the keys its owner made for you (an IAM user of the emulator:
    `aws iam create-user` and `aws iam create-access-key` with the owner's `runner local env`),
    given as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Then `runner --local ...` works on the
    team's runs there; `runner local down` leaves the emulator (its owner stops it).

    \b
    Example:
        runner local join http://127.0.0.1:41234 --outputs dev.json
    """
    keys = (os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY"))
    if not keys[0] or not keys[1]:
        raise RunnerError(
            "local join signs with the keys the emulator's owner made for you; set AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY to them"
        )
    stacks = {path.stem: outputs_from_file(path, path.stem) for path in outputs_files}
    state = context.local_state
    with state.lock():
        info = join_server(state, endpoint_url.rstrip("/"), (keys[0], keys[1]), stacks)
    if as_json:
        terminal.print_json({"endpointUrl": info.endpoint_url, "stacks": sorted(stacks)})
    else:
        click.echo(f"Joined the emulator at {info.endpoint_url}: stacks {', '.join(sorted(stacks))}.")
        click.echo(f"Next: runner --local --stack {sorted(stacks)[0]} runs")


@local.command()
@json_option
@pass_context
def down(context: CliContext, as_json: bool) -> None:
    """Stop the emulator. What it holds (stacks, buckets, jobs, logs, runs) is kept in the state
    folder: `runner local up` brings it all back; `runner local reset` wipes it.

    Tasks still running are stopped, and fail as on a terminated host (retried where their retry
    strategy allows) when the emulator starts again.
    """
    state = context.local_state
    with state.lock():
        info = stop_server(state)
    if as_json:
        terminal.print_json({"stopped": info is not None, "pid": info.pid if info else None})
    elif info is None:
        click.echo("The emulator is not running.")
    elif info.pid == JOINED:
        click.echo(f"Left the emulator at {info.endpoint_url} (its owner stops it).")
    else:
        click.echo(
            f"Stopped the emulator (pid {info.pid}); its data is kept in {state.data_dir}: "
            "`runner local up` resumes, `runner local reset` wipes it."
        )


@local.command()
@click.option(
    "--stack",
    "stack_name",
    default=None,
    metavar="NAME",
    help="Remove only this stack: its resources, its data bucket and the records of its local runs.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_context
def reset(context: CliContext, stack_name: str | None, yes: bool, as_json: bool) -> None:
    """Wipe what the local stack holds: every stack, bucket, job, log and local run (or, with
    --stack, one stack's). Stops the emulator first; `runner local up` starts afresh.

    \b
    Example:
        runner local reset --stack dev
    """
    state = context.local_state
    info = running_server(state)
    if info is not None and info.pid == JOINED:
        raise RunnerError("this state folder uses another user's emulator; its owner resets it")
    what = (
        f"stack '{stack_name}' of the local stack: its resources, its data bucket and its local runs"
        if stack_name
        else f"everything the local stack holds ({state.root}): every stack, bucket, job, log and local run"
    )
    if not yes:
        if not sys.stdin.isatty():
            raise RunnerError(f"local reset wipes {what}; pass --yes to confirm")
        click.confirm(f"Wipe {what}?", abort=True)
    own = state.identity(create=False)
    with state.lock():
        if stack_name:
            removed = reset_stack(state, stack_name)
        else:
            stop_server(state)
            state.wipe()
            removed = None
    forgotten = forget_local_runs(context.store, own.id if own else None, stack_name) if own else 0
    if as_json:
        terminal.print_json({"stack": stack_name, "removed": removed, "runsForgotten": forgotten})
    elif stack_name:
        click.echo(
            f"Removed stack '{stack_name}' ({removed} resources and objects) and {forgotten} local run "
            f"record(s). Next: runner local up --stack {stack_name}"
        )
    else:
        click.echo(f"Wiped the local stack and {forgotten} local run record(s). Next: runner local up")


@local.command()
@json_option
@pass_context
def status(context: CliContext, as_json: bool) -> None:
    """What runs where. Exits 3 when the emulator is not running."""
    state = context.local_state
    info = running_server(state)
    stacks = state.deployed_stacks() if info else []
    if as_json:
        terminal.print_json(
            {
                "running": info is not None,
                "endpointUrl": info.endpoint_url if info else None,
                "pid": info.pid if info else None,
                "stacks": stacks,
                "slots": info.slots if info else None,
                "spotInterruptions": info.spot_interruptions if info else None,
            }
        )
    elif info is None:
        kept = state.snapshot_file
        click.echo(
            "The emulator is not running; start it with `runner local up`"
            + (f" (it brings back what {kept} keeps)." if kept.exists() else ".")
        )
    else:
        click.echo(
            f"The emulator (moto) runs at {info.endpoint_url}, pid {info.pid}, since {info.started_at}."
        )
        click.echo(f"Deployed stacks: {', '.join(stacks) or 'none'}. Log: {info.log_file}")
        click.echo(
            f"Tasks run as local processes, {info.slots} at a time, in {state.work_dir}, "
            "each as its job role with IAM enforced; the image is not pulled."
        )
        isolation = state.isolation()
        if isolation is not None and info.pid != JOINED:
            click.echo(isolation.describe())
    if info is None:
        sys.exit(EXIT_NOT_RUNNING)


@local.command()
@pass_context
def env(context: CliContext) -> None:
    """Print `export` lines that point the AWS CLI and your scripts at the emulator.

    \b
    Example:
        eval "$(runner local env)"
        aws batch describe-job-queues
    """
    state = context.local_state
    info = running_server(state)
    if info is None:
        raise RunnerError(NOT_RUNNING)
    access, secret = state.credentials()
    for name, value in (
        ("AWS_ENDPOINT_URL", info.endpoint_url),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", access),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ):
        click.echo(f"export {name}={shlex.quote(value)}")
