"""The runner's one error family: every user mistake is one ``Error: ...`` line.

Exit codes follow one rule: 2 for anything the user typed wrong (unknown option, wrong type,
out of range, beyond a stack's or AWS's limits), 1 for everything else that stopped a command.
"""

from __future__ import annotations

from pathlib import Path

EXIT_ERROR = 1
EXIT_USAGE = 2


class RunnerError(Exception):
    """A problem the user can fix; the message is one line that says what to do."""

    exit_code = EXIT_ERROR


class InvalidInputError(RunnerError):
    """A value given on the command line is out of range or breaks an AWS limit."""

    exit_code = EXIT_USAGE


class StackOutputsError(RunnerError):
    """The stack's outputs could not be read or miss part of the contract."""


class RunNotFoundError(RunnerError):
    """No run record or AWS job matches the id given."""


class RunRecordError(RunnerError):
    """A run record on disk cannot be read; the message names the file and what is wrong."""

    def __init__(self, message: str, path: Path | None) -> None:
        super().__init__(message)
        self.path = path


class AwsError(RunnerError):
    """AWS (or the emulator) refused a call in a way the user can act on.

    ``transient`` marks what may pass by itself (network, throttling, a 5xx): worth retrying
    in a long watch, not worth failing it for.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
