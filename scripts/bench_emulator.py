"""Benchmark: 1,000 trivial tasks through the local emulator, as real processes.

Reports tasks per second and the emulator's overhead per task (wall time x slots / tasks, less
the tasks' own runtime): the time Batch's semantics cost on top of the work. Run with `make bench`.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from runner.analysis.cost import stack_prices
from runner.analysis.summary import Summary, summarize
from runner.aws.clients import AwsTarget
from runner.local.deploy import deploy_or_keep
from runner.local.process import ExecutorOptions, start_server, stop_server
from runner.local.state import LocalState
from runner.runs.watch import poll

TASKS = 1_000
PROJECT_DIR = Path(__file__).resolve().parents[1]


def run_trivial_array(tasks: int, slots: int, *, persist: bool = True) -> tuple[float, Summary]:
    """Seconds for ``tasks`` trivial tasks (`true`) as one array job on a fresh emulator, and
    their summary (``persist=False``: an emulator that keeps nothing across restarts)."""
    with tempfile.TemporaryDirectory() as root:
        state = LocalState(Path(root))
        info, _ = start_server(state, None, ExecutorOptions(slots=slots), persist=persist)
        try:
            outputs = deploy_or_keep(PROJECT_DIR, "prod", info.endpoint_url, state).outputs
            batch = AwsTarget("us-east-1", info.endpoint_url, state.credentials()).client("batch")
            started = time.perf_counter()
            job_id = batch.submit_job(
                jobName="bench",
                jobQueue=outputs.job_queue_arn,
                jobDefinition=outputs.job_definition_arn,
                arrayProperties={"size": tasks},
                containerOverrides={"command": ["true"]},
            )["jobId"]
            while not poll(batch, job_id).done:
                time.sleep(0.05)
            wall = time.perf_counter() - started
            return wall, summarize(batch, [(job_id, 0)], prices=stack_prices("on-demand"))
        finally:
            stop_server(state)


def main() -> None:
    slots = os.cpu_count() or 1
    wall, summary = run_trivial_array(TASKS, slots)
    runtime = summary.runtime.p50 if summary.runtime else 0.0
    overhead_ms = (wall * slots / TASKS - runtime) * 1000
    print("| tasks | slots | wall s | tasks/s | median task runtime ms | emulator overhead per task ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {TASKS:,} | {slots} | {wall:.1f} | {TASKS / wall:.0f} | {runtime * 1000:.1f} | {overhead_ms:.1f} |"
    )
    assert summary.counts["SUCCEEDED"] == TASKS, summary.counts


if __name__ == "__main__":
    main()
