"""Stop a run: cancel what is still queued and terminate what is running, shard by shard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner.analysis.failure_classes import CANCEL_MARK
from runner.aws.batch_jobs import describe_all
from runner.aws.clients import aws_errors
from runner.aws.job_status import Progress, combine, progress_of

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


def cancel_jobs(batch: Any, job_ids: Sequence[str], reason: str) -> CancelResult:
    """CancelJob for queued work and TerminateJob for running work, on each shard's parent.

    Batch applies both to an array's children: one DescribeJobs per 100 shards, then at most
    two calls per shard that still has work. The reason carries a mark, so the summary can tell
    a cancellation from a failure whatever reason was given.
    """
    reason = reason if reason.startswith(CANCEL_MARK) else f"{CANCEL_MARK}{reason}"
    progresses = [progress_of(job) for job in describe_all(batch, job_ids)]
    cancelled = terminated = 0
    with aws_errors():
        for progress in progresses:
            queued = sum(progress.counts.get(s, 0) for s in QUEUED)
            active = sum(progress.counts.get(s, 0) for s in ACTIVE)
            if queued:
                batch.cancel_job(jobId=progress.job_id, reason=reason)
            if active:
                batch.terminate_job(jobId=progress.job_id, reason=reason)
            cancelled, terminated = cancelled + queued, terminated + active
    return CancelResult(combine(progresses), cancelled=cancelled, terminated=terminated)
