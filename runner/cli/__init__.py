"""``runner``: the click CLI. Commands parse options, call the run service and core modules, and
render; option precedence and target choice live in ``context``, shared options in ``options``."""

from runner.cli.main import cli, main

__all__ = ["cli", "main"]
