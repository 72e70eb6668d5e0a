"""Call budgets over shards, asserted as call counts against a client that pages like AWS."""

from __future__ import annotations

import math

import pytest

from runner.analysis.cost import stack_prices
from runner.analysis.summary import summarize
from runner.runs.watch import poll, watch
from tests.fakes import PagingBatch


def shards_for(tasks: int) -> list[int]:
    return [min(10_000, tasks - offset) for offset in range(0, tasks, 10_000)]


@pytest.mark.parametrize("tasks", [100, 25_000, 1_000_000])
def test_one_watch_poll_is_one_describe_call_up_to_a_million_tasks(tasks: int):
    batch = PagingBatch(shards_for(tasks), running_polls=2)
    progress = watch(batch, batch.parent_ids, interval=10, sleep=lambda _: None)
    assert progress.size == tasks and progress.done
    assert batch.calls == {"DescribeJobs": 3}  # three polls, one call each


@pytest.mark.parametrize(
    ("tasks", "fail_every"), [(25_000, None), (25_000, 100), (100_000, 100), (100_000, 7)]
)
def test_summary_describes_parents_once_pages_children_and_batches_failures(tasks: int, fail_every):
    sizes = shards_for(tasks)
    batch = PagingBatch(sizes, fail_every)
    summary = summarize(batch, batch.shards, prices=stack_prices("spot"))
    failed = summary.counts["FAILED"]
    assert summary.counts["SUCCEEDED"] + failed == tasks
    per_shard = [(batch._failures_in(k), size - batch._failures_in(k)) for k, size in enumerate(sizes)]
    list_pages = sum(math.ceil(f / 1000) + math.ceil(s / 1000) for f, s in per_shard)
    assert batch.calls["DescribeJobs"] == math.ceil(len(sizes) / 100) + math.ceil(failed / 100)
    assert batch.calls["ListJobs"] == list_pages


def test_failures_across_shards_are_reported_by_logical_index_and_class():
    batch = PagingBatch([10_000, 10_000, 5_000], fail_every=5_000)
    summary = summarize(batch, batch.shards, prices=stack_prices("spot"))
    # Logical indices 0, 5000, ..., 20000: even multiples were reclaimed (spot), odd ones exited 1.
    assert [f.index for f in summary.failures] == [0, 5_000, 10_000, 15_000, 20_000]
    assert summary.failure_classes == {"spot": [0, 10_000, 20_000], "app": [5_000, 15_000]}
    assert summary.failures[1].job_id == "run-0:5000" and summary.failures[2].job_id == "run-1:0"
    # Each spot task had two reclaimed attempts: one of 600 s, then its last (1 s, 401 s, 201 s).
    assert (summary.spot.attempts, summary.spot.vcpu_hours) == (6, pytest.approx((1800 + 603) / 3600))
    assert summary.spot.basis == "attempts of failed tasks"


def test_every_attempt_describes_every_task_once_in_batches_of_one_hundred():
    batch = PagingBatch([10_000, 2_000], fail_every=1_000)
    summary = summarize(batch, batch.shards, prices=stack_prices("spot"), all_attempts=True)
    assert summary.spot.basis == "every attempt of every task"
    assert batch.calls["DescribeJobs"] == 1 + math.ceil(12 / 100) + math.ceil((12_000 - 12) / 100)


def test_poll_of_more_than_a_hundred_shards_takes_one_call_per_hundred():
    batch = PagingBatch([10] * 250)
    assert poll(batch, batch.parent_ids).size == 2_500
    assert batch.calls["DescribeJobs"] == 3
