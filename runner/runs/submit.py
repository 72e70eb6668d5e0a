"""Build and send one SubmitJob for a run: an array job (or a single job) on the stack's queue."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.limits import (
    MAX_ARRAY_SIZE,
    MAX_ATTEMPTS,
    MAX_CONTAINER_OVERRIDES_BYTES,
    MAX_JOB_NAME,
    MAX_JOB_VCPUS,
    MAX_MEMORY_MIB,
    MAX_SUBMIT_PAYLOAD_BYTES,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_TAGS,
    MAX_TIMEOUT_SECONDS,
    MIN_ATTEMPTS,
    MIN_MEMORY_MIB,
    MIN_TIMEOUT_SECONDS,
)
from runner.aws.clients import aws_errors
from runner.aws.stack_outputs import StackOutputs
from runner.errors import InvalidInputError, RunnerError
from runner.runs.records import RunRecord, RunStore, new_run_id

MIN_ARRAY, MAX_ARRAY = 2, MAX_ARRAY_SIZE
RUN_ID_ENV = "RUNNER_RUN_ID"
RESERVED_ENV = frozenset({RUN_ID_ENV})
RUN_ID_TAG = "batch-stacks:run-id"
STACK_TAG = "batch-stacks:stack"
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
            raise InvalidInputError(f"{option} takes KEY=VALUE, got {value!r}")
        pairs[key.strip()] = rest
    return pairs


def job_name(name: str | None, stack: str, run_id: str) -> str:
    """A unique job name within AWS's rules (1-128 letters, digits, ``-``, ``_``).

    The run id is always the suffix, so the job can be found by name if its record lacks the id.
    """
    base = _JOB_NAME_BAD.sub("-", name or stack).strip("-_") or stack
    base = base[: MAX_JOB_NAME - len(run_id) - 1].rstrip("-_")
    return f"{base}-{run_id}"


def _utf8_problem(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_utf8(options: SubmitOptions) -> None:
    """Arguments the shell could not decode arrive as lone surrogates; AWS takes only UTF-8."""
    named = [("--name", options.name or ""), ("--command", options.command or "")]
    for option, pairs in (("--env", options.env), ("--param", options.parameters), ("--tag", options.tags)):
        named += [(f"{option} {key!r}", f"{key}={value}") for key, value in pairs.items()]
    for option, text in named:
        if _utf8_problem(text):
            raise InvalidInputError(f"{option} is not valid UTF-8; check the terminal's encoding (LANG)")


def validate(options: SubmitOptions, outputs: StackOutputs) -> None:
    """Reject what AWS would reject (or accept and never run) before anything is submitted."""
    _check_utf8(options)
    size = options.array_size
    if size is not None and not MIN_ARRAY <= size <= MAX_ARRAY:
        raise InvalidInputError(
            f"--array {size} is out of range; use {MIN_ARRAY} to {MAX_ARRAY:,} "
            "(omit --array for a single job)"
        )
    if options.vcpus is not None and not 1 <= options.vcpus <= min(outputs.max_vcpus, MAX_JOB_VCPUS):
        raise InvalidInputError(
            f"--vcpus {options.vcpus} cannot run on stack '{outputs.stack}'; "
            f"use 1 to {min(outputs.max_vcpus, MAX_JOB_VCPUS)} (its maxVcpus)"
        )
    if options.memory_mib is not None and not MIN_MEMORY_MIB <= options.memory_mib <= MAX_MEMORY_MIB:
        raise InvalidInputError(
            f"--memory {options.memory_mib} is out of range; use {MIN_MEMORY_MIB} to {MAX_MEMORY_MIB:,} MiB"
        )
    if options.attempts is not None and not MIN_ATTEMPTS <= options.attempts <= MAX_ATTEMPTS:
        raise InvalidInputError(
            f"--attempts {options.attempts} is out of range; use {MIN_ATTEMPTS} to {MAX_ATTEMPTS}"
        )
    timeout = options.timeout_seconds
    if timeout is not None and not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS:
        raise InvalidInputError(
            f"--timeout {timeout} is out of range; use {MIN_TIMEOUT_SECONDS} to {MAX_TIMEOUT_SECONDS:,} "
            "seconds (14 days)"
        )
    for key in options.env:
        if not _ENV_NAME.match(key):
            raise InvalidInputError(f"--env {key!r} is not a variable name; use letters, digits and _")
        if key in RESERVED_ENV or key.startswith("AWS_BATCH"):
            raise InvalidInputError(f"--env {key} is reserved; choose another name")
    for key, value in options.tags.items():
        if key.startswith("aws:") or key.startswith("batch-stacks:"):
            raise InvalidInputError(f"--tag {key} uses a reserved prefix; choose another key")
        if len(key) > MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise InvalidInputError(
                f"--tag {key[:40]!r} is too long; keys take up to {MAX_TAG_KEY} characters, "
                f"values up to {MAX_TAG_VALUE}"
            )
    if len(options.tags) + 2 > MAX_TAGS:
        raise InvalidInputError(f"too many --tag values; AWS allows {MAX_TAGS - 2} besides the runner's")
    if options.command is not None:
        try:
            if not shlex.split(options.command):
                raise ValueError("empty")
        except ValueError as err:
            raise InvalidInputError(f"--command cannot be parsed ({err}); quote it as one string") from None


def check_request_size(params: dict[str, Any]) -> None:
    """Batch rejects containerOverrides over 8 KiB and job payloads over 30 KiB: say so first."""
    overrides = _json_bytes(params.get("containerOverrides", {}))
    if overrides > MAX_CONTAINER_OVERRIDES_BYTES:
        raise InvalidInputError(
            f"--env and --command add up to {overrides:,} bytes; AWS takes at most "
            f"{MAX_CONTAINER_OVERRIDES_BYTES:,}: put large inputs in S3 and pass their key"
        )
    payload = _json_bytes(params)
    if payload > MAX_SUBMIT_PAYLOAD_BYTES:
        raise InvalidInputError(
            f"the job request is {payload:,} bytes; AWS takes at most {MAX_SUBMIT_PAYLOAD_BYTES:,}: "
            "shorten --param and --tag values or pass large inputs through S3"
        )


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode("utf-8"))


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
    check_request_size(params)
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
