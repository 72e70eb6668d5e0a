"""Why tasks are not running: one verdict with the fix, then the evidence.

Checked in order: the waiting tasks' status reasons, the queue, its compute environments, the
requested resources against what they can give, the run's place in the queue (when the API
offers a snapshot), and the jobs it depends on. Finding no problem is a verdict too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.aws.batch_jobs import describe_all, describe_many, list_children
from runner.aws.clients import aws_errors, client_errors

SAMPLE = 100  # waiting tasks looked at per shard: their reasons, not their number, matter
RECENT_MINUTES = 10
REASON_FIXES = {
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": (
        "capacity",
        "AWS has no capacity for the allowed instance types right now: wait, allow more "
        "instance types (compute.instanceTypes), or turn on compute.onDemandFallback",
    ),
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": (
        "max-resource",
        "the compute environment is at its maxVcpus: wait for running tasks, or raise compute.maxVcpus",
    ),
    "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS": (
        "service-role",
        "Batch's service role lacks permissions: check the AWSServiceRoleForBatch service-linked role in IAM",
    ),
}
RESOURCE_REQUIREMENT = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
WAITING = ("SUBMITTED", "PENDING", "RUNNABLE")


@dataclass(frozen=True)
class Verdict:
    cause: str
    line: str
    evidence: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"cause": self.cause, "verdict": self.line, "evidence": list(self.evidence)}


def _requirement(job: dict[str, Any], kind: str) -> int | None:
    for requirement in (job.get("container") or {}).get("resourceRequirements") or []:
        if requirement.get("type") == kind:
            return int(float(requirement["value"]))
    return None


def _queue_checks(
    batch: Any, queue_arn: str, evidence: list[str]
) -> tuple[Verdict | None, list[dict[str, Any]]]:
    with aws_errors():
        queues = batch.describe_job_queues(jobQueues=[queue_arn])["jobQueues"]
    if not queues:
        return Verdict(
            "queue-missing", f"the job queue {queue_arn} does not exist: run `pulumi up`", evidence
        ), []
    queue = queues[0]
    evidence.append(
        f"queue {queue['jobQueueName']}: {queue.get('state')}, {queue.get('status')}"
        + (f" ({queue['statusReason']})" if queue.get("statusReason") else "")
    )
    order = sorted(queue.get("computeEnvironmentOrder") or [], key=lambda o: o["order"])
    with aws_errors():
        environments = batch.describe_compute_environments(
            computeEnvironments=[o["computeEnvironment"] for o in order]
        )["computeEnvironments"]
    for env in environments:
        resources = env.get("computeResources") or {}
        evidence.append(
            f"compute environment {env['computeEnvironmentName']}: {env.get('state')}, {env.get('status')}, "
            f"{resources.get('desiredvCpus', 0)} of {resources.get('maxvCpus', '?')} vCPUs"
            + (f" ({env['statusReason']})" if env.get("statusReason") else "")
        )
    if queue.get("state") != "ENABLED":
        return Verdict(
            "queue-disabled",
            f"the job queue {queue['jobQueueName']} is DISABLED, so nothing is "
            "scheduled: enable it (`pulumi up` restores it)",
            evidence,
        ), environments
    if queue.get("status") == "INVALID":
        return Verdict(
            "queue-invalid",
            f"the job queue is INVALID ({queue.get('statusReason', '')}): fix the stack and run `pulumi up`",
            evidence,
        ), environments
    usable = [e for e in environments if e.get("state") == "ENABLED" and e.get("status") != "INVALID"]
    if not usable:
        bad = environments[0] if environments else {}
        what = "INVALID" if bad.get("status") == "INVALID" else "DISABLED"
        return Verdict(
            f"compute-{what.lower()}",
            f"every compute environment of the queue is {what}"
            + (f" ({bad['statusReason']})" if bad.get("statusReason") else "")
            + ": enable or fix it (`pulumi up` restores it)",
            evidence,
        ), environments
    return None, environments


@dataclass
class Case:
    """What the checks look at: the waiting tasks, one of them described, and the queue."""

    batch: Any
    queue_arn: str
    job_ids: Sequence[str]
    waiting: list[dict[str, Any]]
    reasons: set[str]  # status reasons of the RUNNABLE tasks looked at
    job: dict[str, Any]  # one waiting task, described
    recent: int  # tasks started in the last RECENT_MINUTES
    evidence: list[str]
    environments: list[dict[str, Any]] = field(default_factory=list)


def _waiting_and_recent(
    batch: Any, parents: list[dict[str, Any]], cutoff_ms: float
) -> tuple[list[dict[str, Any]], int]:
    """A sample of the waiting tasks of each job, and how many tasks started since the cutoff."""
    waiting: list[dict[str, Any]] = []
    recent = 0
    for parent in parents:
        if not (parent.get("arrayProperties") or {}).get("size"):
            if parent.get("status") in WAITING:
                waiting.append(parent)
            elif (parent.get("startedAt") or 0) >= cutoff_ms:
                recent += 1
            continue
        summary = parent["arrayProperties"].get("statusSummary") or {}
        for status in ("RUNNABLE", "PENDING"):
            if summary.get(status):
                children = list_children(batch, parent["jobId"], status)
                waiting.extend(child for _, child in zip(range(SAMPLE), children, strict=False))
        if summary.get("RUNNING"):
            running = zip(range(10 * SAMPLE), list_children(batch, parent["jobId"], "RUNNING"), strict=False)
            recent += sum(1 for _, child in running if (child.get("startedAt") or 0) >= cutoff_ms)
    return waiting, recent


def status_reason(reasons: set[str], evidence: list[str]) -> Verdict | None:
    """What Batch itself says of the waiting tasks, when it names a known cause."""
    for reason in sorted(reasons):
        code = reason.split(" ", 1)[0]
        if code in REASON_FIXES:
            cause, fix = REASON_FIXES[code]
            return Verdict(cause, fix, [f"status reason: {reason}", *evidence])
    return None


def queue_and_compute(case: Case) -> Verdict | None:
    """The queue and its compute environments: disabled, invalid or missing."""
    verdict, case.environments = _queue_checks(case.batch, case.queue_arn, case.evidence)
    return verdict


def resources(case: Case) -> Verdict | None:
    """What the tasks ask for against what the compute environments can give."""
    vcpus, memory = _requirement(case.job, "VCPU"), _requirement(case.job, "MEMORY")
    limits = ((e.get("computeResources") or {}).get("maxvCpus", 0) for e in case.environments)
    largest = max(limits, default=0)
    too_big = bool(vcpus and largest and vcpus > largest)
    if not too_big and not any(r.startswith(RESOURCE_REQUIREMENT) for r in case.reasons):
        return None
    return Verdict(
        "resource-requirement",
        f"each task asks for {vcpus or '?'} vCPU and {memory or '?'} MiB, more than the compute "
        f"environments can give (at most {largest} vCPUs): resubmit with smaller --vcpus/--memory "
        "(`runner retry RUN --vcpus N --memory MIB`) or raise compute.maxVcpus",
        case.evidence,
    )


def queue_position(case: Case) -> Verdict | None:
    """Where the run stands in the queue, as evidence, when the API offers a snapshot."""
    try:
        snapshot = case.batch.get_job_queue_snapshot(jobQueue=case.queue_arn).get("frontOfQueue") or {}
    except (*client_errors(), AttributeError):
        return None  # not every endpoint (or emulator) offers GetJobQueueSnapshot
    front = [entry.get("jobArn", "").rsplit("/", 1)[-1] for entry in snapshot.get("jobs") or []]
    ours = {job["jobId"] for job in case.waiting} | set(case.job_ids)
    position = next((i for i, job_id in enumerate(front) if job_id in ours), None)
    if not front:
        return None
    if position is None:
        case.evidence.append(f"not among the first {len(front)} in the queue")
    else:
        case.evidence.append(
            "front of the queue" if position == 0 else f"behind {position} job(s) in the queue"
        )
    return None


def dependencies(case: Case) -> Verdict | None:
    """The jobs the tasks depend on: failed (so will they) or still running (so they wait)."""
    depends_on = [d["jobId"] for d in case.job.get("dependsOn") or []]
    if not depends_on:
        return None
    states = describe_many(case.batch, depends_on)
    failed = [job_id for job_id, dep in states.items() if dep.get("status") == "FAILED"]
    unfinished = [job_id for job_id, dep in states.items() if dep.get("status") != "SUCCEEDED"]
    if failed:
        return Verdict(
            "dependency-failed",
            f"job {failed[0]}, which these tasks depend on, FAILED: they will fail too; fix it and submit again",
            case.evidence,
        )
    if unfinished:
        return Verdict(
            "dependency-running",
            f"waiting for {len(unfinished)} job(s) they depend on ({', '.join(unfinished[:3])}): nothing to fix",
            case.evidence,
        )
    return None


def no_problem(case: Case) -> Verdict:
    """Nothing wrong found: capacity is scaling up, or Batch has not started on it yet."""
    if case.recent:
        return Verdict(
            "scaling",
            f"no problem found: capacity is scaling up; {case.recent} task(s) started in the "
            f"last {RECENT_MINUTES} minutes",
            case.evidence,
        )
    return Verdict(
        "starting",
        "no problem found yet: Batch can take a few minutes to start instances for "
        "new work; ask again in a few minutes",
        case.evidence,
    )


# In order: each returns a verdict or adds evidence for the next.
CHECKS: tuple[Callable[[Case], Verdict | None], ...] = (
    queue_and_compute,
    resources,
    queue_position,
    dependencies,
)


def diagnose(
    batch: Any,
    job_ids: Sequence[str],
    queue_arn: str,
    *,
    now: Callable[[], float] = time.time,
) -> Verdict:
    """Why the tasks of these jobs (a run's shards) are not running."""
    parents = describe_all(batch, list(job_ids))
    waiting, recent = _waiting_and_recent(batch, parents, (now() - RECENT_MINUTES * 60) * 1000)
    if not waiting:
        return Verdict(
            "none-waiting", "no task is waiting: every task has started; `runner watch` shows them", []
        )
    runnable = [job for job in waiting if job.get("status") == "RUNNABLE"]
    evidence = [f"{len(waiting)} task(s) looked at are waiting ({len(runnable)} RUNNABLE)"]
    reasons = {str(job.get("statusReason") or "") for job in runnable}
    verdict = status_reason(reasons, evidence)
    if verdict:
        return verdict
    sample = describe_many(batch, [job["jobId"] for job in runnable[:1]] or [waiting[0]["jobId"]])
    job = next(iter(sample.values()), parents[0])
    case = Case(batch, queue_arn, job_ids, waiting, reasons, job, recent, evidence)
    for check in CHECKS:
        verdict = check(case)
        if verdict:
            return verdict
    return no_problem(case)


def diagnose_queue(batch: Any, queue_arn: str) -> Verdict:
    """The queue and its compute environments alone (``runner why --queue``)."""
    evidence: list[str] = []
    verdict, _ = _queue_checks(batch, queue_arn, evidence)
    return verdict or Verdict(
        "queue-ok", "the queue and its compute environments are ENABLED and VALID", evidence
    )
