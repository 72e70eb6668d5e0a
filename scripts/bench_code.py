"""Benchmark: code packages, staged inputs and the CLI's start.

1. `runner --help` wall time, side by side in one run: this tree's CLI, and the CLI as it was
   before commands loaded when named (commit a37a455, checked out in a temporary worktree, run
   with the same interpreter). `python -X importtime -c "import runner.cli.root"` shows what is
   left.
2. The input check for 10,000 rows whose inputs share one folder (moto's S3, 13,000 objects there):
   S3 calls, against the budget of ceil(10,000 / 1,000) + 1.
3. On the emulator, a 5 MB `--code` folder: time from "edited the script" to "its rows are
   submitted" (`runner submit --tasks --code`, packing and uploading included), then the same
   submit with the code unchanged (no upload).
Run with `make bench`; the tables are in the README.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]
# The last commit whose CLI imported every command (and so boto3 and the Pulumi SDK) at start.
BEFORE = "a37a455"
HELP = "import sys; sys.path.insert(0, {tree!r}); sys.argv = ['runner', '--help']; from runner.cli import main; main()"


def wall(command: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cli_start() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        old = Path(scratch) / "before"
        subprocess.run(["git", "-C", str(PROJECT_DIR), "worktree", "add", "-q", str(old), BEFORE], check=True)
        try:
            before = wall([sys.executable, "-c", HELP.format(tree=str(old))])
            now = wall([sys.executable, "-c", HELP.format(tree=str(PROJECT_DIR))])
        finally:
            subprocess.run(
                ["git", "-C", str(PROJECT_DIR), "worktree", "remove", "--force", str(old)], check=True
            )
    print("| `runner --help` | median wall s (7 runs) |")
    print("|---|---:|")
    print(f"| every command imported at start ({BEFORE}) | {before:.3f} |")
    print(f"| commands load when named (now) | {now:.3f}: {now / before:.0%} of before |")


@contextlib.contextmanager
def moto_bucket(bucket: str) -> Iterator[tuple[Any, Any]]:
    """moto's S3 in this process with ``bucket``: a client, and the backend to fill it fast."""
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket)
        yield s3, s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


def input_check() -> None:
    from runner.aws.stack_outputs import DataLocation
    from runner.runs.inputs import missing_inputs, staged_inputs
    from runner.runs.table import TaskTable

    rows = 10_000
    with moto_bucket("lab-data") as (s3, backend):
        keys = [f"runs/reads/sample-{i:05d}.fq" for i in range(rows)]
        for key in [*keys, *(f"runs/reads/zz-{i}.fq" for i in range(3_000))]:
            backend.put_object("lab-data", key, b"x")
        table = TaskTable(
            "bench.csv", ("sample", "reads"), [{"sample": k, "reads": f"s3://lab-data/{k}"} for k in keys]
        )
        staged = staged_inputs(table, ["reads"], DataLocation("lab-data", "runs/", "read-write"), "sample")
        calls: Counter[str] = Counter()
        s3.meta.events.register("before-parameter-build.*.*", lambda model, **_: calls.update([model.name]))
        started = time.process_time()
        assert missing_inputs(s3, staged) == []
        cpu = time.process_time() - started
    print(
        "| rows (inputs in one folder) | S3 calls | budget | CPU s (moto's S3 in-process included) | naive: one HeadObject per row |"
    )
    print("|---:|---:|---:|---:|---:|")
    print(f"| {rows:,} | {sum(calls.values())} ListObjectsV2 | {rows // 1000 + 1} | {cpu:.2f} | {rows:,} |")


def five_megabytes(folder: Path) -> None:
    generator = random.Random(7)
    for i in range(100):
        lines = (
            f"value_{i}_{j} = {generator.random()!r}  # {'x' * generator.randint(10, 40)}" for j in range(800)
        )
        (folder / f"module_{i:03d}.py").write_text("\n".join(lines) + "\n")
    (folder / "qc.py").write_text("print('v1')\n")


def edit_to_submitted() -> None:
    from click.testing import CliRunner

    from runner.cli.root import cli
    from runner.local.deploy import deploy_or_keep
    from runner.local.process import ExecutorOptions, start_server, stop_server
    from runner.local.state import LocalState

    with tempfile.TemporaryDirectory() as root:
        os.environ["XDG_STATE_HOME"] = root
        os.environ["RUNNER_PROJECT_DIR"] = str(PROJECT_DIR)
        code = Path(root) / "analysis"
        code.mkdir()
        five_megabytes(code)
        size = sum(p.stat().st_size for p in code.iterdir())
        table = Path(root) / "rows.csv"
        table.write_text("n\n" + "".join(f"{i}\n" for i in range(200)))
        state = LocalState(Path(root) / "batch-stacks")
        info, _ = start_server(state, None, ExecutorOptions(slots=1, spot_interruptions=0))
        try:
            deploy_or_keep(PROJECT_DIR, "dev", info.endpoint_url, state)
            args = ["--local", "submit", "--tasks", str(table), "--per-task", "100", "--code", str(code)]
            args += ["--command", "python3 qc.py", "--json"]
            timings: dict[str, list[float]] = {"edited": [], "unchanged": []}
            for version in range(3):
                for label, times in timings.items():
                    if label == "edited":
                        (code / "qc.py").write_text(f"print('v{version + 2}')\n")
                    started = time.perf_counter()
                    result = CliRunner().invoke(cli, args)
                    times.append(time.perf_counter() - started)
                    assert result.exit_code == 0, result.output
                    submitted = json.loads(result.stdout)
                    assert submitted["code"]["uploaded"] is (label == "edited"), result.stdout
                    CliRunner().invoke(cli, ["--local", "cancel", submitted["runId"]])
        finally:
            stop_server(state)
    edited, unchanged = (statistics.median(timings[label]) for label in ("edited", "unchanged"))
    print(
        f"| {size / 1e6:.1f} MB folder, 101 files, 200 rows in 2 tasks | edit to rows submitted, median wall s (3 runs) |"
    )
    print("|---|---:|")
    print(f"| edited (a new digest: packed, 1 HeadObject + 1 PutObject) | {edited:.2f} |")
    print(f"| unchanged (packed, 1 HeadObject, nothing uploaded) | {unchanged:.2f} |")


def team_runs_listing() -> None:
    """`runner runs` and `runs --by user --since 7d` over 10,000 team runs in moto's S3."""
    import json as json_module

    from runner.aws.run_records import RunRecords
    from runner.aws.stack_outputs import DataLocation
    from runner.runs.team import team_runs, totals

    runs = 10_000
    with moto_bucket("lab-data") as (s3, backend):
        outputs = {
            "region": "us-east-1",
            "data": {"bucket": "lab-data", "prefix": "runs/", "access": "read-write"},
        }
        for number in range(runs):
            run_id = (
                f"202611{25 + number // 2000:02d}-{number % 2000 // 60:02d}{number % 60:02d}00-{number:04x}"
            )
            user = ("alice", "bob", "carol", "dan")[number % 4]
            backend.put_object("lab-data", f"runs/index/{run_id}~{user}", b"")
            record = {
                "run_id": run_id,
                "stack": "dev",
                "created_at": "2026-11-25T00:00:00+00:00",
                "job_name": "j",
                "request": {},
                "outputs": outputs,
                "submitted_by": {"arn": f"arn:aws:iam::123456789012:user/{user}", "user": user},
                "summary": {"vcpuHours": 0.5, "cost": {"estimatedUsd": 0.01}, "counts": {}},
                "version": 1,
            }
            backend.put_object("lab-data", f"runs/{run_id}/run.json", json_module.dumps(record).encode())
        records = RunRecords(s3, DataLocation("lab-data", "runs/", "read-write"))
        calls: Counter[str] = Counter()
        s3.meta.events.register("before-parameter-build.*.*", lambda model, **_: calls.update([model.name]))
        started = time.process_time()
        newest = team_runs(records, limit=20)
        listing_cpu = time.process_time() - started
        listing_calls = dict(calls)
        calls.clear()
        wall = time.perf_counter()
        started = time.process_time()
        window = team_runs(records, limit=None, since="20261125-000000")
        by_user = totals(window.records, "user")
        totals_cpu, wall = time.process_time() - started, time.perf_counter() - wall
    assert len(newest.records) == 20 and sum(t.runs for t in by_user) == runs
    print("| team runs in the bucket | command | S3 calls | CPU s (moto's S3 in-process included) | wall s |")
    print("|---:|---|---|---:|---:|")
    print(
        f"| {runs:,} | `runner runs` (newest 20) | {listing_calls.get('ListObjectsV2', 0)} ListObjectsV2 + {listing_calls.get('GetObject', 0)} GetObject | {listing_cpu:.2f} | |"
    )
    print(
        f"| {runs:,} | `runner runs --by user --since 7d` | {calls.get('ListObjectsV2', 0)} ListObjectsV2 + {calls.get('GetObject', 0):,} GetObject (8 at a time) | {totals_cpu:.2f} | {wall:.1f} |"
    )


def main() -> None:
    print(
        f"# code and inputs benchmark, {datetime.now(timezone.utc):%Y-%m-%d}, Python {sys.version.split()[0]}"
    )
    cli_start()
    input_check()
    team_runs_listing()
    edit_to_submitted()


if __name__ == "__main__":
    main()
