"""Build and send one SubmitJob for a run: an array job (or a single job) on the stack's queue."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.limits import (
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
from runner.runs.launch import Launch
from runner.runs.shards import RateLimiter, plan_shards, shard_request, split_ranges
from runner.runs.store import RunRecord, RunStore, new_run_id
from runner.runs.variables import env_option_problem


@dataclass(frozen=True)
class OptionRange:
    """The whole numbers an option takes, declared once for the CLI's types and the submit checks."""

    option: str
    low: int
    high: int
    unit: str = ""  # what follows the range in the message

    def problem(self, value: int | None) -> str | None:
        if value is None or self.low <= value <= self.high:
            return None
        return f"{self.option} {value} is out of range; use {self.low:,} to {self.high:,}{self.unit}"


# Beyond AWS's 10,000 children a run is split into shards; the ceiling only guards against typos.
ARRAY = OptionRange("--array", 2, 1_000_000, " (omit --array for a single job)")
MIN_ARRAY, MAX_ARRAY = ARRAY.low, ARRAY.high
MEMORY = OptionRange("--memory", MIN_MEMORY_MIB, MAX_MEMORY_MIB, " MiB")
TIMEOUT = OptionRange("--timeout", MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, " seconds (14 days)")
ATTEMPTS = OptionRange("--attempts", MIN_ATTEMPTS, MAX_ATTEMPTS)
RUN_ID_ENV = "RUNNER_RUN_ID"
# Set on a retry's tasks: the run it first came from, so outputs can be named by it.
PARENT_RUN_ID_ENV = "RUNNER_PARENT_RUN_ID"
SHARD_SUFFIX = 6
RUN_ID_TAG = "batch-stacks:run-id"
STACK_TAG = "batch-stacks:stack"
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
    # Room for the run id and a shard number (``-42``) of a run split into shards.
    base = base[: MAX_JOB_NAME - len(run_id) - 1 - SHARD_SUFFIX].rstrip("-_")
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
    ranged = {
        ARRAY: options.array_size,
        MEMORY: options.memory_mib,
        ATTEMPTS: options.attempts,
        TIMEOUT: options.timeout_seconds,
    }
    for limit, value in ranged.items():
        problem = limit.problem(value)
        if problem:
            raise InvalidInputError(problem)
    if options.vcpus is not None and not 1 <= options.vcpus <= min(outputs.max_vcpus, MAX_JOB_VCPUS):
        raise InvalidInputError(
            f"--vcpus {options.vcpus} cannot run on stack '{outputs.stack}'; "
            f"use 1 to {min(outputs.max_vcpus, MAX_JOB_VCPUS)} (its maxVcpus)"
        )
    for key in options.env:
        problem = env_option_problem(key)  # RUNNER_* (the runner's own variables) among them
        if problem:
            raise InvalidInputError(problem)
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
    depends_on_job_ids: Sequence[str] = (),
    evaluate_on_exit: list[dict[str, Any]] | None = None,
    container_command: list[str] | None = None,
    system_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The SubmitJob request every shard of a run starts from. Pure: no AWS calls.

    ``container_command`` replaces ``--command`` in the container (a sweep's launcher, which runs
    it per row); ``system_env`` is the runner's own variables (RUNNER_*), beside the user's.

    Each shard adds its name, array size and offset (``shards.shard_request``).
    """
    environment = [{"name": RUN_ID_ENV, "value": run_id}]
    environment += [{"name": key, "value": value} for key, value in (system_env or {}).items()]
    environment += [{"name": key, "value": value} for key, value in sorted(options.env.items())]
    overrides: dict[str, Any] = {"environment": environment}
    if container_command is not None:
        overrides["command"] = container_command
    elif options.command is not None:
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
    if depends_on_job_ids:
        params["dependsOn"] = [{"jobId": job_id} for job_id in depends_on_job_ids]
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


def _definition(batch: Any, outputs: StackOutputs) -> dict[str, Any]:
    with aws_errors():
        found = batch.describe_job_definitions(jobDefinitions=[outputs.job_definition_arn])["jobDefinitions"]
    return found[0] if found else {}


def definition_command(batch: Any, outputs: StackOutputs) -> list[str]:
    """The job definition's command (what a sweep runs per row without ``--command``)."""
    return list((_definition(batch, outputs).get("containerProperties") or {}).get("command") or [])


def definition_exit_rules(batch: Any, outputs: StackOutputs) -> list[dict[str, Any]]:
    rules = (_definition(batch, outputs).get("retryStrategy") or {}).get("evaluateOnExit") or []
    return [{**rule, "action": str(rule.get("action", "")).upper()} for rule in rules]


class SubmitInterrupted(RunnerError):
    """Ctrl-C while shards were being submitted: the record says which exist."""

    exit_code = 130


def new_run(
    params: dict[str, Any],
    outputs: StackOutputs,
    *,
    run_id: str,
    now: datetime,
    pieces: list[tuple[int, int]],
    total_tasks: int,
    array: bool,
    endpoint_url: str | None,
    parent_run_id: str | None = None,
    emulator: str | None = None,
) -> RunRecord:
    """The record of a run about to be submitted: its request and planned shards, none sent yet."""
    shards = plan_shards(pieces, params["jobName"])
    check_request_size(shard_request(params, shards[-1], total_tasks))
    return RunRecord(
        run_id=run_id,
        stack=outputs.stack,
        created_at=now.isoformat(),
        job_name=params["jobName"],
        request=params,
        outputs=outputs.to_json(),
        shards=shards,
        total_tasks=total_tasks,
        array=array,
        endpoint_url=endpoint_url,
        emulator=emulator,
        parent_run_id=parent_run_id,
    )


def submit_shards(batch: Any, store: RunStore, record: RunRecord, limiter: RateLimiter) -> RunRecord:
    """SubmitJob for every shard not yet submitted, within SubmitJob's rate; saved after each.

    If the process dies during a call, that shard may exist without its id in the record:
    ``recover_shards`` finds it by its unique name before anything is submitted again.
    """
    total = len(record.shards)
    for position, shard in enumerate(record.shards):
        if shard.job_id is not None:
            continue
        limiter.wait()
        try:
            with aws_errors():
                response = batch.submit_job(**shard_request(record.request, shard, record.total_tasks))
        except RunnerError as err:
            record = store.commit(record, _failed_with(str(err)))
            done = len(record.job_ids)
            if done:
                raise RunnerError(
                    f"{err}; {done} of {total} shards of run {record.run_id} were submitted: "
                    f"`runner submit --resume {record.run_id}` submits the rest"
                ) from None
            raise
        except KeyboardInterrupt:
            store.commit(record, lambda _: None)
            raise SubmitInterrupted(
                f"interrupted while submitting run {record.run_id} ({len(record.job_ids)} of {total} "
                f"shards recorded); `runner submit --resume {record.run_id}` submits the rest"
            ) from None
        record = store.commit(record, _with_job_id(position, response["jobId"]))
    return store.commit(record, _submitted)


def _with_job_id(position: int, job_id: str) -> Callable[[RunRecord], None]:
    """The change a shard's submission makes: its job id, applied to whatever the record now is."""

    def change(record: RunRecord) -> None:
        record.shards[position] = record.shards[position].with_job_id(job_id)

    return change


def _failed_with(error: str) -> Callable[[RunRecord], None]:
    def change(record: RunRecord) -> None:
        record.state, record.error = "submit-failed", error

    return change


def _submitted(record: RunRecord) -> None:
    record.state, record.error = "submitted", None


def prepare_run(
    batch: Any,
    options: SubmitOptions,
    outputs: StackOutputs,
    *,
    now: datetime,
    run_id: str | None = None,
    depends_on_job_ids: Sequence[str] = (),
    endpoint_url: str | None = None,
    emulator: str | None = None,
    container_command: list[str] | None = None,
    system_env: Mapping[str, str] | None = None,
) -> RunRecord:
    """Validate the request and plan its shards: the run's record, not yet saved or submitted."""
    validate(options, outputs)
    check_queue(batch, outputs)
    rules = definition_exit_rules(batch, outputs) if options.attempts is not None else None
    run_id = run_id or new_run_id(now)
    params = submit_params(
        options,
        outputs,
        run_id,
        depends_on_job_ids=depends_on_job_ids,
        evaluate_on_exit=rules,
        container_command=container_command,
        system_env=system_env,
    )
    total = options.array_size or 1
    return new_run(
        params,
        outputs,
        run_id=run_id,
        now=now,
        pieces=split_ranges([(0, total - 1)]),
        total_tasks=total,
        array=options.array_size is not None,
        endpoint_url=endpoint_url,
        emulator=emulator,
    )


def submit_run(
    batch: Any,
    store: RunStore,
    options: SubmitOptions,
    outputs: StackOutputs,
    *,
    now: datetime,
    depends_on_job_ids: Sequence[str] = (),
    endpoint_url: str | None = None,
    emulator: str | None = None,
    limiter: RateLimiter | None = None,
    launch: Launch | None = None,
    s3: Any = None,
) -> RunRecord:
    """Validate, record, submit each shard, record again. The record exists before SubmitJob.

    With ``launch`` (``--code``) each task runs the launcher from the run's package, which runs the
    command once in the unpacked code; the package is uploaded (unless the bucket has it) first.
    """
    container_command = system_env = None
    if launch is not None:
        command = shlex.split(options.command) if options.command else definition_command(batch, outputs)
        if not command:
            raise InvalidInputError("the job definition has no command to run with --code; pass --command")
        container_command, system_env = launch.command(), launch.environment(command)
    record = prepare_run(
        batch,
        options,
        outputs,
        now=now,
        depends_on_job_ids=depends_on_job_ids,
        endpoint_url=endpoint_url,
        emulator=emulator,
        container_command=container_command,
        system_env=system_env,
    )
    if launch is not None:
        record.code = launch.record(launch.upload(s3))
    store.save(record)
    return submit_shards(batch, store, record, limiter or RateLimiter())


def recover_shards(batch: Any, record: RunRecord) -> bool:
    """Fill in the ids of shards submitted without being recorded, found by their unique names.

    One paginated ListJobs on the queue for every job named after the run. Returns whether any
    shard was found.
    """
    missing = {shard.job_name: i for i, shard in enumerate(record.shards) if shard.job_id is None}
    if not missing:
        return False
    found = False
    paginator = batch.get_paginator("list_jobs")
    with aws_errors():
        pages = paginator.paginate(
            jobQueue=record.request["jobQueue"],
            filters=[{"name": "JOB_NAME", "values": [f"{record.job_name}*"]}],
        )
        for page in pages:
            for job in page.get("jobSummaryList", []):
                position = missing.pop(job.get("jobName", ""), None)
                if position is not None:
                    record.shards[position] = record.shards[position].with_job_id(job["jobId"])
                    found = True
    if found and not record.missing_shards:
        record.state, record.error = "submitted", None
    return found


def resume_run(
    batch: Any, store: RunStore, record: RunRecord, limiter: RateLimiter | None = None
) -> RunRecord:
    """Submit only the shards of an interrupted or refused run that AWS does not have."""
    if not record.missing_shards:
        raise RunnerError(
            f"run {record.run_id} is complete: all {len(record.shards)} shard(s) were submitted; "
            f"watch it with `runner watch {record.run_id}`"
        )
    if recover_shards(batch, record):
        store.save(record)
    return submit_shards(batch, store, record, limiter or RateLimiter())
