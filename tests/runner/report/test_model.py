"""The report's numbers, without AWS or drawing: concurrency, outcomes, failure history, bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from runner.analysis.cost import stack_prices
from runner.analysis.lineage import RunPart
from runner.analysis.summary import Failure, Summary, summarize
from runner.analysis.timeline import TaskTimes
from runner.report.html import duration, usd, write_report
from runner.report.model import (
    FIRST_TIME,
    LOGS_SHOWN,
    NOT_FINISHED,
    ON_RETRY,
    STILL_FAILED,
    TIME_BINS,
    build_report,
    concurrency,
    failures_to_read,
    latest_attempts,
    outcomes,
)
from tests.fakes import PagingBatch


def times(*rows: tuple[int, float, float, str]) -> TaskTimes:
    table = TaskTimes()
    for index, start, stop, kind in rows:
        table.add(index, int(start * 1000), int(stop * 1000), kind)
    return table


def part(run_id: str, own: Summary, task_times: TaskTimes | None, pieces=None) -> RunPart:
    """A run of a lineage with these task times, over ``pieces`` (default: all its indices)."""
    return RunPart(run_id, pieces or ((0, own.size),), replace(own, times=task_times))


def summary(size: int, failures: list[Failure] | None = None, **counts: int) -> Summary:
    return Summary(
        job_id="j",
        job_name="n",
        status="FAILED" if failures else "SUCCEEDED",
        size=size,
        counts={"SUCCEEDED": counts.get("succeeded", size), "FAILED": counts.get("failed", 0)},
        failures=failures or [],
    )


def failure(index: int, failure_class: str, job: str = "j") -> Failure:
    return Failure(index, f"{job}:{index}", None, 1, None, 1, f"stream-{index}", failure_class)


def test_concurrency_is_exact_for_a_small_run_and_stops_come_before_starts():
    # Task 1 starts the moment task 0 stops: never two at once.
    curve = concurrency([part("r", summary(3), times((0, 10, 20, "S"), (1, 20, 30, "S"), (2, 25, 26, "r")))])
    assert curve is not None and curve.exact and curve.peak == 2
    assert curve.seconds.tolist() == [0, 0, 10, 10, 15, 16, 20]
    assert curve.running.tolist() == [0, 1, 0, 1, 2, 1, 0]
    assert curve.interruptions.tolist() == [16.0]  # stopped 16 s after the first start


def test_concurrency_of_a_large_run_is_a_bounded_time_weighted_mean():
    rng = np.random.default_rng(1)
    starts = rng.uniform(0, 3600, 50_000)
    table = TaskTimes()
    for i, start in enumerate(starts):
        table.add(i, int(start * 1000), int((start + 60) * 1000), "S")
    curve = concurrency([part("r", summary(50_000), table)])
    assert curve is not None and not curve.exact
    assert len(curve.seconds) == TIME_BINS + 1
    # The area under the curve is every task's 60 s, to the rounding of a millisecond.
    area = float(np.sum(curve.running[:-1] * np.diff(curve.seconds)))
    assert area == pytest.approx(50_000 * 60, rel=1e-6)
    assert curve.running.max() <= curve.peak


def test_outcomes_follow_the_latest_run_of_each_index():
    parent = part("p", summary(5), times((0, 0, 1, "S"), (1, 0, 1, "F"), (2, 0, 1, "R"), (3, 0, 1, "F")))
    retry = part("r", summary(3), times((1, 5, 6, "S"), (2, 5, 6, "r"), (2, 7, 8, "S"), (3, 5, 6, "F")))
    assert outcomes(latest_attempts([parent, retry]), "p", 5).tolist() == [
        FIRST_TIME,
        ON_RETRY,
        ON_RETRY,
        STILL_FAILED,
        NOT_FINISHED,
    ]


def test_failure_classes_count_what_retries_recovered_and_logs_are_a_few():
    failures = [failure(i, "spot") for i in range(10)] + [failure(i, "app") for i in range(10, 20)]
    parent = part("p", summary(20, failures, succeeded=0, failed=20), None)
    retry = part("r", summary(10, [], succeeded=10), None, pieces=((0, 10),))
    folded = summary(20, [f for f in failures if f.failure_class == "app"], succeeded=10, failed=10)
    report = build_report([parent, retry], folded, stack="dev", where="AWS us-east-1", log_tails={})
    rows = {c.name: (c.failed, c.recovered, c.still_failed, c.ranges) for c in report.failure_classes}
    assert rows == {"spot": (10, 10, 0, "0-9"), "app": (10, 0, 10, "10-19")}
    chosen = failures_to_read([parent, retry], folded)
    assert len(chosen) <= LOGS_SHOWN and [f.index for f in chosen] == [10, 11, 0, 1]  # standing ones first
    assert "Task times of p, r are not available" in report.notes[0]


def test_a_report_of_100000_tasks_is_bounded_and_needs_only_the_summary_calls(tmp_path: Path):
    batch = PagingBatch([10_000] * 10, fail_every=100)
    own = summarize(batch, batch.shards, stack_prices("on-demand"), run_id="big")
    calls = sum(batch.calls.values())
    report = build_report([part("big", own, own.times)], own, stack="dev", where="AWS", log_tails={})
    assert sum(batch.calls.values()) == calls  # building the report calls nothing
    assert report.concurrency is not None and len(report.concurrency.seconds) <= TIME_BINS + 1
    assert len(report.runtimes) == 100_000 and len(report.slowest) == 10
    assert {(c.name, c.failed) for c in report.failure_classes} == {("spot", 500), ("app", 500)}
    assert report.outcomes is not None and int((report.outcomes == STILL_FAILED).sum()) == 1_000
    # Too many attempts for one bar each: the page leaves that chart out and stays small.
    out = tmp_path / "big.html"
    write_report(report, out, None, datetime(2026, 11, 25, tzinfo=timezone.utc))
    html = out.read_text(encoding="utf-8")
    assert 'id="timeline"' in html and 'id="attempts"' not in html
    assert out.stat().st_size < 400_000


def test_task_times_round_trip_and_a_damaged_cache_is_refused():
    table = times((0, 1, 2, "S"), (0, 0, 1, "r"))
    assert TaskTimes.from_json(table.to_json()) == table
    with pytest.raises(ValueError):
        TaskTimes.from_json({**table.to_json(), "kind": "S"})
    with pytest.raises(ValueError):
        TaskTimes.from_json({**table.to_json(), "kind": "SX"})


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "$0"), (0.0000049, "$0.0000049"), (0.00016, "$0.00016"), (0.0123, "$0.01"), (1234.5, "$1,234.50")],
)
def test_small_costs_keep_their_significant_digits(value: float, text: str):
    assert usd(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4 s"), (42, "42 s"), (423, "7 min 03 s"), (7380, "2 h 03 min"), (None, "-")],
)
def test_durations_read_as_people_write_them(seconds: float | None, text: str):
    assert duration(seconds) == text
