"""A fake Batch client that pages like AWS, for call budgets in tests and in `make bench`.

It holds runs of any size without materialising them: shard parents answer DescribeJobs with a
statusSummary, children are made page by page. It counts every call and the CPU time spent
inside itself, so a benchmark can report the runner's own time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

DESCRIBE_LIMIT, PAGE_LIMIT = 100, 1000


class PagingBatch:
    """Shard parents ``<run>-<k>`` of ``sizes[k]`` children; every ``fail_every``-th logical task failed.

    Failed tasks alternate between a Spot reclaim (two attempts) and an application exit.
    ``running_polls`` polls report every task RUNNING before they report the outcome.
    """

    def __init__(self, sizes: list[int], fail_every: int | None = None, *, running_polls: int = 0) -> None:
        self.sizes = sizes
        self.offsets = [sum(sizes[:k]) for k in range(len(sizes))]
        self.fail_every = fail_every
        self.running_polls = running_polls
        self.calls: Counter[str] = Counter()
        self.cpu_seconds = 0.0

    def parent_id(self, shard: int) -> str:
        return f"run-{shard}"

    @property
    def parent_ids(self) -> list[str]:
        return [self.parent_id(k) for k in range(len(self.sizes))]

    @property
    def shards(self) -> list[tuple[str, int]]:
        return list(zip(self.parent_ids, self.offsets, strict=True))

    def _failed(self, logical: int) -> bool:
        return bool(self.fail_every) and logical % self.fail_every == 0

    def _failures_in(self, shard: int) -> int:
        if not self.fail_every:
            return 0
        start, stop = self.offsets[shard], self.offsets[shard] + self.sizes[shard]
        return len(range(-(-start // self.fail_every) * self.fail_every, stop, self.fail_every))

    def _child(self, shard: int, index: int, *, detail: bool = False) -> dict[str, Any]:
        logical = self.offsets[shard] + index
        failed = self._failed(logical)
        spot = failed and (logical // self.fail_every) % 2 == 0
        child: dict[str, Any] = {
            "jobId": f"{self.parent_id(shard)}:{index}",
            "jobName": "bench",
            "createdAt": 0,
            "status": "FAILED" if failed else "SUCCEEDED",
            "startedAt": 1_000,
            "stoppedAt": 1_000 + 1_000 * (1 + logical % 600),
            "container": {"exitCode": None if spot else int(failed)},
        }
        if spot:
            child["statusReason"] = "Host EC2 (instance i-0123456789abcdef0) terminated."
        if detail:
            reclaimed = {
                "statusReason": "Host EC2 (instance i-0123) terminated.",
                "startedAt": 0,
                "stoppedAt": 600_000,
                "container": {},
            }
            last = {
                "statusReason": child.get("statusReason", "Essential container in task exited"),
                "startedAt": 1_000,
                "stoppedAt": child["stoppedAt"],
                "container": {"exitCode": child["container"]["exitCode"], "logStreamName": "s"},
            }
            child["attempts"] = [reclaimed, last] if spot else [last]
        return child

    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        started = time.process_time()
        self.calls["DescribeJobs"] += 1
        assert len(jobs) <= DESCRIBE_LIMIT, "DescribeJobs takes at most 100 ids"
        found = []
        for job_id in jobs:
            parent, _, index = job_id.partition(":")
            shard = int(parent.rsplit("-", 1)[1])
            if index:
                found.append(self._child(shard, int(index), detail=True))
                continue
            failed = self._failures_in(shard)
            size = self.sizes[shard]
            running = self.calls["DescribeJobs"] <= self.running_polls
            summary = {"RUNNING": size} if running else {"SUCCEEDED": size - failed, "FAILED": failed}
            status = "RUNNING" if running else ("FAILED" if failed else "SUCCEEDED")
            found.append(
                {
                    "jobId": job_id,
                    "jobName": "bench",
                    "status": status,
                    "arrayProperties": {"size": size, "statusSummary": summary},
                }
            )
        self.cpu_seconds += time.process_time() - started
        return {"jobs": found}

    def _pages(self, array_job_id: str, status: str, page_size: int) -> Iterator[dict[str, Any]]:
        assert page_size <= PAGE_LIMIT
        shard = int(array_job_id.rsplit("-", 1)[1])
        offset = self.offsets[shard]
        indices = (i for i in range(self.sizes[shard]) if (status == "FAILED") == self._failed(offset + i))
        failed = self._failures_in(shard)
        remaining = failed if status == "FAILED" else self.sizes[shard] - failed
        while True:  # like AWS: a nextToken while more remain, none on the last page
            started = time.process_time()
            self.calls["ListJobs"] += 1
            page = [
                self._child(shard, i) for _, i in zip(range(min(page_size, remaining)), indices, strict=False)
            ]
            remaining -= len(page)
            self.cpu_seconds += time.process_time() - started
            yield {"jobSummaryList": page}
            if remaining <= 0:
                return

    def get_paginator(self, name: str) -> Any:
        assert name == "list_jobs"
        batch = self

        class Paginator:
            def paginate(self, arrayJobId: str, jobStatus: str, PaginationConfig: dict) -> Any:
                return batch._pages(arrayJobId, jobStatus, PaginationConfig["PageSize"])

        return Paginator()
