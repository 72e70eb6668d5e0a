"""AWS Batch's job statuses, and where a job or a run of several stands from DescribeJobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
TERMINAL = frozenset({"SUCCEEDED", "FAILED"})


@dataclass(frozen=True)
class Progress:
    """Where a job stands: for an array, its children's counts from the parent's statusSummary."""

    job_id: str
    job_name: str
    status: str
    size: int
    counts: dict[str, int]
    is_array: bool

    @property
    def finished(self) -> int:
        return self.counts.get("SUCCEEDED", 0) + self.counts.get("FAILED", 0)

    @property
    def failed(self) -> int:
        return self.counts.get("FAILED", 0)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL or self.finished >= self.size

    def to_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "status": self.status,
            "size": self.size,
            "counts": dict(self.counts),
            "done": self.done,
        }


def aggregate_status(statuses: Sequence[str]) -> str:
    """One status for a run of several jobs: terminal when all are, else the least advanced."""
    if all(status in TERMINAL for status in statuses):
        return "FAILED" if "FAILED" in statuses else "SUCCEEDED"
    pending = [status for status in statuses if status not in TERMINAL]
    return min(pending, key=STATUSES.index)


def progress_of(job: dict[str, Any]) -> Progress:
    """Counts per status from one DescribeJobs entry."""
    array = job.get("arrayProperties") or {}
    status = job.get("status", "SUBMITTED")
    if "size" in array:
        summary = array.get("statusSummary") or {}
        counts = {name: int(summary.get(name, 0)) for name in STATUSES}
        return Progress(job["jobId"], job.get("jobName", ""), status, int(array["size"]), counts, True)
    counts = {name: int(name == status) for name in STATUSES}
    return Progress(job["jobId"], job.get("jobName", ""), status, 1, counts, False)


def combine(progresses: Sequence[Progress]) -> Progress:
    """The progress of a run of several shards: counts and sizes added up."""
    if len(progresses) == 1:
        return progresses[0]
    counts = {name: sum(p.counts.get(name, 0) for p in progresses) for name in STATUSES}
    first = progresses[0]
    return Progress(
        first.job_id,
        first.job_name,
        aggregate_status([p.status for p in progresses]),
        sum(p.size for p in progresses),
        counts,
        True,
    )
