"""`submit --tasks` against moto: what is uploaded and submitted, what is refused before either,
and `results` reading outputs page by page."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from runner.aws.stack_outputs import DataLocation, StackOutputs
from tests.runner.conftest import REGION, Runner, moto_jobs

BUCKET = "lab-data"


@pytest.fixture
def data_stack(stack: StackOutputs, tmp_path: Path) -> Runner:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    with_data = replace(stack, data=DataLocation(BUCKET, "runs/", "read-write"))
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(with_data.to_json()))
    return Runner(path)


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
    assert api_calls["PutObject"] == 3 and api_calls["SubmitJob"] == 1
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
    assert job.container_overrides["command"] == ["python3", "/opt/batch-stacks/launcher.py"]
    record = data_stack.json("runs")[0]
    assert record["runId"] == run


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


def test_results_page_through_outputs_and_never_call_per_row(
    data_stack: Runner, tmp_path: Path, api_calls: Counter
):
    run = data_stack.json("submit", "--tasks", str(table(tmp_path, 2_500)), "--command", "true")["runId"]
    s3 = boto3.client("s3", region_name=REGION)
    for row in range(0, 2_500, 2):  # every other row left a file
        s3.put_object(Bucket=BUCKET, Key=f"runs/{run}/out/{row}/result.txt", Body=b"12345")
    api_calls.clear()
    results = data_stack.json("results", run)
    assert api_calls["ListObjectsV2"] == 2  # 1,250 files, 1,000 a page
    groups = results["groups"]
    assert (
        groups["succeeded with outputs"]["rows"] == 1_250
        and groups["succeeded without outputs"]["rows"] == 1_250
    )
    assert groups["succeeded with outputs"]["ranges"].startswith("0,2,4,")
    assert results["outputFiles"] == 1_250 and results["outputBytes"] == 6_250
    assert data_stack("results", run).exit_code == 0


def test_results_and_collect_need_a_table_run(data_stack: Runner):
    run = data_stack.json("submit", "--array", "2")["runId"]
    result = data_stack("results", run)
    assert result.exit_code == 2 and "is not a run submitted with --tasks" in result.output
