"""Benchmark: what keeping the local stack's state costs.

- sweep throughput with persistence (the default) and without it: 500 trivial tasks each way;
- one snapshot of a large stack (100,000 S3 objects and 10,000 jobs): its size, how long it holds
  the emulator and how long it takes to reach the disk, so the window a `kill -9` can lose;
- the restart of that stack: `runner local down` (the last snapshot) and `runner local up`
  (loading it, with the 10,000 jobs handed back to the executor).

Run with `make bench`.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runner.aws.clients import AwsTarget
from runner.local.deploy import deploy_or_keep
from runner.local.process import ExecutorOptions, start_server, stop_server
from runner.local.state import LocalState
from scripts.bench_emulator import run_trivial_array

TASKS = 500
OBJECTS = 100_000
JOBS = 10_000
CLIENTS = 8
PROJECT_DIR = Path(__file__).resolve().parents[1]


def sweep(persist: bool) -> float:
    """Seconds for TASKS trivial tasks as one array job."""
    return run_trivial_array(TASKS, os.cpu_count() or 1, persist=persist)[0]


def large_stack() -> None:
    with tempfile.TemporaryDirectory() as root:
        state = LocalState(Path(root))
        info, _ = start_server(state, None, ExecutorOptions(slots=2))
        try:
            outputs = deploy_or_keep(PROJECT_DIR, "prod", info.endpoint_url, state).outputs
            target = AwsTarget("us-east-1", info.endpoint_url, state.credentials())
            bucket = outputs.data.bucket if outputs.data else "bench"
            began = time.perf_counter()

            def put(worker: int) -> None:
                s3 = target.client("s3")
                for i in range(worker, OBJECTS, CLIENTS):
                    s3.put_object(Bucket=bucket, Key=f"bench/{i:06d}/out.json", Body=b'{"row": %d}' % i)

            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(put, range(CLIENTS)))
            filled = time.perf_counter() - began
            batch = target.client("batch")
            # Queued behind a disabled queue: 10,000 jobs the restart must hand back to the executor.
            batch.update_job_queue(jobQueue=outputs.job_queue_arn, state="DISABLED")
            batch.submit_job(
                jobName="queued",
                jobQueue=outputs.job_queue_arn,
                jobDefinition=outputs.job_definition_arn,
                arrayProperties={"size": JOBS},
                containerOverrides={"command": ["true"]},
            )
            time.sleep(3)  # the background snapshot of all that
            started = time.perf_counter()
            stop_server(state)
            down = time.perf_counter() - started
            size = (state.snapshot_file).stat().st_size
            started = time.perf_counter()
            info, _ = start_server(state, None, ExecutorOptions(slots=2))
            up = time.perf_counter() - started
            restored = state.restored()
            jobs = target.__class__(target.region, info.endpoint_url, target.credentials).client("batch")
            listed = jobs.list_jobs(jobQueue=outputs.job_queue_arn, jobStatus="RUNNABLE")["jobSummaryList"]
            held = _snapshot_hold(state)
        finally:
            stop_server(state)
    print(f"\n{OBJECTS:,} objects written in {filled:.0f} s ({OBJECTS / filled:.0f}/s, {CLIENTS} clients)")
    print("| snapshot MB | held the emulator s | restart: down s | up s | of which loading s |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {size / 1e6:.1f} | {held:.2f} | {down:.1f} | {up:.1f} | {restored.seconds if restored else 0:.1f} |"
    )
    assert restored is not None and restored.backends and listed, "the restart lost the stack"


def _snapshot_hold(state: LocalState) -> float:
    """How long one snapshot of that stack holds the emulator: the same dump, in this process."""
    from runner.emulator import persistence  # moto, in this process only for the measurement

    persistence.load((state.snapshot_file).read_bytes())
    started = time.perf_counter()
    persistence.dump(persistence.backends_in_use())
    return time.perf_counter() - started


def main() -> None:
    with_it, without = sweep(persist=True), sweep(persist=False)
    print("| tasks | with persistence s | tasks/s | without s | tasks/s | cost |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {TASKS} | {with_it:.1f} | {TASKS / with_it:.0f} | {without:.1f} | {TASKS / without:.0f} | "
        f"{(with_it / without - 1) * 100:+.0f}% |"
    )
    large_stack()


if __name__ == "__main__":
    main()
