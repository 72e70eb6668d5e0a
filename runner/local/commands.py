"""`runner local up|down|status`: the emulator and the stacks deployed into it."""

from __future__ import annotations

import sys

import click

from runner.aws.stack_outputs import find_project_dir
from runner.local.deploy import deploy_or_keep
from runner.local.server import running_server, start_server, stop_server
from runner.session import Session
from runner.show import terminal as render

EXIT_NOT_RUNNING = 3

pass_session = click.make_pass_decorator(Session)


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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (shapes in the README).")
@pass_session
def up(session: Session, stack_name: str | None, port: int | None, as_json: bool) -> None:
    """Start the emulator (or reuse it) and deploy a stack's Pulumi program into it."""
    stack = stack_name or session.stack_option or "dev"
    project_dir = find_project_dir()
    state = session.local_state
    with state.lock():
        info, started = start_server(state, port)
        try:
            result = deploy_or_keep(project_dir, stack, info.endpoint_url, state)
        except BaseException:
            if started:  # a failed or interrupted first deploy leaves no emulator behind
                stop_server(state)
            raise
    outputs = result.outputs
    if as_json:
        render.print_json(
            {
                "endpointUrl": info.endpoint_url,
                "pid": info.pid,
                "started": started,
                "stack": stack,
                "deployment": result.action,
                "outputs": outputs,
            }
        )
        return
    verb = "Started" if started else "Reusing"
    click.echo(f"{verb} the emulator (moto) at {info.endpoint_url}, pid {info.pid}.")
    what = {"deployed": "Deployed", "kept": "Kept the unchanged", "replaced": "Replaced the changed"}
    click.echo(
        f"{what[result.action]} stack '{stack}': {outputs['purchaseModel']} compute up to "
        f"{outputs['maxVcpus']} vCPUs, queue {outputs['jobQueueName']}."
    )
    click.echo(f"Next: runner --local --stack {stack} submit --array 100 --wait")


@local.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (shapes in the README).")
@pass_session
def down(session: Session, as_json: bool) -> None:
    """Stop the emulator; everything deployed into it is gone with it."""
    state = session.local_state
    with state.lock():
        info = stop_server(state)
    if as_json:
        render.print_json({"stopped": info is not None, "pid": info.pid if info else None})
    elif info is None:
        click.echo("The emulator is not running.")
    else:
        click.echo(f"Stopped the emulator (pid {info.pid}).")


@local.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (shapes in the README).")
@pass_session
def status(session: Session, as_json: bool) -> None:
    """What runs where. Exits 3 when the emulator is not running."""
    state = session.local_state
    info = running_server(state)
    stacks = state.deployed_stacks() if info else []
    if as_json:
        render.print_json(
            {
                "running": info is not None,
                "endpointUrl": info.endpoint_url if info else None,
                "pid": info.pid if info else None,
                "stacks": stacks,
            }
        )
    elif info is None:
        click.echo("The emulator is not running; start it with `runner local up`.")
    else:
        click.echo(
            f"The emulator (moto) runs at {info.endpoint_url}, pid {info.pid}, since {info.started_at}."
        )
        click.echo(f"Deployed stacks: {', '.join(stacks) or 'none'}. Log: {info.log_file}")
    if info is None:
        sys.exit(EXIT_NOT_RUNNING)
