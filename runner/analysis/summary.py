"""How did a run go? Counts, failures with reasons, runtimes, vCPU-hours and an estimated cost.

Built from ListJobs pages (1,000 children each) per terminal status, plus DescribeJobs in
batches of 100 for failed children only: never a call per child.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from runner.aws.clients import aws_errors
from runner.runs.watch import STATUSES, TERMINAL, describe_job, progress_of

PAGE_SIZE = 1000
DESCRIBE_BATCH = 100
# Rough us-east-1 list prices per vCPU-hour for current general-purpose families (c6i/m6i);
# Spot varies by pool and hour, so this is an estimate, overridable with --vcpu-hour-price.
DEFAULT_VCPU_HOUR_USD = {"on-demand": 0.0425, "spot": 0.0170}


@dataclass(frozen=True)
class Failure:
    index: int | None
    job_id: str
    status_reason: str | None
    exit_code: int | None
    reason: str | None
    attempts: int = 0
    log_stream_name: str | None = None


@dataclass(frozen=True)
class RuntimeStats:
    min: float
    p50: float
    p90: float
    max: float


@dataclass(frozen=True)
class CostEstimate:
    usd_per_vcpu_hour: float
    estimated_usd: float
    basis: str


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
                }
                for f in self.failures
            ],
            "runtimeSeconds": asdict(self.runtime) if self.runtime else None,
            "vcpus": self.vcpus,
            "vcpuHours": self.vcpu_hours,
            "cost": (
                {
                    "usdPerVcpuHour": self.cost.usd_per_vcpu_hour,
                    "estimatedUsd": self.cost.estimated_usd,
                    "basis": self.cost.basis,
                }
                if self.cost
                else None
            ),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        """Rebuild a summary cached in a run record."""
        runtime = data.get("runtimeSeconds")
        cost = data.get("cost")
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
                )
                for f in data["failures"]
            ],
            runtime=RuntimeStats(**runtime) if runtime else None,
            vcpus=data.get("vcpus", 1),
            vcpu_hours=data.get("vcpuHours", 0.0),
            cost=(
                CostEstimate(cost["usdPerVcpuHour"], cost["estimatedUsd"], cost["basis"]) if cost else None
            ),
            run_id=data.get("runId"),
        )


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def runtime_stats(seconds: Sequence[float]) -> RuntimeStats | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    return RuntimeStats(
        min=ordered[0],
        p50=percentile(ordered, 0.5),
        p90=percentile(ordered, 0.9),
        max=ordered[-1],
    )


def cost_estimate(
    vcpu_hours: float, purchase_model: str, usd_per_vcpu_hour: float | None = None
) -> CostEstimate:
    if usd_per_vcpu_hour is not None:
        price, basis = usd_per_vcpu_hour, "--vcpu-hour-price"
    else:
        price = DEFAULT_VCPU_HOUR_USD.get(purchase_model, DEFAULT_VCPU_HOUR_USD["on-demand"])
        basis = f"{purchase_model} list-price estimate; set --vcpu-hour-price"
    return CostEstimate(price, vcpu_hours * price, basis)


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


def _failure_from(listed: dict[str, Any], described: dict[str, Any] | None = None) -> Failure:
    """A failure from a ListJobs summary, completed by the child's DescribeJobs entry if any."""
    job = {**listed, **(described or {})}
    container = {**(listed.get("container") or {}), **((described or {}).get("container") or {})}
    attempts = job.get("attempts") or []
    latest = attempts[-1].get("container", {}) if attempts else {}
    return Failure(
        index=_array_index(job),
        job_id=job["jobId"],
        status_reason=job.get("statusReason"),
        exit_code=container.get("exitCode", latest.get("exitCode")),
        reason=container.get("reason") or latest.get("reason"),
        attempts=len(attempts),
        log_stream_name=container.get("logStreamName") or latest.get("logStreamName"),
    )


def list_children(batch: Any, array_job_id: str, status: str) -> Iterator[dict[str, Any]]:
    """Children of an array job in one status, 1,000 per ListJobs page."""
    paginator = batch.get_paginator("list_jobs")
    with aws_errors():
        for page in paginator.paginate(
            arrayJobId=array_job_id, jobStatus=status, PaginationConfig={"PageSize": PAGE_SIZE}
        ):
            yield from page.get("jobSummaryList", [])


def describe_many(batch: Any, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """DescribeJobs in batches of 100."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(job_ids), DESCRIBE_BATCH):
        with aws_errors():
            jobs = batch.describe_jobs(jobs=list(job_ids[start : start + DESCRIBE_BATCH]))["jobs"]
        found.update({job["jobId"]: job for job in jobs})
    return found


def summarize(
    batch: Any,
    job_id: str,
    *,
    purchase_model: str,
    default_vcpus: int = 1,
    usd_per_vcpu_hour: float | None = None,
    run_id: str | None = None,
) -> Summary:
    """Summarize a job or array job from the Batch API (calls bounded by pages, not children)."""
    parent = describe_job(batch, job_id)
    progress = progress_of(parent)
    vcpus = job_vcpus(parent, default_vcpus)
    counts = dict(progress.counts)
    runtimes: list[float] = []
    failures: list[Failure] = []

    if not progress.is_array:
        runtime = _runtime_seconds(parent)
        if runtime is not None:
            runtimes.append(runtime)
        if parent.get("status") == "FAILED":
            failures.append(_failure_from(parent))
    else:
        failed_listed: list[dict[str, Any]] = []
        for status in sorted(TERMINAL, reverse=True):  # SUCCEEDED, then FAILED
            if counts.get(status, 0) == 0:
                continue  # statusSummary says none: no call needed
            children = list(list_children(batch, job_id, status))
            counts[status] = len(children)
            runtimes.extend(r for r in map(_runtime_seconds, children) if r is not None)
            if status == "FAILED":
                failed_listed = children
        details = describe_many(batch, [child["jobId"] for child in failed_listed])
        failures = [_failure_from(child, details.get(child["jobId"])) for child in failed_listed]
        failures.sort(key=lambda f: (f.index is None, f.index or 0))

    vcpu_hours = sum(runtimes) * vcpus / 3600
    return Summary(
        job_id=job_id,
        job_name=parent.get("jobName", ""),
        status=parent.get("status", "SUBMITTED"),
        size=progress.size,
        counts={name: counts.get(name, 0) for name in STATUSES},
        failures=failures,
        runtime=runtime_stats(runtimes),
        vcpus=vcpus,
        vcpu_hours=vcpu_hours,
        cost=cost_estimate(vcpu_hours, purchase_model, usd_per_vcpu_hour),
        run_id=run_id,
    )
