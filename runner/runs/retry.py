"""Retry only what failed: exactly the chosen logical indices, as a new run linked to its parent.

Each contiguous range of indices becomes one array job (a plain job for a single index) with
``RUNNER_INDEX_OFFSET`` set, so every task computes the same logical index as the first time.
The parent's command, environment, parameters, tags and overrides carry over unless overridden.
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runner.analysis.failure_classes import CLASSES
from runner.analysis.summary import Summary
from runner.aws.stack_outputs import StackOutputs
from runner.errors import InvalidInputError, RunnerError
from runner.indices import contiguous_ranges, format_ranges, parse_ranges
from runner.runs.code_package import short
from runner.runs.launch import CODE_DIGEST_ENV, COMMAND_ENV, LAUNCH_ENV, Launch
from runner.runs.shards import RateLimiter, split_ranges
from runner.runs.store import RunRecord, RunStore, new_run_id
from runner.runs.submit import (
    PARENT_RUN_ID_ENV,
    RUN_ID_ENV,
    RUN_ID_TAG,
    STACK_TAG,
    SubmitOptions,
    check_queue,
    definition_command,
    definition_exit_rules,
    job_name,
    new_run,
    submit_shards,
    validate,
)
from runner.runs.sweep import SKIP_EXISTING_ENV


@dataclass(frozen=True)
class RetryOptions:
    """Which indices to retry and what to change for them; None keeps the parent's."""

    classes: tuple[str, ...] = ()
    indices: str | None = None
    memory_mib: int | None = None
    vcpus: int | None = None
    timeout_seconds: int | None = None
    attempts: int | None = None
    # A sweep's rows that already have outputs (from any run of the lineage) are not run again.
    skip_existing: bool = False
    # The fix: a new command (one shell-quoted string) and variables to set; new code is a Launch.
    command: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def parse_classes(text: str | None) -> tuple[str, ...]:
    """``spot,oom`` to classes, each checked against the known ones."""
    classes = tuple(filter(None, (c.strip().lower() for c in (text or "").split(","))))
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise InvalidInputError(
            f"--class {','.join(unknown)} is not a failure class; use {', '.join(CLASSES)}"
        )
    return classes


def select_indices(summary: Summary, total: int, options: RetryOptions, run_id: str) -> list[int]:
    """The logical indices to run again: every failed one, or those the options name."""
    failed = {f.index or 0: f.failure_class for f in summary.failures}
    if not summary.complete and options.indices is None:
        raise RunnerError(
            f"run {run_id} is still going ({summary.size - summary.counts['SUCCEEDED'] - summary.failed} "
            f"tasks unfinished); wait for it (`runner watch {run_id}`) or name --indices"
        )
    chosen = parse_ranges(options.indices, total) if options.indices else sorted(failed)
    if options.classes:
        chosen = [i for i in chosen if failed.get(i) in options.classes]
    if chosen:
        return chosen
    if not failed:
        raise RunnerError(f"run {run_id} has no failed tasks to retry")
    by_class = ", ".join(f"{name} {len(ix)}" for name, ix in summary.failure_classes.items())
    raise RunnerError(
        f"none of run {run_id}'s failed tasks match --class {','.join(options.classes)}"
        + (f" --indices {options.indices}" if options.indices else "")
        + f" (failed: {by_class})"
    )


def _env_value(environment: list[dict[str, str]], name: str) -> str | None:
    return next((e["value"] for e in environment if e["name"] == name), None)


def _set_env(environment: list[dict[str, str]], values: dict[str, str]) -> list[dict[str, str]]:
    """``environment`` with ``values`` set (replacing what it had of them)."""
    kept = [e for e in environment if e["name"] not in values]
    return kept + [{"name": name, "value": value} for name, value in sorted(values.items())]


def apply_fix(
    params: dict[str, Any],
    options: RetryOptions,
    launch: Launch | None,
    definition_command: Callable[[], list[str]],
) -> dict[str, Any]:
    """Put the new code, command and variables into ``params`` (in place); returns what changed,
    before and after: ``{"code": [...], "command": [...], "env": {NAME: [...]}}`` (only what did).

    A run that goes through the launcher keeps its command in RUNNER_COMMAND; a plain run in the
    container's command until new code makes it a launched one.
    """
    overrides = params.setdefault("containerOverrides", {})
    environment: list[dict[str, str]] = overrides.get("environment", [])
    launched = _env_value(environment, COMMAND_ENV) is not None
    before_command = (
        json.loads(_env_value(environment, COMMAND_ENV) or "[]")
        if launched
        else list(overrides.get("command") or definition_command())
    )
    after_command = shlex.split(options.command) if options.command is not None else before_command
    changes: dict[str, Any] = {}
    if after_command != before_command:
        changes["command"] = [shlex.join(before_command), shlex.join(after_command)]
    if launch is not None:
        before_code = _env_value(environment, CODE_DIGEST_ENV)
        environment = [e for e in environment if e["name"] not in LAUNCH_ENV]
        environment = _set_env(environment, launch.environment(after_command))
        overrides["command"] = launch.command()
        if launch.package.code_digest != before_code:
            changes["code"] = [before_code, launch.package.code_digest]
    elif launched:
        environment = _set_env(environment, {COMMAND_ENV: json.dumps(after_command)})
    elif options.command is not None:
        overrides["command"] = after_command
    env_changes = {
        name: [_env_value(environment, name), value]
        for name, value in sorted(options.env.items())
        if _env_value(environment, name) != value
    }
    if env_changes:
        changes["env"] = env_changes
    overrides["environment"] = _set_env(environment, options.env)
    return changes


def latest_attempt(store: RunStore, record: RunRecord) -> RunRecord:
    """The newest run of ``record``'s lineage (itself, or its latest retry): what a retry starts
    from, so a fix a retry shipped (``--code``, ``--command``, ``--env``) is never silently undone."""
    lineage = store.lineage(record)
    return lineage[-1] if lineage else record


def retry_request(
    parent: RunRecord,
    outputs: StackOutputs,
    run_id: str,
    options: RetryOptions,
    evaluate_on_exit: list[dict[str, Any]] | None,
    latest: RunRecord | None = None,
) -> dict[str, Any]:
    """The parent's request for a new run on ``outputs``' stack, with the options applied: what
    runs (command, code, variables, resources) as the lineage's ``latest`` run had it. Pure."""
    params = copy.deepcopy(parent.request)
    if latest is not None and latest is not parent:
        params["containerOverrides"] = copy.deepcopy(latest.request.get("containerOverrides") or {})
    params.pop("arrayProperties", None)
    params.pop("dependsOn", None)  # what the parent waited for has finished
    suffix = f"-{parent.run_id}"
    base = parent.job_name[: -len(suffix)] if parent.job_name.endswith(suffix) else parent.job_name
    params.update(
        jobName=job_name(base, outputs.stack, run_id),
        jobQueue=outputs.job_queue_arn,
        jobDefinition=outputs.job_definition_arn,
    )
    overrides = params.setdefault("containerOverrides", {})
    root = next(
        (e["value"] for e in overrides.get("environment", []) if e["name"] == PARENT_RUN_ID_ENV),
        parent.run_id,
    )
    environment = [
        e for e in overrides.get("environment", []) if e["name"] not in (RUN_ID_ENV, PARENT_RUN_ID_ENV)
    ]
    environment = [e for e in environment if e["name"] != SKIP_EXISTING_ENV]
    skip = [{"name": SKIP_EXISTING_ENV, "value": "1"}] if options.skip_existing else []
    overrides["environment"] = [
        {"name": RUN_ID_ENV, "value": run_id},
        {"name": PARENT_RUN_ID_ENV, "value": root},
        *skip,
        *environment,
    ]
    requirements = {r["type"]: r["value"] for r in overrides.get("resourceRequirements", [])}
    if options.vcpus is not None:
        requirements["VCPU"] = str(options.vcpus)
    if options.memory_mib is not None:
        requirements["MEMORY"] = str(options.memory_mib)
    if requirements:
        overrides["resourceRequirements"] = [{"type": k, "value": v} for k, v in sorted(requirements.items())]
    params["tags"] = {**params.get("tags", {}), RUN_ID_TAG: run_id, STACK_TAG: outputs.stack}
    if options.timeout_seconds is not None:
        params["timeout"] = {"attemptDurationSeconds": options.timeout_seconds}
    if options.attempts is not None:
        strategy: dict[str, Any] = {"attempts": options.attempts}
        if evaluate_on_exit:
            strategy["evaluateOnExit"] = evaluate_on_exit
        params["retryStrategy"] = strategy
    return params


def retry_run(
    batch: Any,
    store: RunStore,
    parent: RunRecord,
    summary: Summary,
    options: RetryOptions,
    outputs: StackOutputs,
    *,
    now: datetime,
    endpoint_url: str | None,
    emulator: str | None = None,
    limiter: RateLimiter | None = None,
    launch: Launch | None = None,
    s3: Any = None,
    latest: RunRecord | None = None,
) -> RunRecord:
    """Submit the chosen indices of ``parent`` as a new run on ``outputs``' stack, with the fix
    (new code, command, variables) if any, and what it changed kept in the new record. What runs
    is what the lineage's ``latest`` run ran (``latest_attempt``), the fix applied to it.

    The new record (and the parent's link to it) is saved before the first SubmitJob; new code is
    uploaded (unless the bucket has it) after every check and before that.
    """
    asked = SubmitOptions(
        vcpus=options.vcpus,
        memory_mib=options.memory_mib,
        timeout_seconds=options.timeout_seconds,
        attempts=options.attempts,
        command=options.command,
        env=options.env,
    )
    validate(asked, outputs)
    if options.skip_existing and parent.sweep is None:
        raise InvalidInputError(
            f"--skip-existing applies to runs submitted with --tasks; run {parent.run_id} was not"
        )
    indices = select_indices(summary, parent.total_tasks, options, parent.run_id)
    check_queue(batch, outputs)
    rules = definition_exit_rules(batch, outputs) if options.attempts is not None else None
    run_id = new_run_id(now)
    latest = latest or parent
    params = retry_request(parent, outputs, run_id, options, rules, latest)
    fixes = options.command is not None or options.env or launch is not None
    # The definition's command is asked for only when the run has none of its own to change.
    changes = apply_fix(params, options, launch, lambda: definition_command(batch, outputs)) if fixes else {}
    record = new_run(
        params,
        outputs,
        run_id=run_id,
        now=now,
        pieces=split_ranges(contiguous_ranges(indices)),
        total_tasks=parent.total_tasks,
        array=parent.array,
        endpoint_url=endpoint_url,
        emulator=emulator,
        parent_run_id=parent.run_id,
    )
    record.changes = changes or None
    if launch is not None:
        record.code = launch.record(launch.upload(s3))
    elif latest.code is not None:
        record.code = {key: value for key, value in latest.code.items() if key != "uploaded"}
    seen = list(parent.retry_run_ids)

    def claim(current: RunRecord) -> None:
        """Link the retry to its parent, unless someone retried the parent since it was read:
        then this retry would run the same tasks again, so it stops here."""
        added = [run for run in current.retry_run_ids if run not in seen]
        if added:
            raise RunnerError(
                f"run {parent.run_id} was retried meanwhile (run {', '.join(added)}); nothing was "
                f"submitted: see `runner summary {parent.run_id}` and retry again if tasks still failed"
            )
        current.retry_run_ids.append(run_id)

    store.update(parent.run_id, claim)
    store.save(record)
    return submit_shards(batch, store, record, limiter or RateLimiter())


def describe_selection(indices: Sequence[int]) -> str:
    return f"{len(indices)} task{'s' if len(indices) != 1 else ''} ({format_ranges(indices, limit=8)})"


def describe_changes(changes: dict[str, Any] | None) -> list[str]:
    """A retry's fix, a line each: ``code 3f2a9c1e0b7d -> 9be41d07aa21``, ``command ... -> ...``."""
    if not changes:
        return []
    lines = []
    if "code" in changes:
        before, after = changes["code"]
        lines.append(f"code {short(before)} -> {short(after)}")
    if "command" in changes:
        before, after = changes["command"]
        lines.append(f"command {before} -> {after}")
    for name, (before, after) in (changes.get("env") or {}).items():
        lines.append(f"{name} {'(unset)' if before is None else before} -> {after}")
    return lines
