from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from runner.aws.clients import AwsTarget
from runner.aws.stack_outputs import StackOutputs
from runner.cli import cli
from runner.errors import InvalidInputError, RunnerError
from runner.runs.submit import SubmitOptions, job_name, parse_pairs, submit_params, validate
from tests.runner.conftest import REGION, Runner, moto_jobs
from tests.runner.conftest import sample_outputs as outputs

RUN_ID = "20261124-120000-abcd"


def records(state: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((state / "batch-stacks" / "runs").glob("*.json"))]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, f"dev-{RUN_ID}"),
        ("param sweep/\u03b1", f"param-sweep-{RUN_ID}"),
        ("--x__", f"x-{RUN_ID}"),
        ("!!!", f"dev-{RUN_ID}"),
        ("a" * 300, "a" * (128 - len(RUN_ID) - 1 - 6) + f"-{RUN_ID}"),  # room for a shard number
    ],
)
def test_job_names_follow_aws_rules_and_end_with_the_run_id(name, expected):
    result = job_name(name, "dev", RUN_ID)
    assert result == expected
    assert len(result) <= 128


def test_params_carry_run_id_env_tags_overrides_and_array():
    options = SubmitOptions(
        array_size=100,
        name="sweep",
        command="python run.py --fast",
        env={"B": "2", "A": "1"},
        vcpus=4,
        memory_mib=8192,
        parameters={"input": "s3://x"},
        attempts=5,
        timeout_seconds=600,
        tags={"team": "sim"},
    )
    rules = [{"action": "RETRY", "onStatusReason": "Host EC2*"}]
    params = submit_params(options, outputs(), RUN_ID, depends_on_job_ids=["abc"], evaluate_on_exit=rules)
    assert params == {
        "jobName": f"sweep-{RUN_ID}",
        "jobQueue": "arn:q",
        "jobDefinition": "arn:d:1",
        "containerOverrides": {
            "environment": [
                {"name": "RUNNER_RUN_ID", "value": RUN_ID},
                {"name": "A", "value": "1"},
                {"name": "B", "value": "2"},
            ],
            "command": ["python", "run.py", "--fast"],
            "resourceRequirements": [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "8192"}],
        },
        "tags": {"team": "sim", "batch-stacks:run-id": RUN_ID, "batch-stacks:stack": "dev"},
        "propagateTags": True,
        "parameters": {"input": "s3://x"},
        "retryStrategy": {"attempts": 5, "evaluateOnExit": rules},
        "timeout": {"attemptDurationSeconds": 600},
        "dependsOn": [{"jobId": "abc"}],
    }


def test_single_job_has_no_array_properties_and_no_deprecated_fields():
    params = submit_params(SubmitOptions(vcpus=2), outputs(), RUN_ID)
    assert "arrayProperties" not in params
    overrides = params["containerOverrides"]
    assert "vcpus" not in overrides and "memory" not in overrides


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            SubmitOptions(array_size=1),
            "--array 1 is out of range; use 2 to 1,000,000 (omit --array for a single job)",
        ),
        (SubmitOptions(array_size=1_000_001), "--array 1000001 is out of range; use 2 to 1,000,000"),
        (SubmitOptions(vcpus=64), "--vcpus 64 cannot run on stack 'dev'; use 1 to 32 (its maxVcpus)"),
        (SubmitOptions(memory_mib=64), "--memory 64 is out of range; use 128 to 1,572,864 MiB"),
        (SubmitOptions(memory_mib=99_999_999), "--memory 99999999 is out of range; use 128 to 1,572,864 MiB"),
        (SubmitOptions(attempts=11), "--attempts 11 is out of range; use 1 to 10"),
        (
            SubmitOptions(timeout_seconds=5),
            "--timeout 5 is out of range; use 60 to 1,209,600 seconds (14 days)",
        ),
        (SubmitOptions(timeout_seconds=10**9), "--timeout 1000000000 is out of range; use 60 to 1,209,600"),
        (
            SubmitOptions(tags={"k" * 129: "v"}),
            "--tag 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk' is too long",
        ),
        (SubmitOptions(tags={"team": "v" * 257}), "--tag 'team' is too long; keys take up to 128 characters"),
        (SubmitOptions(tags={f"t{i}": "v" for i in range(49)}), "too many --tag values; AWS allows 48"),
        (
            SubmitOptions(env={"X": "caf\udce9"}),
            "--env 'X' is not valid UTF-8; check the terminal's encoding",
        ),
        (SubmitOptions(command="echo \udcff"), "--command is not valid UTF-8"),
        (SubmitOptions(env={"1X": "y"}), "--env '1X' is not a variable name"),
        (SubmitOptions(env={"RUNNER_RUN_ID": "y"}), "--env RUNNER_RUN_ID is reserved"),
        (SubmitOptions(env={"AWS_BATCH_JOB_ID": "y"}), "--env AWS_BATCH_JOB_ID is reserved"),
        (SubmitOptions(tags={"aws:x": "y"}), "--tag aws:x uses a reserved prefix"),
        (SubmitOptions(command="echo 'unclosed"), "--command cannot be parsed"),
        (SubmitOptions(command="   "), "--command cannot be parsed"),
    ],
)
def test_validation_rejects_with_one_line(options, message):
    with pytest.raises(InvalidInputError) as caught:
        validate(options, outputs())
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2


def test_pairs_must_be_key_equals_value():
    assert parse_pairs(["A=1", "B=x=y", "C="], "--env") == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(RunnerError, match=r"--env takes KEY=VALUE, got 'oops'"):
        parse_pairs(["oops"], "--env")
    with pytest.raises(RunnerError, match="--tag takes KEY=VALUE"):
        parse_pairs(["=v"], "--tag")


def test_submit_json_and_record_written(runner: Runner, stack: StackOutputs, isolated_environment: Path):
    document = runner.json("submit", "--array", "100", "--env", "SWEEP=alpha", "--tag", "team=sim")
    assert set(document) == {
        "runId",
        "jobId",
        "jobIds",
        "jobName",
        "stack",
        "arraySize",
        "tasks",
        "shards",
        "parentRunId",
        "jobQueue",
        "jobDefinition",
        "code",
        "changes",
    }
    assert document["jobIds"] == [document["jobId"]]
    assert document["arraySize"] == 100
    (record,) = records(isolated_environment)
    assert record["run_id"] == document["runId"]
    assert record["state"] == "submitted"
    assert [s["job_id"] for s in record["shards"]] == [document["jobId"]]
    assert record["outputs"] == stack.to_json()
    assert (record["total_tasks"], record["array"]) == (100, True)
    assert [(s["offset"], s["size"]) for s in record["shards"]] == [(0, 100)]

    job = boto3.client("batch", region_name=REGION).describe_jobs(jobs=[document["jobId"]])["jobs"][0]
    assert job["tags"] == {
        "team": "sim",
        "batch-stacks:run-id": document["runId"],
        "batch-stacks:stack": "dev",
    }
    environment = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert environment["RUNNER_RUN_ID"] == document["runId"]
    assert (environment["RUNNER_INDEX_OFFSET"], environment["RUNNER_ARRAY_SIZE"]) == ("0", "100")
    assert environment["SWEEP"] == "alpha"
    assert job["jobQueue"] == stack.job_queue_arn


def test_submit_without_array_is_a_single_job(runner: Runner, stack: StackOutputs):
    document = runner.json("submit")
    assert document["arraySize"] is None
    assert ":" not in document["jobId"]
    assert not any(key.startswith(document["jobId"] + ":") for key in moto_jobs())


@pytest.mark.parametrize("size", ["1", "1000001", "-5"])
def test_bad_array_submits_nothing(
    runner: Runner, stack: StackOutputs, size: str, isolated_environment: Path, api_calls: Counter
):
    result = runner("submit", "--array", size)
    assert result.exit_code == 2
    assert (
        result.output
        == f"Error: --array {size} is out of range; use 2 to 1,000,000 (omit --array for a single job)\n"
    )
    assert records(isolated_environment) == []
    assert moto_jobs() == {}
    assert api_calls["SubmitJob"] == 0


def test_non_numeric_array_is_a_one_line_usage_error(runner: Runner, stack: StackOutputs):
    result = runner("submit", "--array", "lots")
    assert result.exit_code == 2
    assert result.output == (
        "Error: Invalid value for '--array': 'lots' is not a valid integer. (see `runner submit --help`)\n"
    )


def test_malformed_env_is_one_line(runner: Runner, stack: StackOutputs):
    result = runner("submit", "--env", "NOVALUE")
    assert result.output == "Error: --env takes KEY=VALUE, got 'NOVALUE'\n"


def test_disabled_queue_is_reported_before_submitting(
    runner: Runner, stack: StackOutputs, isolated_environment
):
    boto3.client("batch", region_name=REGION).update_job_queue(jobQueue=stack.job_queue_arn, state="DISABLED")
    result = runner("submit", "--array", "10")
    assert result.exit_code == 1
    assert (
        result.output
        == "Error: job queue dev-queue is DISABLED; enable it (`pulumi up -s dev`) and submit again\n"
    )
    assert records(isolated_environment) == []


def test_missing_queue_says_run_pulumi_up(runner: Runner, stack: StackOutputs):
    batch = boto3.client("batch", region_name=REGION)
    batch.update_job_queue(jobQueue=stack.job_queue_arn, state="DISABLED")
    batch.delete_job_queue(jobQueue=stack.job_queue_arn)
    result = runner("submit")
    assert result.output == "Error: job queue dev-queue does not exist; run `pulumi up -s dev`\n"


def test_missing_credentials_is_one_line(runner: Runner, stack: StackOutputs, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = runner("submit", "--array", "3")
    assert result.exit_code == 1
    assert result.output.startswith("Error: no AWS credentials found; run `aws configure`")
    assert result.output.count("\n") == 1


def test_rejected_submit_keeps_a_failed_record(
    runner: Runner, stack: StackOutputs, isolated_environment, monkeypatch
):
    original = AwsTarget.client

    def refusing(self, service):
        client = original(self, service)
        stub_error = {"Error": {"Code": "ClientException", "Message": "Job definition is INACTIVE"}}

        def refuse(**_: Any) -> None:
            from botocore.exceptions import ClientError

            raise ClientError(stub_error, "SubmitJob")

        client.meta.events.register("before-call.batch.SubmitJob", refuse)
        return client

    monkeypatch.setattr(AwsTarget, "client", refusing)
    result = runner("submit", "--array", "5")
    assert result.output == "Error: AWS SubmitJob failed (ClientException): Job definition is INACTIVE\n"
    (record,) = records(isolated_environment)
    assert record["state"] == "submit-failed"
    assert "INACTIVE" in record["error"]
    runs = runner.json("runs")
    assert runs[0]["state"] == "incomplete"


def test_interrupted_submit_is_never_orphaned(
    runner: Runner, stack: StackOutputs, isolated_environment, monkeypatch
):
    """The job reached AWS but the process died before recording its id: found again by name."""
    original = AwsTarget.client

    def dying(self, service):
        client = original(self, service)

        def die(**_: Any) -> None:
            raise KeyboardInterrupt

        client.meta.events.register("after-call.batch.SubmitJob", die)
        return client

    monkeypatch.setattr(AwsTarget, "client", dying)
    runner("submit", "--array", "4")
    (record,) = records(isolated_environment)
    assert record["state"] == "submitting" and record["shards"][0]["job_id"] is None
    monkeypatch.setattr(AwsTarget, "client", original)

    summary = runner.json("summary", record["run_id"])
    assert summary["size"] == 4
    assert summary["counts"]["SUCCEEDED"] == 4
    (recovered,) = records(isolated_environment)
    assert recovered["state"] == "submitted"
    assert [s["job_id"] for s in recovered["shards"]] == [summary["jobId"]]


def test_attempts_override_keeps_the_definitions_exit_rules(
    runner: Runner, stack: StackOutputs, isolated_environment
):
    runner.json("submit", "--array", "2", "--attempts", "5")
    (record,) = records(isolated_environment)
    assert record["request"]["retryStrategy"] == {
        "attempts": 5,
        "evaluateOnExit": [
            {"action": "RETRY", "onStatusReason": "Host EC2*"},
            {"action": "EXIT", "onReason": "*"},
        ],
    }


def test_depends_on_accepts_a_run_id(runner: Runner, stack: StackOutputs, isolated_environment):
    first = runner.json("submit", "--array", "2")
    second = runner.json("submit", "--depends-on", first["runId"])
    record = next(r for r in records(isolated_environment) if r["run_id"] == second["runId"])
    assert record["request"]["dependsOn"] == [{"jobId": first["jobId"]}]


def test_submit_makes_two_calls(runner: Runner, stack: StackOutputs, api_calls: Counter):
    runner.json("submit", "--array", "100")
    assert api_calls == Counter({"DescribeJobQueues": 1, "SubmitJob": 1})


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--bogus", "runs"],
            "Error: No such option '--bogus'. Did you mean '--outputs'? (see `runner --help`)\n",
        ),
        (["frobnicate"], "Error: No such command 'frobnicate'. (see `runner --help`)\n"),
        (["watch"], "Error: Missing argument 'RUN_OR_JOB_ID'. (see `runner watch --help`)\n"),
        (
            ["local", "up", "--port", "80"],
            "Error: Invalid value for '--port': 80 is not in the range 1024<=x<=65535. (see `runner local up --help`)\n",
        ),
    ],
)
def test_usage_mistakes_are_one_line_with_exit_code_two(args, expected):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.output == expected
