"""Reading Batch jobs in bulk: DescribeJobs 100 at a time, ListJobs 1,000 a page.

The only reads the runner makes of jobs; every caller's call budget is built from these.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from runner.aws.clients import aws_errors
from runner.errors import RunNotFoundError

DESCRIBE_BATCH = 100  # DescribeJobs takes at most 100 ids
PAGE_SIZE = 1000  # ListJobs returns at most 1,000 per page


class JobsForgottenError(RunNotFoundError):
    """AWS does not know (or no longer knows) some of the jobs asked for."""

    def __init__(self, missing: Sequence[str]) -> None:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        super().__init__(
            f"AWS has no job {shown} in this region (AWS keeps finished jobs for at least 7 days); "
            "check the id with `runner runs`"
        )
        self.missing = list(missing)


def describe_many(batch: Any, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """DescribeJobs in batches of 100; ids AWS does not know are simply absent."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(job_ids), DESCRIBE_BATCH):
        with aws_errors():
            jobs = batch.describe_jobs(jobs=list(job_ids[start : start + DESCRIBE_BATCH]))["jobs"]
        found.update((job["jobId"], job) for job in jobs)
    return found


def describe_all(batch: Any, job_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every job in the order given; JobsForgottenError names any AWS does not know."""
    found = describe_many(batch, job_ids)
    missing = [job_id for job_id in job_ids if job_id not in found]
    if missing:
        raise JobsForgottenError(missing)
    return [found[job_id] for job_id in job_ids]


def describe_job(batch: Any, job_id: str) -> dict[str, Any]:
    """One DescribeJobs call for one job; a clear error if AWS does not know it."""
    return describe_all(batch, [job_id])[0]


def list_children(batch: Any, array_job_id: str, status: str) -> Iterator[dict[str, Any]]:
    """Children of an array job in one status, 1,000 per ListJobs page."""
    paginator = batch.get_paginator("list_jobs")
    with aws_errors():
        for page in paginator.paginate(
            arrayJobId=array_job_id, jobStatus=status, PaginationConfig={"PageSize": PAGE_SIZE}
        ):
            yield from page.get("jobSummaryList", [])
