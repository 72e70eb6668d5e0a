"""Runs past 10,000 tasks, failures by class across shards, retry of exactly the failed, resume."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from runner.aws.clients import AwsTarget
from runner.aws.stack_outputs import StackOutputs
from runner.runs import shards as shards_module
from tests.runner.conftest import REGION, Runner, moto_jobs

SPOT = ("Host EC2 (instance i-0a1b2c3d4e5f67890) terminated.", None, None)
OOM = ("Essential container in task exited", 137, "OutOfMemoryError: Container killed due to memory usage")
APP = ("Essential container in task exited", 2, None)


@pytest.fixture(autouse=True)
def no_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """SubmitJob pacing is tested on its own; here it would only add sleeps."""
    monkeypatch.setattr(shards_module.RateLimiter, "wait", lambda self: None)


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards of 1,000 instead of 10,000: the same logic over 25x fewer moto jobs."""
    monkeypatch.setattr(shards_module, "SHARD_SIZE", 1_000)


def fail(job_id: str, failures: dict[int, tuple[str, int | None, str | None]]) -> None:
    """Mark array children FAILED in moto the way Batch reports each kind of failure."""
    jobs = moto_jobs()
    for index, (status_reason, exit_code, container_reason) in failures.items():
        child = jobs[f"{job_id}:{index}"]
        child.status, child.job_stopped_reason, child.exit_code = "FAILED", status_reason, exit_code
        container = {
            k: v for k, v in {"exitCode": exit_code, "reason": container_reason}.items() if v is not None
        }
        child.attempts = [
            {"statusReason": status_reason, "startedAt": 1, "stoppedAt": 2, "container": container}
        ]


def env_of(job_id: str) -> dict[str, str]:
    job = moto_jobs()[job_id]
    return {e["name"]: e["value"] for e in job.container_overrides.get("environment", [])}


def test_a_run_of_25000_is_three_shards_with_offsets_and_summarizes_by_logical_index(
    runner: Runner, stack: StackOutputs, api_calls: Counter
):
    run = runner.json("submit", "--array", "25000")
    assert [(s["offset"], s["size"]) for s in run["shards"]] == [
        (0, 10_000),
        (10_000, 10_000),
        (20_000, 5_000),
    ]
    assert run["arraySize"] == 25_000 and run["tasks"] == 25_000 and len(run["jobIds"]) == 3
    for shard in run["shards"]:
        assert env_of(shard["jobId"])["RUNNER_INDEX_OFFSET"] == str(shard["offset"])
        assert env_of(shard["jobId"])["RUNNER_ARRAY_SIZE"] == "25000"
    assert api_calls["SubmitJob"] == 3
    first, second, _ = run["jobIds"]
    fail(first, {3: SPOT, 17: SPOT, 18: SPOT, 19: SPOT, 40: OOM})
    fail(second, {402: SPOT, 7: APP})  # logical 10402 and 10007

    api_calls.clear()
    result = runner("summary", run["runId"], "--json")
    assert result.exit_code == 3
    summary = json.loads(result.stdout)
    assert summary["size"] == 25_000 and summary["counts"]["FAILED"] == 7
    assert summary["failureClasses"] == {
        "spot": {"count": 5, "indices": "3,17-19,10402"},
        "oom": {"count": 1, "indices": "40"},
        "app": {"count": 1, "indices": "10007"},
    }
    assert {f["index"]: f["class"] for f in summary["failures"]} == {
        3: "spot",
        17: "spot",
        18: "spot",
        19: "spot",
        40: "oom",
        10_007: "app",
        10_402: "spot",
    }
    assert summary["spotInterruptions"] == {
        "attempts": 5,
        "vcpuHours": pytest.approx(5 * 2 / 1000 / 3600),
        "basis": "attempts of failed tasks",
    }
    # One DescribeJobs for the three parents, one for the 7 failed children.
    assert api_calls["DescribeJobs"] == 2

    text = runner("summary", run["runId"]).output
    assert "25,000 tasks, 3 array jobs" in text
    assert f"runner retry {run['runId']} --class oom --memory 4096" in text
    assert f"runner logs {run['runId']} --index 10007" in text


def test_retry_of_spot_failures_resubmits_exactly_their_indices_and_the_parent_folds_it(
    runner: Runner, stack: StackOutputs, isolated_environment: Path, small_shards: None
):
    run = runner.json("submit", "--array", "2500", "--env", "SWEEP=alpha", "--tag", "team=sim")
    first, second, _ = run["jobIds"]
    fail(first, {3: SPOT, 17: SPOT, 18: SPOT, 19: SPOT, 40: OOM})
    fail(second, {402: SPOT})

    retried = runner.json("retry", run["runId"], "--class", "spot")
    assert retried["parentRunId"] == run["runId"]
    assert [(s["offset"], s["size"]) for s in retried["shards"]] == [(3, 1), (17, 3), (1_402, 1)]
    plain, array, last = retried["jobIds"]
    assert env_of(array)["RUNNER_INDEX_OFFSET"] == "17" and env_of(last)["RUNNER_INDEX_OFFSET"] == "1402"
    env = env_of(array)
    assert env["SWEEP"] == "alpha" and env["RUNNER_ARRAY_SIZE"] == "2500"
    assert (env["RUNNER_RUN_ID"], env["RUNNER_PARENT_RUN_ID"]) == (retried["runId"], run["runId"])
    assert moto_jobs()[array].array_properties == {"size": 3}
    assert not moto_jobs()[plain].array_properties

    folded = json.loads(runner("summary", run["runId"], "--json").stdout)
    assert folded["foldedRunIds"] == [retried["runId"]]
    assert folded["counts"]["FAILED"] == 1 and folded["counts"]["SUCCEEDED"] == 2_499
    assert folded["failureClasses"] == {"oom": {"count": 1, "indices": "40"}}

    runs = {r["runId"]: r for r in runner.json("runs")}
    assert runs[run["runId"]]["retryRunIds"] == [retried["runId"]]
    assert runs[retried["runId"]]["parentRunId"] == run["runId"] and runs[retried["runId"]]["tasks"] == 5
    assert f"retry of {run['runId']}" in runner("runs").output

    again = runner.json("retry", run["runId"], "--class", "oom", "--memory", "4096")
    assert again["shards"] == [{"offset": 40, "size": 1, "jobId": again["jobId"]}]
    job = moto_jobs()[again["jobId"]]
    assert {"type": "MEMORY", "value": "4096"} in job.container_overrides["resourceRequirements"]
    done = runner("summary", run["runId"])
    assert done.exit_code == 0, done.output
    assert "latest outcome per index, with retry runs" in done.output
    nothing = runner("retry", run["runId"])
    assert nothing.exit_code == 1
    assert nothing.output == f"Error: run {run['runId']} has no failed tasks to retry\n"


def test_retry_can_move_to_another_stack_and_checks_its_limits(
    runner: Runner, stack: StackOutputs, tmp_path: Path
):
    run = runner.json("submit", "--array", "10")
    fail(run["jobId"], {4: SPOT, 5: APP})
    prod = tmp_path / "prod.json"
    prod.write_text(json.dumps({**stack.to_json(), "purchaseModel": "on-demand", "maxVcpus": 256}))
    moved = runner.json("retry", run["runId"], "--class", "spot", "--outputs", str(prod), "--stack", "prod")
    assert moved["stack"] == "prod" and moved["shards"][0]["offset"] == 4
    described = boto3.client("batch", region_name=REGION).describe_jobs(jobs=[moved["jobId"]])["jobs"][0]
    assert described["tags"]["batch-stacks:stack"] == "prod"
    too_big = runner("retry", run["runId"], "--class", "app", "--vcpus", "64")
    assert too_big.exit_code == 2
    assert too_big.output == "Error: --vcpus 64 cannot run on stack 'dev'; use 1 to 32 (its maxVcpus)\n"
    wrong = runner("retry", run["runId"], "--class", "oom")
    assert wrong.output.startswith(f"Error: none of run {run['runId']}'s failed tasks match --class oom")
    unknown = runner("retry", run["runId"], "--class", "gremlins")
    assert unknown.exit_code == 2 and "is not a failure class; use spot, oom" in unknown.output


def refuse_submit_after(count: int, error: Exception) -> Any:
    """A client factory whose SubmitJob calls after the first ``count`` raise ``error``."""
    original = AwsTarget.client
    seen = Counter()

    def client(self: AwsTarget, service: str) -> Any:
        made = original(self, service)

        def before(**_: Any) -> None:
            seen["SubmitJob"] += 1
            if seen["SubmitJob"] > count:
                raise error

        made.meta.events.register("before-call.batch.SubmitJob", before)
        return made

    return client


def test_a_multi_shard_submit_stopped_half_way_is_completed_by_resume(
    runner: Runner, stack: StackOutputs, monkeypatch: pytest.MonkeyPatch, small_shards: None
):
    original = AwsTarget.client
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "SubmitJob"
    )
    monkeypatch.setattr(AwsTarget, "client", refuse_submit_after(1, throttled))
    result = runner("submit", "--array", "2500")
    assert result.exit_code == 1
    run_id = result.output.split("of run ")[1].split()[0]
    assert result.output.endswith(
        f"1 of 3 shards of run {run_id} were submitted: `runner submit --resume {run_id}` submits the rest\n"
    )
    (listed,) = runner.json("runs")
    assert (listed["state"], listed["shardsSubmitted"], listed["shards"]) == ("incomplete", 1, 3)
    assert "1 of 3 shards submitted" in runner("runs").output

    monkeypatch.setattr(AwsTarget, "client", original)
    resumed = runner.json("submit", "--resume", run_id)
    assert [s["offset"] for s in resumed["shards"]] == [0, 1_000, 2_000] and all(resumed["jobIds"])
    parents = [j for j in moto_jobs().values() if ":" not in j.job_id]
    assert len(parents) == 3  # nothing submitted twice
    assert runner.json("runs")[0]["state"] == "running"
    again = runner("submit", "--resume", run_id)
    assert again.output.startswith(f"Error: run {run_id} is complete: all 3 shard(s) were submitted")


def test_a_shard_that_reached_aws_unrecorded_is_found_by_name_not_submitted_twice(
    runner: Runner, stack: StackOutputs, monkeypatch: pytest.MonkeyPatch, small_shards: None
):
    original = AwsTarget.client

    def dying(self: AwsTarget, service: str) -> Any:
        made = original(self, service)
        calls = Counter()

        def after(**_: Any) -> None:
            calls["SubmitJob"] += 1
            if calls["SubmitJob"] == 2:
                raise KeyboardInterrupt  # the second shard exists; its id never reaches the record

        made.meta.events.register("after-call.batch.SubmitJob", after)
        return made

    monkeypatch.setattr(AwsTarget, "client", dying)
    result = runner("submit", "--array", "2500")
    assert result.exit_code == 130
    run_id = result.output.split("submitting run ")[1].split()[0]
    assert "(1 of 3 shards recorded); `runner submit --resume" in result.output
    monkeypatch.setattr(AwsTarget, "client", original)
    resumed = runner.json("submit", "--resume", run_id)
    assert len(set(resumed["jobIds"])) == 3
    assert len([j for j in moto_jobs().values() if ":" not in j.job_id]) == 3


def test_logs_index_is_the_logical_index_and_finds_its_latest_retry(
    runner: Runner, stack: StackOutputs, small_shards: None
):
    run = runner.json("submit", "--array", "2500")
    fail(run["jobIds"][1], {5: APP})
    first = runner("logs", run["runId"], "--index", "1005")
    assert first.output.startswith(f"Error: log stream dev-job/default/{run['jobIds'][1]}:5 is not in")
    retried = runner.json("retry", run["runId"])
    latest = runner("logs", run["runId"], "--index", "1005")
    assert latest.output.startswith(f"Error: log stream dev-job/default/{retried['jobId']} is not in")
    out_of_run = runner("logs", retried["runId"], "--index", "7")
    assert out_of_run.exit_code == 2
    assert out_of_run.output == f"Error: run {retried['runId']} did not run index 7 (it ran 1005)\n"


def test_cancel_stops_every_shard(
    runner: Runner, stack: StackOutputs, api_calls: Counter, small_shards: None
):
    run = runner.json("submit", "--array", "2500")
    for job_id in run["jobIds"]:
        for child in moto_jobs()[job_id]._child_jobs[:2]:
            child.status = "RUNNABLE"
    cancelled = runner.json("cancel", run["runId"], "--yes")
    assert cancelled["cancelled"] == 6
    assert api_calls["CancelJob"] == 3 and api_calls["DescribeJobs"] == 1


def test_a_run_aws_forgot_before_it_was_complete_says_so(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "5")
    moto_jobs()[f"{run['jobId']}:1"].status = "RUNNING"
    runner.json("summary", run["runId"])  # seen once, not complete
    moto_jobs().clear()
    result = runner("summary", run["runId"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: AWS no longer has the jobs of run {run['runId']} (it keeps finished jobs for at least 7 days) "
        "and the run was not complete when last summarized, so its outcome is unknown; "
        "when last seen: RUNNING 1, SUCCEEDED 4 of 5\n"
    )


def test_a_retry_carries_a_fix_and_its_record_says_what_changed(
    runner: Runner, stack: StackOutputs, tmp_path: Path, api_calls: Counter
):
    from dataclasses import replace

    from runner.aws.stack_outputs import DataLocation
    from runner.runs.launch import BOOTSTRAP

    boto3.client("s3", region_name=REGION).create_bucket(Bucket="lab-data")
    with_data = tmp_path / "with-data.json"
    with_data.write_text(
        json.dumps(replace(stack, data=DataLocation("lab-data", "runs/", "read-write")).to_json())
    )
    runner = Runner(with_data)
    run = runner.json("submit", "--array", "4", "--command", "python3 sim.py --fast", "--env", "MODE=a")
    fail(run["jobId"], {1: APP, 2: APP})
    assert env_of(run["jobId"]).get("RUNNER_COMMAND") is None  # a plain run: no launcher

    code = tmp_path / "sim"
    code.mkdir()
    (code / "sim.py").write_text("print('fixed')\n")
    api_calls.clear()
    retried = runner.json(
        "retry",
        run["runId"],
        "--code",
        str(code),
        "--command",
        "python3 sim.py",
        "--env",
        "MODE=b",
        "--env",
        "NEW=1",
    )
    code_keys = [
        o["Key"]
        for o in boto3.client("s3", region_name=REGION).list_objects_v2(
            Bucket="lab-data", Prefix="runs/code/"
        )["Contents"]
    ]
    assert len(code_keys) == 1 and api_calls["HeadObject"] == 1  # the package, once
    digest = retried["code"]["digest"]
    assert retried["changes"] == {
        "code": [None, digest],
        "command": ["python3 sim.py --fast", "python3 sim.py"],
        "env": {"MODE": ["a", "b"], "NEW": [None, "1"]},
    }
    for job_id in retried["jobIds"]:
        job = moto_jobs()[job_id]
        env = env_of(job_id)
        assert job.container_overrides["command"] == ["python3", "-c", BOOTSTRAP]
        assert json.loads(env["RUNNER_COMMAND"]) == ["python3", "sim.py"]
        assert (env["RUNNER_CODE_DIGEST"], env["MODE"], env["NEW"]) == (digest, "b", "1")
    listed = {r["runId"]: r for r in runner.json("runs")}
    assert listed[retried["runId"]]["changes"] == retried["changes"]
    assert listed[retried["runId"]]["code"]["digest"] == digest and listed[run["runId"]]["code"] is None

    api_calls.clear()
    again = runner.json("retry", retried["runId"], "--indices", "1", "--env", "MODE=c")
    assert api_calls["HeadObject"] == 0  # the code is carried over, not shipped again
    assert again["code"]["digest"] == digest and again["changes"] == {"env": {"MODE": ["b", "c"]}}
    assert json.loads(env_of(again["jobId"])["RUNNER_COMMAND"]) == ["python3", "sim.py"]


def test_a_bad_fix_is_one_line_and_submits_nothing(runner: Runner, api_calls: Counter):
    run = runner.json("submit", "--array", "3")
    fail(run["jobId"], {0: APP})
    api_calls.clear()
    for args, message in [
        (
            ["--env", "RUNNER_RUN_ID=x"],
            "Error: --env RUNNER_RUN_ID is reserved (RUNNER_*, AWS_BATCH*, ECS_* are set by the runner and Batch); choose another name\n",
        ),
        (
            ["--command", "'unclosed"],
            "Error: --command cannot be parsed (No closing quotation); quote it as one string\n",
        ),
        (
            ["--code", "/no/such/code"],
            "Error: stack 'dev' has no data bucket to ship --code through; set batch-stacks:data.bucket in "
            "Pulumi.dev.yaml and run `pulumi up`\n",
        ),
    ]:
        result = runner("retry", run["runId"], *args)
        assert (result.exit_code, result.output) == (2, message)
    assert api_calls["SubmitJob"] == 0
