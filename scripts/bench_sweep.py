"""Benchmark: a sweep's S3 calls for 100,000 rows, and the launcher's own cost per row.

1. Uploading a 100,000-row table and `runner results` over 100,000 output files, against a fake S3
   client that pages like AWS (1,000 keys a ListObjectsV2): calls and the runner's CPU.
2. 1,000 rows through the emulator, 100 per task, each running `true`: the launcher's overhead per
   row (reading its piece, a process per row, the log lines), wall time x slots / rows.
Run with `make bench`; the tables are in the README.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from runner.analysis.results import row_results
from runner.aws.data_store import row_outputs
from runner.aws.stack_outputs import DataLocation
from runner.cli import cli
from runner.local.deploy import deploy_or_keep
from runner.local.process import ExecutorOptions, start_server, stop_server
from runner.local.state import LocalState
from runner.runs.sweep import Sweep, upload_table
from runner.runs.table import parse_table

ROWS = 100_000
PROJECT_DIR = Path(__file__).resolve().parents[1]


class PagingS3:
    """PutObject and paged ListObjectsV2 over an in-memory listing, counting calls."""

    def __init__(self, keys: dict[str, int] | None = None) -> None:
        self.keys = keys or {}
        self.calls: Counter[str] = Counter()

    def put_object(self, **params: Any) -> None:
        self.calls["PutObject"] += 1
        self.keys[params["Key"]] = len(params["Body"])

    def get_paginator(self, _name: str) -> PagingS3:
        return self

    def paginate(self, Bucket: str, Prefix: str, PaginationConfig: dict[str, int]) -> Iterator[dict]:
        listed = sorted(key for key in self.keys if key.startswith(Prefix))
        for start in range(0, len(listed), 1000):
            self.calls["ListObjectsV2"] += 1
            yield {"Contents": [{"Key": k, "Size": self.keys[k]} for k in listed[start : start + 1000]]}


def s3_calls() -> None:
    table = parse_table(
        b"sample,depth\n" + b"".join(b"s%d,%d\n" % (i, i % 7) for i in range(ROWS)), "bench.csv", "csv"
    )
    sweep = Sweep(DataLocation("bench", "runs/", "read-write"), "run", ROWS, 1, table.columns)
    s3 = PagingS3()
    started = time.process_time()
    upload_table(s3, table, sweep)
    upload_cpu = time.process_time() - started
    outputs = PagingS3({f"{sweep.outputs_key}{row}/result.txt": 100 for row in range(ROWS)})
    started = time.process_time()
    found = row_results(
        sweep.run_id,
        sweep.rows,
        sweep.per_task,
        sweep.outputs_uri,
        dict.fromkeys(range(ROWS), True),
        row_outputs(outputs, "bench", sweep.outputs_key),
    )
    results_cpu = time.process_time() - started
    assert found.groups["succeeded with outputs"] == list(range(ROWS))
    print(
        "| rows | upload: PutObject calls | upload: runner CPU s | results: ListObjectsV2 calls | results: runner CPU s | naive: calls (one per row) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {ROWS:,} | {s3.calls['PutObject']} | {upload_cpu:.2f} | {outputs.calls['ListObjectsV2']} "
        f"| {results_cpu:.2f} | {ROWS:,} |"
    )


def launcher_overhead(rows: int = 1_000, per_task: int = 100) -> None:
    slots = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as root:
        os.environ["XDG_STATE_HOME"] = root
        os.environ["RUNNER_PROJECT_DIR"] = str(PROJECT_DIR)
        state = LocalState(Path(root) / "batch-stacks")
        info, _ = start_server(state, None, ExecutorOptions(slots=slots, spot_interruptions=0))
        try:
            deploy_or_keep(PROJECT_DIR, "dev", info.endpoint_url, state)
            table = Path(root) / "rows.csv"
            table.write_text("n\n" + "".join(f"{i}\n" for i in range(rows)))
            started = time.perf_counter()
            result = CliRunner().invoke(
                cli,
                [
                    "--local",
                    "submit",
                    "--tasks",
                    str(table),
                    "--per-task",
                    str(per_task),
                    "--command",
                    "true",
                    "--wait",
                    "--interval",
                    "1",
                    "--json",
                ],
            )
            wall = time.perf_counter() - started
        finally:
            stop_server(state)
    assert result.exit_code == 0, result.output
    print("| rows | per task | slots | wall s | rows/s | launcher overhead per row ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {rows:,} | {per_task} | {slots} | {wall:.1f} | {rows / wall:.0f} | {wall * slots / rows * 1000:.1f} |"
    )


def main() -> None:
    print(f"# sweep benchmark, {datetime.now(timezone.utc):%Y-%m-%d}, Python {sys.version.split()[0]}")
    s3_calls()
    launcher_overhead()


if __name__ == "__main__":
    main()
