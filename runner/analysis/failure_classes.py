"""Why a task failed, as a class the user can act on: spot, oom, timeout, infra, config, ...

Classified from what Batch reports of the task's last attempt (status reason, container reason,
exit code). Each class has a hint: what to do about it with ``runner``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# In the order a summary lists them: what the user can retry first, their own bugs last.
CLASSES = ("spot", "oom", "timeout", "infra", "config", "cancelled", "dependency", "app", "unknown")
# Classes of an attempt stopped from outside while it ran (a sweep's running row was killed),
# with how a killed row says it.
KILLED_AS = {
    "spot": "Spot capacity reclaimed",
    "oom": "out of memory",
    "timeout": "timed out",
    "cancelled": "cancelled or terminated",
}
KILL_CLASSES = tuple(KILLED_AS)

HOST_RECLAIMED = "Host EC2"
FARGATE_SPOT = "Your Spot Task was interrupted"
TIMEOUT = "Job attempt duration exceeded timeout"
DEPENDENCY = "Dependent Job failed"
# Set by `runner cancel` so a cancellation is recognised whatever reason the user gave.
CANCEL_MARK = "Cancelled by runner: "
INFRA_ERRORS = (
    "CannotPullContainerError",
    "CannotStartContainerError",
    "CannotInspectContainerError",
    "DockerTimeoutError",
    "ResourceInitializationError",
    "Task failed to start",
    "CannotCreateContainerError",
    "CannotStopContainerError",
)
# A pull that can never succeed: the image reference or its permissions are wrong.
CONFIG_PULL_MARKERS = (
    "not found",
    "manifest unknown",
    "access denied",
    "accessdenied",
    "unauthorized",
    "repository does not exist",
    "no such image",
    "invalid reference format",
)


def is_spot_interruption(status_reason: str | None) -> bool:
    reason = status_reason or ""
    return reason.startswith(HOST_RECLAIMED) or FARGATE_SPOT in reason


def _last_attempt(job: Mapping[str, Any]) -> Mapping[str, Any]:
    attempts = job.get("attempts") or []
    return attempts[-1] if attempts else {}


def classify(job: Mapping[str, Any]) -> str:
    """The failure class of a FAILED task from its DescribeJobs (or ListJobs) entry."""
    attempt = _last_attempt(job)
    container = {**(attempt.get("container") or {}), **(job.get("container") or {})}
    status_reason = str(job.get("statusReason") or attempt.get("statusReason") or "")
    attempt_reason = str(attempt.get("statusReason") or "")
    container_reason = str(container.get("reason") or "")
    exit_code = container.get("exitCode")
    reasons = (status_reason, attempt_reason, container_reason)

    if status_reason.startswith(DEPENDENCY):
        return "dependency"
    if any(r.startswith(CANCEL_MARK) for r in reasons):
        return "cancelled"
    if any(is_spot_interruption(r) for r in reasons):
        return "spot"
    if any(r.startswith(TIMEOUT) for r in reasons):
        return "timeout"
    if container_reason.startswith("OutOfMemoryError"):
        return "oom"
    pulls = [r.lower() for r in reasons if r.startswith("CannotPullContainerError")]
    if any(marker in pull for pull in pulls for marker in CONFIG_PULL_MARKERS):
        return "config"  # the image reference or its permissions are wrong: no retry will help
    if any(reason.startswith(error) for reason in reasons for error in INFRA_ERRORS):
        return "infra"
    if status_reason.startswith("MISCONFIGURATION:"):
        return "config"  # cancelled in RUNNABLE by the queue: it could never be placed
    if status_reason.startswith("CAPACITY:"):
        return "infra"
    if isinstance(exit_code, int) and exit_code != 0:
        return "app"
    if not job.get("attempts"):
        return "cancelled"  # never started and no reason it could not: cancelled or terminated
    return "unknown"


def hint(
    failure_class: str, run: str, *, first_index: int | None = None, memory_mib: int | None = None
) -> str:
    """One line saying what to do about failures of ``failure_class`` in run ``run``."""
    retry = f"runner retry {run} --class {failure_class}"
    logs = f"runner logs {run} --index {first_index if first_index is not None else 'I'}"
    more_memory = f" --memory {memory_mib * 2}" if memory_mib else " --memory MIB"
    hints = {
        "spot": f"Spot capacity was reclaimed, not your bug: `{retry}` (or add --stack prod for on-demand)",
        "oom": f"out of memory: `{retry}{more_memory}`",
        "timeout": f"ran past the attempt timeout: `{retry} --timeout SECONDS`",
        "infra": f"the container could not start (a transient AWS problem): `{retry}`",
        "config": "the image cannot be pulled or the job cannot be placed: fix the stack's job settings, "
        f"then `{retry}`",
        "cancelled": f"cancelled or terminated: `{retry}` runs them after all",
        "dependency": "a job this run waited for failed: fix and retry that run first",
        "app": f"your program exited non-zero: `{logs}`",
        "unknown": f"no reason reported: `{logs}`",
    }
    return hints[failure_class]
