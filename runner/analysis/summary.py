"""How did a run go? Counts, failures with reasons, runtimes, vCPU-hours and an estimated cost.

Built from ListJobs pages (1,000 children each) per terminal status, plus DescribeJobs in
batches of 100 for failed children only: never a call per child.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from runner.analysis.cost import CostEstimate, Prices, estimate
from runner.analysis.failure_classes import CLASSES, classify, is_spot_interruption
from runner.analysis.timeline import TaskTimes
from runner.aws.batch_jobs import describe_all, describe_many, list_children
from runner.aws.job_status import STATUSES, aggregate_status, progress_of
from runner.indices import format_ranges


@dataclass(frozen=True)
class Failure:
    """A failed task, by its logical index (``RUNNER_INDEX_OFFSET`` + array index)."""

    index: int | None
    job_id: str
    status_reason: str | None
    exit_code: int | None
    reason: str | None
    attempts: int = 0
    log_stream_name: str | None = None
    failure_class: str = "unknown"


@dataclass(frozen=True)
class SpotInterruptions:
    """Attempts ended by a Spot reclaim, and the vCPU-hours they consumed (billed, then lost)."""

    attempts: int
    vcpu_hours: float
    basis: str

    def to_json(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "vcpuHours": self.vcpu_hours, "basis": self.basis}


FAILED_TASKS_BASIS = "attempts of failed tasks"
EVERY_ATTEMPT_BASIS = "every attempt of every task"


@dataclass(frozen=True)
class RuntimeStats:
    min: float
    p50: float
    p90: float
    max: float


@dataclass(frozen=True)
class Summary:
    job_id: str
    job_name: str
    status: str
    size: int
    counts: dict[str, int]
    failures: list[Failure] = field(default_factory=list)
    runtime: RuntimeStats | None = None
    vcpus: int = 1
    vcpu_hours: float = 0.0
    cost: CostEstimate | None = None
    run_id: str | None = None
    job_ids: list[str] = field(default_factory=list)
    spot: SpotInterruptions | None = None
    folded_run_ids: list[str] = field(default_factory=list)
    # When each attempt ran (not part of the summary's JSON; cached beside the run record).
    times: TaskTimes | None = field(default=None, compare=False, repr=False)

    @property
    def basis(self) -> str:
        """Which attempts were described: those of failed tasks, or every attempt of every task."""
        return self.spot.basis if self.spot else FAILED_TASKS_BASIS

    @property
    def failure_classes(self) -> dict[str, list[int]]:
        """Logical indices of failed tasks per class, in the order classes are listed."""
        by_class: dict[str, list[int]] = {}
        for failure in self.failures:
            by_class.setdefault(failure.failure_class, []).append(failure.index or 0)
        return {name: sorted(by_class[name]) for name in CLASSES if name in by_class}

    @property
    def complete(self) -> bool:
        finished = self.counts.get("SUCCEEDED", 0) + self.counts.get("FAILED", 0)
        return finished >= self.size

    @property
    def failed(self) -> int:
        return self.counts.get("FAILED", 0)

    def to_json(self) -> dict[str, Any]:
        """The documented ``runner summary --json`` shape."""
        return {
            "runId": self.run_id,
            "jobId": self.job_id,
            "jobName": self.job_name,
            "status": self.status,
            "complete": self.complete,
            "size": self.size,
            "counts": dict(self.counts),
            "failures": [
                {
                    "index": f.index,
                    "jobId": f.job_id,
                    "statusReason": f.status_reason,
                    "exitCode": f.exit_code,
                    "reason": f.reason,
                    "attempts": f.attempts,
                    "logStreamName": f.log_stream_name,
                    "class": f.failure_class,
                }
                for f in self.failures
            ],
            "failureClasses": {
                name: {"count": len(indices), "indices": format_ranges(indices)}
                for name, indices in self.failure_classes.items()
            },
            "spotInterruptions": self.spot.to_json() if self.spot else None,
            "jobIds": list(self.job_ids),
            "foldedRunIds": list(self.folded_run_ids),
            "runtimeSeconds": asdict(self.runtime) if self.runtime else None,
            "vcpus": self.vcpus,
            "vcpuHours": self.vcpu_hours,
            "cost": self.cost.to_json() if self.cost else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        """Rebuild a summary cached in a run record."""
        runtime = data.get("runtimeSeconds")
        cost = data.get("cost")
        spot = data.get("spotInterruptions")
        return cls(
            job_id=data["jobId"],
            job_name=data.get("jobName", ""),
            status=data["status"],
            size=data["size"],
            counts=dict(data["counts"]),
            failures=[
                Failure(
                    index=f["index"],
                    job_id=f["jobId"],
                    status_reason=f.get("statusReason"),
                    exit_code=f.get("exitCode"),
                    reason=f.get("reason"),
                    attempts=f.get("attempts", 0),
                    log_stream_name=f.get("logStreamName"),
                    failure_class=f.get("class", "unknown"),
                )
                for f in data["failures"]
            ],
            job_ids=list(data.get("jobIds") or [data["jobId"]]),
            spot=SpotInterruptions(spot["attempts"], spot["vcpuHours"], spot["basis"]) if spot else None,
            folded_run_ids=list(data.get("foldedRunIds") or []),
            runtime=RuntimeStats(**runtime) if runtime else None,
            vcpus=data.get("vcpus", 1),
            vcpu_hours=data.get("vcpuHours", 0.0),
            cost=CostEstimate.from_json(cost) if cost else None,
            run_id=data.get("runId"),
        )


def counts_line(summary: Summary) -> str:
    """``SUCCEEDED 97, FAILED 3, RUNNING 2``: the statuses that have tasks."""
    return ", ".join(f"{name} {n}" for name, n in summary.counts.items() if n) or "no tasks"


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def runtime_stats(seconds: Sequence[float]) -> RuntimeStats | None:
    """Min, median, p90 and max of task runtimes, or None when no task has finished."""
    return sorted_runtime_stats(sorted(seconds))


def sorted_runtime_stats(ordered: Sequence[float]) -> RuntimeStats | None:
    """``runtime_stats`` of runtimes already in order (a sorted array of a million costs no sort)."""
    if len(ordered) == 0:
        return None
    return RuntimeStats(
        min=float(ordered[0]),
        p50=float(percentile(ordered, 0.5)),
        p90=float(percentile(ordered, 0.9)),
        max=float(ordered[-1]),
    )


def job_vcpus(job: dict[str, Any], default: int) -> int:
    """vCPUs the job asked for (resourceRequirements, else the legacy field, else default)."""
    container = job.get("container") or {}
    for requirement in container.get("resourceRequirements") or []:
        if requirement.get("type") == "VCPU":
            return max(1, math.ceil(float(requirement["value"])))
    if container.get("vcpus"):
        return int(container["vcpus"])
    return default


def _runtime_seconds(job: dict[str, Any]) -> float | None:
    started, stopped = job.get("startedAt"), job.get("stoppedAt")
    if started is None or stopped is None:
        return None
    return max(0.0, (stopped - started) / 1000)


def _array_index(job: dict[str, Any]) -> int | None:
    """The child's index: arrayProperties.index, else the ``<parentId>:<index>`` id suffix."""
    index = (job.get("arrayProperties") or {}).get("index")
    if index is None and ":" in job["jobId"]:
        suffix = job["jobId"].rsplit(":", 1)[1]
        index = int(suffix) if suffix.isdigit() else None
    return index


def _failure_from(listed: dict[str, Any], offset: int, described: dict[str, Any] | None = None) -> Failure:
    """A failure from a ListJobs summary, completed by the child's DescribeJobs entry if any."""
    job = {**listed, **(described or {})}
    container = {**(listed.get("container") or {}), **((described or {}).get("container") or {})}
    attempts = job.get("attempts") or []
    latest = attempts[-1].get("container", {}) if attempts else {}
    return Failure(
        index=offset + (_array_index(job) or 0),
        job_id=job["jobId"],
        status_reason=job.get("statusReason"),
        exit_code=container.get("exitCode", latest.get("exitCode")),
        reason=container.get("reason") or latest.get("reason"),
        attempts=len(attempts),
        log_stream_name=container.get("logStreamName") or latest.get("logStreamName"),
        failure_class=classify({**job, "container": container}),
    )


def spot_interruptions(jobs: Iterable[dict[str, Any]], vcpus: int, basis: str) -> SpotInterruptions:
    """Attempts of described tasks that a Spot reclaim ended, and their vCPU-hours."""
    count, seconds = 0, 0.0
    for job in jobs:
        for attempt in job.get("attempts") or []:
            if is_spot_interruption(attempt.get("statusReason")):
                count += 1
                seconds += _runtime_seconds(attempt) or 0.0
    return SpotInterruptions(count, seconds * vcpus / 3600, basis)


def summarize(
    batch: Any,
    shards: Sequence[tuple[str, int]],
    prices: Prices,
    *,
    default_vcpus: int = 1,
    run_id: str | None = None,
    all_attempts: bool = False,
) -> Summary:
    """Summarize a run's shards ``(job id, logical offset)`` from the Batch API.

    Calls are bounded by pages, never one per task: one DescribeJobs for up to 100 shard
    parents, ListJobs pages of 1,000 per shard and terminal status, DescribeJobs in batches of
    100 for failed tasks. ``all_attempts`` also describes every other task, 100 per call, so
    Spot interruptions count every attempt of every task.
    """
    job_ids = [job_id for job_id, _ in shards]
    parents = describe_all(batch, job_ids)
    vcpus = job_vcpus(parents[0], default_vcpus)
    counts = {name: 0 for name in STATUSES}
    size = 0
    failed: list[tuple[dict[str, Any], int]] = []
    succeeded_children: dict[str, int] = {}  # job id -> its shard's logical offset
    described: list[dict[str, Any]] = []
    times = TaskTimes()

    for parent, (_, offset) in zip(parents, shards, strict=True):
        progress = progress_of(parent)
        size += progress.size
        if not progress.is_array:
            counts[progress.status] = counts.get(progress.status, 0) + 1
            if parent.get("status") == "FAILED":
                failed.append((parent, offset))
            described.append(parent)  # DescribeJobs already gave its attempts
            times.add_latest(offset, [parent], _array_index)
            times.add_earlier(offset, parent)
            continue
        for name in STATUSES:
            counts[name] += progress.counts.get(name, 0)
        for status in ("SUCCEEDED", "FAILED"):
            if progress.counts.get(status, 0) == 0:
                continue  # statusSummary says none: no call needed
            children = list(list_children(batch, parent["jobId"], status))
            counts[status] += len(children) - progress.counts.get(status, 0)
            times.add_latest(offset, children, _array_index)
            if status == "FAILED":
                failed.extend((child, offset) for child in children)
            elif all_attempts:
                succeeded_children.update((child["jobId"], offset) for child in children)

    # Each task's latest attempt, from the times just collected (a task still running has none).
    runtimes = [(stopped - started) / 1000 for _, started, stopped, _ in times.latest()]
    parent_ids = set(job_ids)
    to_describe = [job["jobId"] for job, _ in failed if job["jobId"] not in parent_ids]
    details = describe_many(batch, to_describe)
    failures = [_failure_from(job, offset, details.get(job["jobId"])) for job, offset in failed]
    failures.sort(key=lambda f: (f.index is None, f.index or 0))
    described.extend(details.values())
    for job, offset in failed:
        if job["jobId"] in details:
            times.add_earlier(offset + (_array_index(job) or 0), details[job["jobId"]])
    basis = FAILED_TASKS_BASIS
    if all_attempts:
        succeeded = describe_many(batch, list(succeeded_children)).values()
        described.extend(succeeded)
        for job in succeeded:
            times.add_earlier(succeeded_children[job["jobId"]] + (_array_index(job) or 0), job)
        basis = EVERY_ATTEMPT_BASIS

    if all_attempts:
        # Every task was described: every attempt of every task, reclaimed ones included.
        seconds = sum(_runtime_seconds(a) or 0.0 for job in described for a in job.get("attempts") or [])
        hours_basis = EVERY_ATTEMPT_BASIS
    else:
        # The latest attempt of each task (ListJobs), plus the earlier attempts of failed tasks.
        earlier = sum(
            _runtime_seconds(a) or 0.0
            for job, _ in failed
            for a in (details.get(job["jobId"], job).get("attempts") or [])[:-1]
        )
        seconds = sum(runtimes) + earlier
        hours_basis = "latest attempt of each task and every attempt of failed tasks"
    vcpu_hours = seconds * vcpus / 3600
    spot = spot_interruptions(described, vcpus, basis)
    return Summary(
        job_id=job_ids[0],
        job_name=parents[0].get("jobName", ""),
        status=aggregate_status([p.get("status", "SUBMITTED") for p in parents]),
        size=size,
        counts=counts,
        failures=failures,
        runtime=runtime_stats(runtimes),
        vcpus=vcpus,
        vcpu_hours=vcpu_hours,
        cost=estimate(vcpu_hours, spot.vcpu_hours, prices, hours_basis),
        run_id=run_id,
        job_ids=job_ids,
        spot=spot,
        times=times,
    )
