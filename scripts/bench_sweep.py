"""Benchmark: a sweep's S3 calls for 100,000 rows, and the launcher's own cost per row.

1. Uploading a 100,000-row table, and `runner results` over 100,000 row records of which 1,000 are
   failed rows, against a fake S3 client that pages like AWS (1,000 keys a ListObjectsV2): calls
   and the runner's CPU.
2. 1,000 rows through the emulator, 100 per task, each running `true`: the launcher's overhead per
   row (reading its piece, a process per row, the log lines), wall time x slots / rows.
Run with `make bench`; the tables are in the README.
"""

from __future__ import annotations

import io
import json
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

from runner.aws.stack_outputs import DataLocation
from runner.cli import cli
from runner.local.deploy import deploy_or_keep
from runner.local.process import ExecutorOptions, start_server, stop_server
from runner.local.state import LocalState
from runner.runs import rows as row_contract
from runner.runs.results import SHOWN_ROWS, list_fates, read_details
from runner.runs.rows import DONE_STATES, TaskEnd
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

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls["GetObject"] += 1
        row = int(Key.rsplit("/", 2)[-2])
        body = {"row": row, "key": f"s{row}", "state": "failed", "exitCode": 3, "tail": ["bad input"]}
        return {"Body": io.BytesIO(json.dumps(body).encode())}

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
    attempt = row_contract.attempt_name("job-1:0", 1)
    failed = set(range(0, ROWS, ROWS // 1_000))
    records = PagingS3(
        {
            sweep.rows_key
            + row_contract.record_name(row, 10**12, attempt, "failed" if row in failed else "succeeded"): 300
            for row in range(ROWS)
        }
    )
    started = time.process_time()
    fates = list_fates(records, sweep, dict.fromkeys(range(ROWS), TaskEnd(True, 0)))
    shown = read_details(records, sweep, [f for f in fates if f.state not in DONE_STATES][:SHOWN_ROWS])
    results_cpu = time.process_time() - started
    assert sum(f.state == "failed" for f in fates) == 1_000 and len(shown) == SHOWN_ROWS
    calls = records.calls["ListObjectsV2"] + records.calls["GetObject"]
    print(
        "| rows (failed) | upload: PutObject calls | upload: runner CPU s | results: ListObjectsV2 + GetObject calls | results: runner CPU s | budget: 2 x listings + one read per row shown | naive: calls (one per row) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {ROWS:,} (1,000) | {s3.calls['PutObject']} | {upload_cpu:.2f} | {records.calls['ListObjectsV2']} + "
        f"{records.calls['GetObject']} = {calls} | {results_cpu:.2f} | {2 * ROWS // 1000 + SHOWN_ROWS} | {ROWS:,} |"
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
