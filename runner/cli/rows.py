"""Commands about a sweep's rows and their data: every row's fate, and the done rows' outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.cli.context import CliContext, pass_context
from runner.cli.group import EXIT_JOBS_FAILED
from runner.cli.options import json_option, target_options
from runner.indices import parse_ranges
from runner.runs.collect import collect_outputs
from runner.runs.results import SHOWN_ROWS
from runner.runs.rows import ROW_STATES
from runner.show import terminal


@click.command()
@click.argument("run_id")
@click.option(
    "--state",
    type=click.Choice(ROW_STATES),
    help="Print only the rows in this state, their number and key, one a line (for scripts).",
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help=f"Show every row that did not succeed (default: the first {SHOWN_ROWS}; one read each).",
)
@target_options
@json_option
@pass_context
def results(context: CliContext, run_id: str, state: str | None, show_all: bool, as_json: bool) -> None:
    """A --tasks run's rows by fate: succeeded with outputs, succeeded without, failed, killed, not run.

    Each row's fate is its latest over the run and its retries (a retry's id reads the whole
    lineage); a row is done only when its manifest is written, after all its outputs. The rows
    that did not succeed are named with their key, exit code, reason and last output line.
    Exits 0 when every row succeeded, 3 otherwise.

    \b
    Example:
        runner results 20261124-151012-ab12
        runner results 20261124-151012-ab12 --state failed | cut -f2
        runner collect 20261124-151012-ab12 --to results/
    """
    service = context.service()
    ref = service.resolve(run_id)
    if state is not None:
        found = service.results(ref, state=state)  # type: ignore[arg-type]  # click's Choice checked it
        if as_json:
            terminal.print_json([{"row": row, "key": found.keys.get(row)} for row in found.rows_in(state)])  # type: ignore[arg-type]
        else:
            terminal.show_rows_in_state(found, state)
    else:
        found = service.results(ref, shown=None if show_all else SHOWN_ROWS, every_key=as_json)
        if as_json:
            terminal.print_json(found.to_json())
        else:
            terminal.show_results(terminal.make_console(), found)
    if not found.complete:
        sys.exit(EXIT_JOBS_FAILED)


@click.command()
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
    """Download the outputs of a --tasks run's done rows, checked against their manifests.

    Only rows with a manifest are collected, exactly the files it lists; a file already there
    that matches its size and SHA-256 is kept, one that differs is replaced. A retry's run id
    collects the whole lineage.
    """
    service = context.service()
    root = service.root(service.resolve(run_id))
    found = service.results(root, shown=0)
    sweep = found.sweep
    chosen = set(parse_ranges(rows, sweep.rows, option="--rows")) if rows else None
    with terminal.Transfer(terminal.make_console(stderr=True), quiet=as_json) as transfer:
        done = collect_outputs(
            root.target.client("s3"),
            sweep,
            found.fates,
            dest,
            chosen,
            on_plan=transfer.plan,
            on_file=transfer.advance,
        )
    if as_json:
        terminal.print_json({"runId": sweep.run_id, "to": str(dest), **done.to_json()})
    else:
        terminal.show_collected(terminal.make_console(), done, dest)
