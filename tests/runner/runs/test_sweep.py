"""`submit --tasks` against moto: what is uploaded and submitted, what is refused before either,
and `results` reading outputs page by page."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from runner.aws.stack_outputs import DataLocation, StackOutputs
from runner.runs import rows
from runner.runs.launch import BOOTSTRAP
from tests.runner.conftest import REGION, Runner, moto_jobs
from tests.runner.runs.test_runs_at_scale import SPOT, fail

BUCKET = "lab-data"


# A one-shard run's record in the data bucket: created (and its index marker), after its shard,
# when submitted.
RECORD_WRITES = 4


def keys(prefix: str = "") -> list[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def table(tmp_path: Path, rows: int, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    path.write_text("sample,depth\n" + "".join(f"s{i},{i % 7}\n" for i in range(rows)))
    return path


def test_a_table_is_uploaded_in_pieces_and_submitted_as_tasks_of_rows(
    data_stack: Runner, tmp_path: Path, api_calls: Counter
):
    submitted = data_stack.json(
        "submit", "--tasks", str(table(tmp_path, 2_500)), "--per-task", "3", "--command", "echo $sample"
    )
    run = submitted["runId"]
    assert submitted["tasks"] == 834 and submitted["arraySize"] == 834  # ceil(2500 / 3)
    pieces = keys(f"runs/{run}/tasks/")
    assert pieces == [f"runs/{run}/tasks/piece-{n:05d}.jsonl" for n in range(3)]  # 999 rows a piece
    # The pieces, and the launcher's package (the first time only: it is named by its digest).
    # The pieces, the launcher's package (the first time only: it is named by its digest), and the
    # run's record: created with its index marker, then written after its shard and when submitted.
    assert api_calls["PutObject"] == 3 + 1 + RECORD_WRITES and api_calls["HeadObject"] == 1
    assert api_calls["SubmitJob"] == 1
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=pieces[1])["Body"].read()
    lines = body.decode().splitlines()
    assert len(lines) == 999 and json.loads(lines[0]) == {"sample": "s999", "depth": str(999 % 7)}
    (job,) = [j for j in moto_jobs().values() if ":" not in j.job_id]
    environment = {e["name"]: e["value"] for e in job.container_overrides["environment"]}
    assert environment["RUNNER_TASKS_URI"] == f"s3://{BUCKET}/runs/{run}/tasks/"
    assert environment["RUNNER_OUTPUT_URI"] == f"s3://{BUCKET}/runs/{run}/out/"
    assert (environment["RUNNER_ROWS"], environment["RUNNER_PER_TASK"], environment["RUNNER_PIECE_ROWS"]) == (
        "2500",
        "3",
        "999",
    )
    assert json.loads(environment["RUNNER_COMMAND"]) == ["echo", "$sample"]
    assert job.container_overrides["command"] == ["python3", "-c", BOOTSTRAP]
    package = environment["RUNNER_PACKAGE_URI"]
    assert package.startswith(f"s3://{BUCKET}/runs/code/") and "RUNNER_CODE_DIGEST" not in environment
    record = data_stack.json("runs")[0]
    assert record["runId"] == run and record["code"] is None
    api_calls.clear()
    data_stack.json("submit", "--tasks", str(table(tmp_path, 10)), "--command", "echo $sample")
    # The table and the record; the package is there already.
    assert api_calls["PutObject"] == 1 + RECORD_WRITES and api_calls["HeadObject"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--array", "5"],
            "--array 5 disagrees with --tasks: 10 rows at --per-task 1 make 10 tasks; drop --array",
        ),
        (["--per-task", "0"], "Invalid value for '--per-task'"),
        (["--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_options_that_disagree_with_the_table_upload_and_submit_nothing(
    data_stack: Runner, tmp_path: Path, args: list[str], message: str
):
    result = data_stack("submit", "--tasks", str(table(tmp_path, 10)), "--command", "true", *args)
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1
    assert keys() == [] and moto_jobs() == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("a,b\n", "has a header but no rows"),
        ("a,b\n1,2\n3\n", "line 3 has 1 field(s); the header has 2"),
        ("AWS_X\n1\n", "'AWS_X' is reserved"),
    ],
)
def test_a_bad_table_uploads_and_submits_nothing(data_stack: Runner, tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    result = data_stack("submit", "--tasks", str(path), "--command", "true")
    assert result.exit_code == 2 and message in result.output and result.output.startswith("Error: ")
    assert keys() == [] and moto_jobs() == {} and data_stack.json("runs") == []


def test_a_stack_without_a_data_bucket_or_read_only_is_refused(
    runner: Runner, stack: StackOutputs, tmp_path: Path
):
    result = runner("submit", "--tasks", str(table(tmp_path, 3)), "--command", "true")
    assert (
        "stack 'dev' has no data bucket for the table and outputs; set batch-stacks:data.bucket"
        in result.output
    )
    read_only = tmp_path / "ro.json"
    read_only.write_text(json.dumps(replace(stack, data=DataLocation(BUCKET, "", "read")).to_json()))
    result = Runner(read_only)("submit", "--tasks", str(table(tmp_path, 3)), "--command", "true")
    assert "may only read its data bucket (data.access: read)" in result.output and result.exit_code == 2
    assert moto_jobs() == {}


def record(run: str, row: int, state: str, s3: Any = None, **fields: object) -> None:
    """A row's record as the launcher writes it (after its task started)."""
    stamp = int(time.time() * 1000) + 60_000
    body = {"row": row, "key": f"s{row}", "state": state, "runId": run, **fields}
    name = rows.record_name(row, stamp, rows.attempt_name("job-1:0", 1), state)
    (s3 or boto3.client("s3", region_name=REGION)).put_object(
        Bucket=BUCKET, Key=f"runs/{run}/rows/{name}", Body=json.dumps(body).encode()
    )


def test_results_list_records_a_thousand_a_call_and_read_only_the_rows_shown(
    data_stack: Runner, tmp_path: Path, api_calls: Counter
):
    run = data_stack.json("submit", "--tasks", str(table(tmp_path, 1_100)), "--command", "true")["runId"]
    failed = set(range(7, 1_050, 25))  # 42 rows failed
    s3 = boto3.client("s3", region_name=REGION)
    for row in range(1_050):  # rows from 1,050 on left no record (moto's tasks "succeed" at once)
        if row in failed:
            record(run, row, "failed", s3, exitCode=3, reason="exit code 3", tail=["x", f"bad input s{row}"])
        else:
            record(run, row, "succeeded" if row % 2 else "no-outputs", s3, outputs=[])
    data_stack("summary", run)  # the summary is cached: what follows is S3 alone
    api_calls.clear()
    found = data_stack.json("results", run)  # --json: every row's entry, by name
    assert api_calls["ListObjectsV2"] == 2  # 1,050 records, 1,000 a call
    # Each failed row's record, each piece once for the keys, and the run's own record.
    assert api_calls["GetObject"] == 42 + 2 + 1
    counts = found["counts"]
    assert (counts["failed"]["rows"], counts["not-run"]["rows"]) == (42, 50)
    assert counts["succeeded"]["rows"] + counts["no-outputs"]["rows"] == 1_008
    entry = found["entries"][7]
    assert (entry["key"], entry["state"], entry["exitCode"], entry["lastLine"]) == (
        "s7",
        "failed",
        3,
        "bad input s7",
    )
    late = found["entries"][1_060]
    assert (late["key"], late["state"], late["reason"]) == (
        "s1060",
        "not-run",
        "its task ended without a record of it",
    )

    api_calls.clear()
    shown = data_stack("results", run)
    assert shown.exit_code == 3
    # The 50 shown: 42 failed rows (a record read each), 8 without a record (named from one piece).
    assert api_calls["ListObjectsV2"] == 2 and api_calls["GetObject"] == 42 + 1 + 1
    assert "   7   s7       failed" in shown.output and "... and 42 more" in shown.output
    listed = data_stack("results", run, "--state", "not-run")
    assert listed.output.splitlines()[:2] == ["1050\ts1050", "1051\ts1051"] and listed.exit_code == 3


def test_results_and_collect_need_a_table_run(data_stack: Runner):
    run = data_stack.json("submit", "--array", "2")["runId"]
    result = data_stack("results", run)
    assert result.exit_code == 2 and "is not a run submitted with --tasks" in result.output


def test_retry_skip_existing_reruns_the_rows_not_done_and_a_task_lost_after_its_last_row(
    data_stack: Runner, tmp_path: Path
):
    run = data_stack.json(
        "submit", "--tasks", str(table(tmp_path, 8)), "--per-task", "2", "--command", "true"
    )
    for row in (0, 1, 2, 3, 4, 6, 7):  # row 5 never finished; task 1 ended its rows, then its host
        record(run["runId"], row, "succeeded", outputs=[])
    fail(run["jobId"], {1: SPOT, 2: SPOT})
    retried = data_stack.json("retry", run["runId"], "--skip-existing")
    assert [(s["offset"], s["size"]) for s in retried["shards"]] == [(1, 2)]  # tasks 1 and 2
    record(run["runId"], 5, "succeeded", outputs=[])  # the retry ran it (moto's tasks write nothing)
    again = data_stack("retry", run["runId"], "--skip-existing")
    assert again.exit_code == 1 and "every row of run" in again.output, again.output
