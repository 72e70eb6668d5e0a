"""A retry starts from the lineage's latest run: a fix one retry shipped is what the next retry
runs, and a code folder edited since is said in one line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from runner.aws.stack_outputs import DataLocation, StackOutputs
from tests.runner.conftest import REGION, Runner
from tests.runner.runs.test_runs_at_scale import APP, env_of, fail

OOM = ("Essential container in task exited", 137, "OutOfMemoryError: Container killed due to memory usage")


@pytest.fixture
def with_data(stack: StackOutputs, tmp_path: Path) -> Runner:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="lab-data")
    path = tmp_path / "dev.json"
    path.write_text(
        json.dumps(replace(stack, data=DataLocation("lab-data", "runs/", "read-write")).to_json())
    )
    return Runner(path)


def test_a_second_retry_runs_the_fix_the_first_one_shipped(with_data: Runner, tmp_path: Path):
    code = tmp_path / "sim"
    code.mkdir()
    (code / "sim.py").write_text("print('v1')\n")
    run = with_data.json("submit", "--array", "4", "--code", str(code), "--command", "python3 sim.py")
    fail(run["jobId"], {1: APP, 2: OOM})
    (code / "sim.py").write_text("print('v2: fixed')\n")
    fixed = with_data.json("retry", run["runId"], "--class", "app", "--code", str(code))
    assert fixed["changes"]["code"][0] == run["code"]["digest"]
    v2 = fixed["code"]["digest"]

    result = with_data("retry", run["runId"], "--class", "oom", "--memory", "4096", "--json")
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["code"]["digest"] == v2  # the lineage's latest code, not the run's first
    assert env_of(again["jobId"])["RUNNER_PACKAGE_URI"] == env_of(fixed["jobId"])["RUNNER_PACKAGE_URI"]
    assert "has changed since" not in result.stderr  # the folder still holds v2

    (code / "sim.py").write_text("print('v3: not shipped yet')\n")
    result = with_data("retry", run["runId"], "--indices", "2", "--json")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"Note: {code} has changed since run {again['runId']} packaged it ({v2[:12]}, now "
        f"{lines[0].split('now ')[1][:12]}); this retry runs {v2[:12]}: pass --code {code} to run what is there now"
    ]
    assert json.loads(result.stdout)["code"]["digest"] == v2
