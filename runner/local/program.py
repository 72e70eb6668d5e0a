"""Run this project's Pulumi program in-process under Pulumi's mock engine.

The same program ``pulumi up`` runs, with the stack's config loaded from ``Pulumi.<stack>.yaml``
the way the Pulumi CLI passes it: project-namespaced keys, objects and non-strings as JSON.
The ``Mocks`` decide what each resource and invoke does (record it, or create it in moto).
"""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import stack_files
from runner.errors import RunnerError

# The mock engine's log messages (the program's pulumi.log calls) are not the runner's output.
_ENGINE_LOG = logging.getLogger("batch-stacks.program")
_ENGINE_LOG.addHandler(logging.NullHandler())
_ENGINE_LOG.propagate = False


class ProgramError(RunnerError):
    """The Pulumi program or its stack file could not be run."""


def load_stack_config(project_dir: Path, stack: str) -> dict[str, str]:
    """The stack's config as the Pulumi CLI hands it to a program, or one line naming the mistake."""
    try:
        return stack_files.load_stack_config(project_dir, stack)
    except stack_files.StackFileError as err:
        raise ProgramError(str(err)) from None


def project_name(project_dir: Path) -> str:
    try:
        return stack_files.project_name(project_dir)
    except stack_files.StackFileError as err:
        raise ProgramError(str(err)) from None


def run_program(
    project_dir: Path, stack: str, mocks: pulumi.runtime.Mocks, *, preview: bool = False
) -> dict[str, Any]:
    """Run ``__main__.py`` for ``stack`` under ``mocks``; return the resolved stack outputs.

    Errors from the program (a bad setting, an unsupported resource) propagate unchanged.
    """
    project = project_name(project_dir)
    config = load_stack_config(project_dir, stack)
    main = project_dir / "__main__.py"

    # Each run is a fresh deployment: no root stack or config left from an earlier run.
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(config, secret_keys=[])
    # Outputs left pending by an earlier run that failed must not be awaited (and re-raised) by this one.
    for task in list(runtime_settings.SETTINGS.outputs):
        task.cancel()
    runtime_settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, logger=_ENGINE_LOG)
    root = runtime_settings.get_root_resource()
    assert isinstance(root, pulumi.runtime.stack.Stack)

    added_path = str(project_dir) not in sys.path
    if added_path:
        sys.path.insert(0, str(project_dir))
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(main), run_name="__main__")))
        return {
            name: _sync_await(pulumi.Output.from_input(value).future())
            for name, value in root.outputs.items()
        }
    finally:
        if added_path:
            sys.path.remove(str(project_dir))
