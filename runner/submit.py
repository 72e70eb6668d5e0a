"""Build and send one SubmitJob for a run: an array job (or a single job) on the stack's queue."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runner.aws import aws_errors
from runner.errors import RunnerError
from runner.runs import RunRecord, RunStore, new_run_id
from runner.stack_outputs import StackOutputs

MIN_ARRAY, MAX_ARRAY = 2, 10_000
RUN_ID_ENV = "RUNNER_RUN_ID"
RUN_ID_TAG = "batch-stacks:run-id"
STACK_TAG = "batch-stacks:stack"
MAX_JOB_NAME = 128
MAX_TAGS = 50
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JOB_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class SubmitOptions:
    """What the user asked for; everything optional overrides the job definition."""

    array_size: int | None = None
    name: str | None = None
    command: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    vcpus: int | None = None
    memory_mib: int | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    attempts: int | None = None
    timeout_seconds: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    depends_on: str | None = None


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """``K=V`` strings to a dict; a malformed one is a one-line error naming the option."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise RunnerError(f"{option} takes KEY=VALUE, got {value!r}")
        pairs[key.strip()] = rest
    return pairs


def job_name(name: str | None, stack: str, run_id: str) -> str:
    """A unique job name within AWS's rules (1-128 letters, digits, ``-``, ``_``).

    The run id is always the suffix, so the job can be found by name if its record lacks the id.
    """
    base = _JOB_NAME_BAD.sub("-", name or stack).strip("-_") or stack
    base = base[: MAX_JOB_NAME - len(run_id) - 1].rstrip("-_")
    return f"{base}-{run_id}"


def validate(options: SubmitOptions, outputs: StackOutputs) -> None:
    """Reject what AWS would reject (or accept and never run) before anything is submitted."""
    size = options.array_size
    if size is not None and not MIN_ARRAY <= size <= MAX_ARRAY:
        raise RunnerError(
            f"--array {size} is out of range; use {MIN_ARRAY} to {MAX_ARRAY:,} "
            "(omit --array for a single job)"
        )
    if options.vcpus is not None and not 1 <= options.vcpus <= outputs.max_vcpus:
        raise RunnerError(
            f"--vcpus {options.vcpus} cannot run on stack '{outputs.stack}'; "
            f"use 1 to {outputs.max_vcpus} (its maxVcpus)"
        )
    if options.memory_mib is not None and options.memory_mib < 128:
        raise RunnerError(f"--memory {options.memory_mib} is too small; use at least 128 (MiB)")
    if options.attempts is not None and not 1 <= options.attempts <= 10:
        raise RunnerError(f"--attempts {options.attempts} is out of range; use 1 to 10")
    if options.timeout_seconds is not None and options.timeout_seconds < 60:
        raise RunnerError(f"--timeout {options.timeout_seconds} is too short; use at least 60 seconds")
    for key in options.env:
        if not _ENV_NAME.match(key):
            raise RunnerError(f"--env {key!r} is not a variable name; use letters, digits and _")
        if key == RUN_ID_ENV or key.startswith("AWS_BATCH"):
            raise RunnerError(f"--env {key} is reserved; choose another name")
    for key in options.tags:
        if key.startswith("aws:") or key.startswith("batch-stacks:"):
            raise RunnerError(f"--tag {key} uses a reserved prefix; choose another key")
    if len(options.tags) + 2 > MAX_TAGS:
        raise RunnerError(f"too many --tag values; AWS allows {MAX_TAGS - 2} besides the runner's")
    if options.command is not None:
        try:
            if not shlex.split(options.command):
                raise ValueError("empty")
        except ValueError as err:
            raise RunnerError(f"--command cannot be parsed ({err}); quote it as one string") from None


def submit_params(
    options: SubmitOptions,
    outputs: StackOutputs,
    run_id: str,
    *,
    depends_on_job_id: str | None = None,
    evaluate_on_exit: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The SubmitJob request for a run. Pure: no AWS calls."""
    environment = [{"name": RUN_ID_ENV, "value": run_id}] + [
        {"name": key, "value": value} for key, value in sorted(options.env.items())
    ]
    overrides: dict[str, Any] = {"environment": environment}
    if options.command is not None:
        overrides["command"] = shlex.split(options.command)
    requirements = []
    if options.vcpus is not None:
        requirements.append({"type": "VCPU", "value": str(options.vcpus)})
    if options.memory_mib is not None:
        requirements.append({"type": "MEMORY", "value": str(options.memory_mib)})
    if requirements:
        overrides["resourceRequirements"] = requirements

    params: dict[str, Any] = {
        "jobName": job_name(options.name, outputs.stack, run_id),
        "jobQueue": outputs.job_queue_arn,
        "jobDefinition": outputs.job_definition_arn,
        "containerOverrides": overrides,
        "tags": {**options.tags, RUN_ID_TAG: run_id, STACK_TAG: outputs.stack},
        "propagateTags": True,
    }
    if options.array_size is not None:
        params["arrayProperties"] = {"size": options.array_size}
    if options.parameters:
        params["parameters"] = dict(options.parameters)
    if options.attempts is not None:
        # A submitted retryStrategy replaces the definition's, so its exit rules are carried over.
        strategy: dict[str, Any] = {"attempts": options.attempts}
        if evaluate_on_exit:
            strategy["evaluateOnExit"] = evaluate_on_exit
        params["retryStrategy"] = strategy
    if options.timeout_seconds is not None:
        params["timeout"] = {"attemptDurationSeconds": options.timeout_seconds}
    if depends_on_job_id is not None:
        params["dependsOn"] = [{"jobId": depends_on_job_id}]
    return params


def check_queue(batch: Any, outputs: StackOutputs) -> None:
    """The queue exists and takes jobs; otherwise say how to fix it."""
    with aws_errors():
        queues = batch.describe_job_queues(jobQueues=[outputs.job_queue_arn])["jobQueues"]
    if not queues:
        raise RunnerError(
            f"job queue {outputs.job_queue_name} does not exist; run `pulumi up -s {outputs.stack}`"
        )
    queue = queues[0]
    if queue.get("state") != "ENABLED":
        raise RunnerError(
            f"job queue {outputs.job_queue_name} is {queue.get('state', 'not enabled')}; "
            f"enable it (`pulumi up -s {outputs.stack}`) and submit again"
        )
    if queue.get("status") == "INVALID":
        raise RunnerError(
            f"job queue {outputs.job_queue_name} is INVALID ({queue.get('statusReason', '')}); "
            "fix the stack and run `pulumi up`"
        )


def definition_exit_rules(batch: Any, outputs: StackOutputs) -> list[dict[str, Any]]:
    with aws_errors():
        found = batch.describe_job_definitions(jobDefinitions=[outputs.job_definition_arn])
    for definition in found.get("jobDefinitions", []):
        rules = definition.get("retryStrategy", {}).get("evaluateOnExit", [])
        return [{**rule, "action": str(rule.get("action", "")).upper()} for rule in rules]
    return []


def submit_run(
    batch: Any,
    store: RunStore,
    options: SubmitOptions,
    outputs: StackOutputs,
    *,
    now: datetime,
    depends_on_job_id: str | None = None,
    endpoint_url: str | None = None,
) -> RunRecord:
    """Validate, record, submit, record again. The record exists before SubmitJob is sent."""
    validate(options, outputs)
    check_queue(batch, outputs)
    rules = definition_exit_rules(batch, outputs) if options.attempts is not None else None
    run_id = new_run_id(now)
    params = submit_params(
        options, outputs, run_id, depends_on_job_id=depends_on_job_id, evaluate_on_exit=rules
    )
    record = RunRecord(
        run_id=run_id,
        stack=outputs.stack,
        created_at=now.isoformat(),
        job_name=params["jobName"],
        request=params,
        outputs=outputs.to_contract(),
        endpoint_url=endpoint_url,
    )
    store.save(record)
    # If this process dies during the call the job may exist: the record stays "submitting"
    # and recover_job_id finds the job by its unique name.
    try:
        with aws_errors():
            response = batch.submit_job(**params)
    except RunnerError as err:
        record.state, record.error = "submit-failed", str(err)
        store.save(record)
        raise
    record.state = "submitted"
    record.job_ids = [response["jobId"]]
    store.save(record)
    return record


def recover_job_id(batch: Any, record: RunRecord) -> str | None:
    """Find the job of a run whose record never got its id (interrupted submit), by name."""
    if record.job_id or record.state != "submitting":
        return record.job_id
    with aws_errors():
        found = batch.list_jobs(
            jobQueue=record.request["jobQueue"],
            filters=[{"name": "JOB_NAME", "values": [record.job_name]}],
        )
    matches = [job["jobId"] for job in found.get("jobSummaryList", [])]
    return matches[0] if matches else None
