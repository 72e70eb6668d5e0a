"""``runner``: the click CLI. Commands parse options, call the run service and core modules, and
render; option precedence and target choice live in ``context``, shared options in ``options``.

Nothing is imported here until ``main`` runs (or ``cli`` is asked for), so a Ctrl-C at any moment,
even while modules load, is the one documented line and exit code 130.
"""

from __future__ import annotations

import sys
from typing import Any

EXIT_INTERRUPTED = 130
INTERRUPTED = "interrupted; nothing already submitted is lost (`runner runs` lists every run)"


def main() -> None:
    """The ``runner`` console script."""
    try:
        from runner.cli.root import cli

        cli.main(prog_name="runner", windows_expand_args=False)
    except KeyboardInterrupt:
        sys.stderr.write(f"\nError: {INTERRUPTED}\n")
        sys.exit(EXIT_INTERRUPTED)


def __getattr__(name: str) -> Any:
    if name == "cli":
        from runner.cli.root import cli

        return cli
    raise AttributeError(name)
