"""The runner's one error family: every user mistake is one ``Error: ...`` line."""

from __future__ import annotations


class RunnerError(Exception):
    """A problem the user can fix; the message is one line that says what to do."""


class StackOutputsError(RunnerError):
    """The stack's outputs could not be read or miss part of the contract."""


class RunNotFoundError(RunnerError):
    """No run record or AWS job matches the id given."""


class AwsError(RunnerError):
    """AWS (or the emulator) refused a call in a way the user can act on."""
