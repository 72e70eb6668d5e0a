"""Benchmark: Batch API calls and the runner's own CPU time for summary and watch, up to 1M tasks.

Against a fake Batch client that pages like AWS (tests/fakes.py), so the call counts are what a
real account would see. Next to each figure: the naive approach workflow engines take (DescribeJobs
on every task, 100 per call) in the same run. Run with `make bench`; the table is in the README.
"""

from __future__ import annotations

import math
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from runner.analysis.cost import stack_prices
from runner.analysis.summary import summarize
from runner.report.charts import draw
from runner.report.html import write_report
from runner.report.model import RunPart, build_report
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
    print(
        "| tasks | failed | summary: calls | summary: runner CPU s | watch: calls per poll "
        "| naive: calls per poll | naive: CPU s per poll | naive ÷ watch | naive ÷ summary |"
    )
    print("|" + "---:|" * 9)
    for tasks in SIZES:
        for fail_every in (None, 100):
            batch = PagingBatch(shard_sizes(tasks), fail_every)
            summary_cpu, summary_calls = runner_cpu(
                batch, lambda b=batch: summarize(b, b.shards, prices=stack_prices("spot"))
            )
            _, poll_calls = runner_cpu(batch, lambda b=batch: poll(b, b.parent_ids))
            naive_cpu, naive_calls = naive(batch, tasks)
            failed = tasks // fail_every if fail_every else 0
            assert poll_calls == math.ceil(len(batch.sizes) / 100)
            print(
                f"| {tasks:,} | {failed:,} | {summary_calls:,} | {summary_cpu:.2f} | {poll_calls} "
                f"| {naive_calls:,} | {naive_cpu:.2f} | {naive_calls / poll_calls:,.0f}x "
                f"| {naive_calls / summary_calls:,.1f}x |"
            )


def report_bench() -> None:
    """`runner report`: the summary's calls, then the report's own CPU (model, charts, HTML, PNGs)."""
    print()
    print(
        "| tasks | failed | report: calls | summary CPU s | report model CPU s | HTML + SVG charts CPU s "
        "| PNGs CPU s | HTML KiB |"
    )
    print("|" + "---:|" * 8)
    now = datetime.now(timezone.utc)
    for tasks in SIZES:
        batch = PagingBatch(shard_sizes(tasks), 100)
        holder: dict[str, object] = {}
        summary_cpu, calls = runner_cpu(
            batch,
            lambda b=batch, h=holder: h.update(
                s=summarize(b, b.shards, prices=stack_prices("spot"), run_id="bench")
            ),
        )
        own = holder["s"]
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "report.html"
            started = time.process_time()
            report = build_report(
                [RunPart("bench", own, own.times)], own, stack="dev", where="AWS", log_tails={}
            )
            model_cpu = time.process_time() - started
            started = time.process_time()
            write_report(report, out, None, now)
            html_cpu = time.process_time() - started
            started = time.process_time()
            for chart in draw(report):
                chart.save_png(Path(scratch))
            png_cpu = time.process_time() - started
            size = out.stat().st_size
        print(
            f"| {tasks:,} | {tasks // 100:,} | {calls:,} | {summary_cpu:.2f} | {model_cpu:.2f} | {html_cpu:.2f} "
            f"| {png_cpu:.2f} | {size / 1024:,.0f} |"
        )


if __name__ == "__main__":
    main()
    report_bench()
