"""Stop a run: cancel what is still queued and terminate what is running."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.aws.clients import aws_errors
from runner.runs.watch import Progress, poll

QUEUED = ("SUBMITTED", "PENDING", "RUNNABLE")
ACTIVE = ("STARTING", "RUNNING")


@dataclass(frozen=True)
class CancelResult:
    before: Progress
    cancelled: int
    terminated: int

    @property
    def nothing_to_do(self) -> bool:
        return self.cancelled == 0 and self.terminated == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "jobId": self.before.job_id,
            "cancelled": self.cancelled,
            "terminated": self.terminated,
            "countsBefore": dict(self.before.counts),
        }


def cancel_job(batch: Any, job_id: str, reason: str) -> CancelResult:
    """CancelJob for queued work and TerminateJob for running work, both on the parent.

    Batch applies both to an array's children, so this is at most three calls.
    """
    before = poll(batch, job_id)
    queued = sum(before.counts.get(s, 0) for s in QUEUED)
    active = sum(before.counts.get(s, 0) for s in ACTIVE)
    with aws_errors():
        if queued:
            batch.cancel_job(jobId=job_id, reason=reason)
        if active:
            batch.terminate_job(jobId=job_id, reason=reason)
    return CancelResult(before, cancelled=queued, terminated=active)
