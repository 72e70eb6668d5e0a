"""Deploy a stack of this project's Pulumi program into the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from runner.aws import AwsTarget, aws_errors
from runner.errors import RunnerError
from runner.local.program import load_stack_config, run_program
from runner.local.provisioner import EmulatorMocks
from runner.stack_outputs import parse_outputs

DEFAULT_REGION = "us-east-1"


def deploy_stack(project_dir: Path, stack: str, endpoint_url: str | None) -> dict[str, Any]:
    """Run the program for ``stack`` with every resource created in the emulator.

    Returns the stack outputs (the same contract ``pulumi stack output --json`` prints).
    """
    region = load_stack_config(project_dir, stack).get("aws:region") or DEFAULT_REGION
    mocks = EmulatorMocks(AwsTarget(region, endpoint_url))
    try:
        with aws_errors():
            outputs = run_program(project_dir, stack, mocks)
    except pulumi.RunError as err:  # stack settings the program rejected, one line each
        raise RunnerError(
            "\n".join(f"Pulumi.{stack}.yaml: {line}" for line in str(err).splitlines())
        ) from None
    except Exception:
        if mocks.error is not None:
            raise mocks.error from None
        raise
    parse_outputs(stack, outputs, f"the program's outputs for stack '{stack}'")
    return outputs
