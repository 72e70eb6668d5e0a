"""Benchmark: Batch API calls and the runner's own CPU time for summary and watch, up to 1M tasks.

Against a fake Batch client that pages like AWS (tests/fakes.py), so the call counts are what a
real account would see. Next to each figure: the naive approach workflow engines take (DescribeJobs
on every task, 100 per call) in the same run. Run with `make bench`; the table is in the README.
"""

from __future__ import annotations

import math
import time

from runner.analysis.summary import summarize
from runner.runs.watch import poll
from tests.fakes import PagingBatch

SIZES = (100, 10_000, 100_000, 1_000_000)


def shard_sizes(tasks: int) -> list[int]:
    return [min(10_000, tasks - offset) for offset in range(0, tasks, 10_000)]


def runner_cpu(batch: PagingBatch, action) -> tuple[float, int]:
    """The runner's CPU seconds for ``action`` (the fake's own time taken out), and its calls."""
    batch.calls.clear()
    batch.cpu_seconds = 0.0
    started = time.process_time()
    action()
    return time.process_time() - started - batch.cpu_seconds, sum(batch.calls.values())


def naive(batch: PagingBatch, tasks: int) -> tuple[float, int]:
    """What a per-task poller does: DescribeJobs on every child, 100 per call, once."""

    def describe_every_task() -> None:
        for shard, (parent, _) in enumerate(batch.shards):
            ids = [f"{parent}:{i}" for i in range(batch.sizes[shard])]
            for start in range(0, len(ids), 100):
                batch.describe_jobs(jobs=ids[start : start + 100])

    return runner_cpu(batch, describe_every_task)


def main() -> None:
    print("| tasks | failed | summary: calls | summary: runner CPU s | watch: calls per poll "
          "| naive: calls per poll | naive: CPU s per poll | naive ÷ watch | naive ÷ summary |")  # fmt: skip
    print("|" + "---:|" * 9)
    for tasks in SIZES:
        for fail_every in (None, 100):
            batch = PagingBatch(shard_sizes(tasks), fail_every)
            summary_cpu, summary_calls = runner_cpu(
                batch, lambda b=batch: summarize(b, b.shards, purchase_model="spot")
            )
            _, poll_calls = runner_cpu(batch, lambda b=batch: poll(b, b.parent_ids))
            naive_cpu, naive_calls = naive(batch, tasks)
            failed = tasks // fail_every if fail_every else 0
            assert poll_calls == math.ceil(len(batch.sizes) / 100)
            print(f"| {tasks:,} | {failed:,} | {summary_calls:,} | {summary_cpu:.2f} | {poll_calls} "
                  f"| {naive_calls:,} | {naive_cpu:.2f} | {naive_calls / poll_calls:,.0f}x "
                  f"| {naive_calls / summary_calls:,.1f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
