"""Deploy a stack of this project's Pulumi program into the emulator: once, kept, or replaced."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import boto3
import pulumi

from runner.aws.clients import AwsTarget, aws_errors
from runner.aws.stack_outputs import StackOutputs, parse_outputs
from runner.errors import RunnerError
from runner.local.program import load_stack_config, run_program
from runner.local.provisioner import EmulatorMocks
from runner.local.state import Deployment, LocalState

DEFAULT_REGION = "us-east-1"
Action = Literal["deployed", "kept", "replaced"]


@dataclass(frozen=True)
class DeployResult:
    outputs: StackOutputs
    action: Action


def _program_sources(project_dir: Path) -> list[Path]:
    """The files whose change changes what a deploy makes: ``__main__.py`` and the ``infra``
    package it imports (the project's own, else the installed one)."""
    import infra

    package = project_dir / "infra"
    package = package if package.is_dir() else Path(infra.__file__).resolve().parent
    return [project_dir / "__main__.py", *sorted(package.glob("*.py"))]


def fingerprint(project_dir: Path, stack: str) -> str:
    """What a deployment was made from: the stack's config and the program's source."""
    digest = hashlib.sha256(json.dumps(load_stack_config(project_dir, stack), sort_keys=True).encode())
    for path in _program_sources(project_dir):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _region(project_dir: Path, stack: str) -> str:
    """The stack's ``aws:region``, checked against the regions AWS has (botocore's own list)."""
    region = load_stack_config(project_dir, stack).get("aws:region") or DEFAULT_REGION
    known = set(boto3.session.Session().get_available_regions("batch"))
    if region not in known:
        raise RunnerError(
            f"Pulumi.{stack}.yaml: aws:region {region!r} is not an AWS region with Batch; "
            f"use one such as {DEFAULT_REGION}"
        )
    return region


def deploy_stack(
    project_dir: Path, stack: str, endpoint_url: str | None, credentials: tuple[str, str] | None = None
) -> tuple[StackOutputs, Deployment]:
    """Run the program for ``stack`` with every resource created in the emulator.

    Returns the stack outputs (the contract ``pulumi stack output --json`` prints) and what was
    created. A failed or interrupted deploy deletes what it had created, so nothing half-made stays.
    """
    mocks = EmulatorMocks(AwsTarget(_region(project_dir, stack), endpoint_url, credentials))
    try:
        with aws_errors():
            exported = run_program(project_dir, stack, mocks)
        outputs = parse_outputs(stack, exported, f"the program's outputs for stack '{stack}'")
    except BaseException as err:
        left = mocks.teardown(mocks.created) if mocks.created else []
        if left:
            raise RunnerError(
                f"deploying stack '{stack}' stopped and left {len(left)} resource(s) in the emulator "
                f"({'; '.join(left)}); `runner local down` removes them"
            ) from err
        if isinstance(err, pulumi.RunError):  # stack settings the program rejected, one line each
            raise RunnerError(
                "\n".join(f"Pulumi.{stack}.yaml: {line}" for line in str(err).splitlines())
            ) from None
        if isinstance(err, Exception) and mocks.error is not None:
            raise mocks.error from None
        raise
    if outputs.data is not None:
        ensure_bucket(AwsTarget(outputs.region, endpoint_url, credentials), outputs.data.bucket)
    return outputs, Deployment(fingerprint(project_dir, stack), list(mocks.created))


def ensure_bucket(target: AwsTarget, bucket: str) -> None:
    """The stack's data bucket, in the emulator's S3 (on AWS it is yours: the program only names it).

    Kept when a stack is replaced or removed: data outlives the stacks that use it.
    """
    s3 = target.client("s3")
    with aws_errors():
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if bucket in existing:
            return
        location = (
            {}
            if target.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": target.region}}
        )
        s3.create_bucket(Bucket=bucket, **location)


def _still_there(outputs: StackOutputs, target: AwsTarget) -> bool:
    batch = target.client("batch")
    with aws_errors():
        return bool(batch.describe_job_queues(jobQueues=[outputs.job_queue_arn])["jobQueues"])


def deploy_or_keep(project_dir: Path, stack: str, endpoint_url: str, state: LocalState) -> DeployResult:
    """Deploy ``stack`` once per emulator: keep an unchanged deployment, replace a changed one.

    Changed means its stack file or the program's source differ from what it was made from.
    """
    credentials = state.credentials()
    previous = state.deployment(stack) if stack in state.deployed_stacks() else None
    if previous is not None and not _still_there(
        state.outputs(stack), AwsTarget(state.outputs(stack).region, endpoint_url, credentials)
    ):
        state.forget_stack(stack)  # the emulator no longer holds it (its data was reset or set aside)
        previous = None
    if previous is not None:
        outputs = state.outputs(stack)
        if previous.fingerprint == fingerprint(project_dir, stack):
            return DeployResult(outputs, "kept")
        mocks = EmulatorMocks(AwsTarget(_region(project_dir, stack), endpoint_url, credentials))
        left = mocks.teardown(previous.created)
        state.forget_stack(stack)
        if left:
            raise RunnerError(
                f"could not remove the previous deployment of '{stack}' ({'; '.join(left)}); "
                f"`runner local reset --stack {stack}` removes it and its data"
            )
    outputs, deployment = deploy_stack(project_dir, stack, endpoint_url, credentials)
    state.save_stack(stack, outputs, deployment)
    return DeployResult(outputs, "replaced" if previous is not None else "deployed")
