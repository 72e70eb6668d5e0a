"""The root group's contract: every error is one ``Error: ...`` line with the documented exit code."""

from __future__ import annotations

from typing import Any

import click

from runner.cli import EXIT_INTERRUPTED, INTERRUPTED
from runner.errors import RunnerError

EXIT_JOBS_FAILED = 3


def _one_line(err: click.UsageError) -> click.ClickException:
    """A usage mistake as one line pointing at the right --help, keeping exit code 2."""
    command = err.ctx.command_path if err.ctx else "runner"
    line = click.ClickException(f"{err.format_message()} (see `{command} --help`)")
    line.exit_code = err.exit_code
    return line


class RunnerGroup(click.Group):
    """Turns every RunnerError and usage mistake into one ``Error: ...`` line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            raise _one_line(err) from None
        except KeyboardInterrupt:
            raise _interrupted() from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunnerError as err:
            line = click.ClickException(str(err))
            line.exit_code = err.exit_code
            raise line from None
        except click.UsageError as err:
            raise _one_line(err) from None
        except KeyboardInterrupt:
            raise _interrupted() from None


def _interrupted() -> click.ClickException:
    interrupted = click.ClickException(INTERRUPTED)
    interrupted.exit_code = EXIT_INTERRUPTED
    return interrupted
