"""Benchmark: Batch API calls and time for summary/watch as arrays grow.

A fake Batch client pages ListJobs like AWS (maxResults, nextToken) and counts every call, so the
numbers are what a real account would see. Run with `make bench`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

from runner.runs.watch import watch

from runner.analysis.summary import summarize

PARENT = "bench-parent"


class PagingBatch:
    """DescribeJobs / ListJobs over an in-memory array, with AWS's paging rules."""

    def __init__(self, size: int, failed_every: int | None) -> None:
        self.size = size
        self.calls: Counter[str] = Counter()
        self.children = [
            {
                "jobId": f"{PARENT}:{i}",
                "jobName": "bench",
                "status": "FAILED" if failed_every and i % failed_every == 0 else "SUCCEEDED",
                "createdAt": 0,
                "startedAt": 1_000,
                "stoppedAt": 1_000 + 1_000 * (1 + i % 600),
                "arrayProperties": {"index": i},
                "container": {"exitCode": 1 if failed_every and i % failed_every == 0 else 0},
            }
            for i in range(size)
        ]
        self.polls_until_done = 3

    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        self.calls["DescribeJobs"] += 1
        assert len(jobs) <= 100, "DescribeJobs takes at most 100 ids"
        if jobs == [PARENT]:
            self.polls_until_done -= 1
            summary = Counter(c["status"] for c in self.children)
            if self.polls_until_done > 0:
                summary = Counter({"RUNNING": self.size})
            return {
                "jobs": [
                    {
                        "jobId": PARENT,
                        "jobName": "bench",
                        "status": "RUNNING",
                        "arrayProperties": {"size": self.size, "statusSummary": dict(summary)},
                    }
                ]
            }
        by_id = {c["jobId"]: c for c in self.children}
        return {"jobs": [{**by_id[j], "attempts": [{"container": {"logStreamName": "s"}}]} for j in jobs]}

    def get_paginator(self, name: str) -> Any:
        batch = self

        class Paginator:
            def paginate(self, arrayJobId: str, jobStatus: str, PaginationConfig: dict) -> Any:
                size = PaginationConfig["PageSize"]
                assert size <= 1000
                matching = [c for c in batch.children if c["status"] == jobStatus]
                for start in range(0, max(len(matching), 1), size):
                    batch.calls["ListJobs"] += 1
                    yield {"jobSummaryList": matching[start : start + size]}

        return Paginator()


def main() -> None:
    print(f"{'children':>9} {'failed':>7} {'ListJobs':>9} {'Describe':>9} {'budget':>7} {'seconds':>8}")
    for size, failed_every in [(100, None), (2_500, 25), (10_000, None), (10_000, 100), (10_000, 1)]:
        batch = PagingBatch(size, failed_every)
        batch.polls_until_done = 0
        started = time.perf_counter()
        summary = summarize(batch, PARENT, purchase_model="spot")
        elapsed = time.perf_counter() - started
        failed = summary.counts["FAILED"]
        budget = 1 + math.ceil((size - failed) / 1000) + math.ceil(failed / 1000) + math.ceil(failed / 100)
        total = sum(batch.calls.values())
        assert total <= budget, (total, budget)
        print(f"{size:>9} {failed:>7} {batch.calls['ListJobs']:>9} {batch.calls['DescribeJobs']:>9} "
              f"{budget:>7} {elapsed:>8.3f}")  # fmt: skip

    batch = PagingBatch(10_000, None)
    polls: list[int] = []
    watch(batch, PARENT, interval=10, on_progress=lambda p: polls.append(p.finished), sleep=lambda _: None)
    print(f"watch of 10,000 children: {len(polls)} polls, {batch.calls['DescribeJobs']} DescribeJobs calls")


if __name__ == "__main__":
    main()
