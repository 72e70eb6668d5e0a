"""The runner's one error family: every user mistake is one ``Error: ...`` line."""

from __future__ import annotations


class RunnerError(Exception):
    """A problem the user can fix; the message says what to do."""
