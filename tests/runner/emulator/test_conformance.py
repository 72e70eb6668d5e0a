"""The emulator answers like AWS Batch to any client: array dependencies, jobs it cannot run,
DescribeJobs' fields, the requests AWS refuses, errors in AWS's shape, and the AWS CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.runner.emulator.conftest import batch, submit, wait_for

pytestmark = pytest.mark.emulator
INDEX = "$AWS_BATCH_JOB_ARRAY_INDEX"


def children(client: Any, job_id: str, size: int) -> list[dict]:
    return [wait_for(client, f"{job_id}:{i}") for i in range(size)]


def test_n_to_n_child_waits_for_its_own_counterpart_and_fails_only_with_it(local):
    client = batch(local)
    # Child 1 fails at once; child 2 takes a second; child 0 succeeds at once.
    first = submit(
        local,
        "prod",
        ["sh", "-c", f"[ {INDEX} = 1 ] && exit 4; [ {INDEX} = 2 ] && sleep 1; exit 0"],
        arrayProperties={"size": 3},
    )
    second = submit(
        local, "prod", ["true"], arrayProperties={"size": 3}, dependsOn=[{"jobId": first, "type": "N_TO_N"}]
    )
    done = children(client, second, 3)
    upstream = children(client, first, 3)
    assert [c["status"] for c in done] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert done[1]["statusReason"] == "Dependent Job failed" and "startedAt" not in done[1]
    assert done[0]["startedAt"] < upstream[2]["stoppedAt"]  # did not wait for the whole array
    assert done[2]["startedAt"] >= upstream[2]["stoppedAt"]
    assert [c["arrayProperties"] for c in done] == [{"index": 0}, {"index": 1}, {"index": 2}]


def test_sequential_array_runs_in_order_and_a_failure_stops_the_rest(local):
    client = batch(local)
    ordered = submit(
        local,
        "prod",
        ["sh", "-c", "sleep 0.2"],
        arrayProperties={"size": 3},
        dependsOn=[{"type": "SEQUENTIAL"}],
    )
    after = submit(local, "prod", ["true"])  # a plain job behind it is not held up
    done = children(client, ordered, 3)
    assert [c["status"] for c in done] == ["SUCCEEDED"] * 3
    assert done[0]["stoppedAt"] <= done[1]["startedAt"] and done[1]["stoppedAt"] <= done[2]["startedAt"]
    assert wait_for(client, after)["status"] == "SUCCEEDED"
    assert wait_for(client, ordered)["status"] == "SUCCEEDED"

    broken = submit(
        local,
        "prod",
        ["sh", "-c", f"[ {INDEX} != 1 ]"],
        arrayProperties={"size": 3},
        dependsOn=[{"type": "SEQUENTIAL"}],
    )
    assert [(c["status"], c.get("statusReason")) for c in children(client, broken, 3)][1:] == [
        ("FAILED", "Essential container in task exited"),
        ("FAILED", "Dependent Job failed"),
    ]


def test_sequential_child_waits_for_its_predecessors_retries(local):
    client = batch(local)
    # Child 0 fails its first attempt and succeeds on the retry; child 1 must wait for that.
    script = f"if [ {INDEX} = 0 ] && [ $AWS_BATCH_JOB_ATTEMPT = 1 ]; then exit 1; fi"
    job = submit(
        local,
        "prod",
        ["sh", "-c", script],
        arrayProperties={"size": 2},
        dependsOn=[{"type": "SEQUENTIAL"}],
        retryStrategy={"attempts": 2},
    )
    zero, one = children(client, job, 2)
    assert zero["status"] == one["status"] == "SUCCEEDED"
    assert len(zero["attempts"]) == 2 and one["startedAt"] >= zero["stoppedAt"]


def test_jobs_that_cannot_proceed_never_block_the_ones_behind_them(local):
    client = batch(local)
    queue = local["stacks"]["prod"]
    multinode = client.register_job_definition(
        jobDefinitionName="mnp",
        type="multinode",
        nodeProperties={
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [
                {"targetNodes": "0:1", "container": {"image": "busybox", "vcpus": 1, "memory": 128}}
            ],
        },
    )["jobDefinitionArn"]
    unsupported = client.submit_job(jobName="mnp", jobQueue=queue["jobQueueArn"], jobDefinition=multinode)[
        "jobId"
    ]
    oversized = submit(
        local, "dev", ["true"], overrides={"resourceRequirements": [{"type": "VCPU", "value": "64"}]}
    )
    blocked = submit(
        local, "dev", ["true"], dependsOn=[{"jobId": oversized}]
    )  # waits on a job that never runs
    plain = submit(local, "prod", ["true"])
    assert wait_for(client, plain)["status"] == "SUCCEEDED"
    failed = wait_for(client, unsupported)
    assert failed["status"] == "FAILED" and "not supported by the emulator" in failed["statusReason"]
    assert "multi-node" in failed["statusReason"]
    assert wait_for(client, oversized, ("RUNNABLE",))["status"] == "RUNNABLE"
    assert client.describe_jobs(jobs=[blocked])["jobs"][0]["status"] == "PENDING"
    client.terminate_job(jobId=oversized, reason="test over")
    assert wait_for(client, blocked)["status"] == "FAILED"


def test_describe_jobs_describes_without_changing_and_reports_the_exit(local):
    client = batch(local)
    job = submit(
        local,
        "prod",
        ["sh", "-c", "exit 3"],
        arrayProperties={"size": 2},
        overrides={"environment": [{"name": "MINE", "value": "1"}]},
    )
    wait_for(client, f"{job}:1")
    first = client.describe_jobs(jobs=[f"{job}:1"])["jobs"][0]
    again = client.describe_jobs(jobs=[f"{job}:1"])["jobs"][0]
    environment = again["container"]["environment"]
    assert environment == first["container"]["environment"]
    assert [e["name"] for e in environment].count("AWS_BATCH_JOB_ID") == 1
    assert {"name": "MINE", "value": "1"} in environment
    assert again["container"]["exitCode"] == 3 == again["attempts"][-1]["container"]["exitCode"]
    assert again["arrayProperties"] == {"index": 1}


@pytest.mark.parametrize(
    ("name", "array"),
    [("has.dot", None), ("-leading", None), ("n" * 129, None), ("ok", 0), ("ok", 1), ("ok", 10_001)],
)
def test_requests_aws_refuses_are_refused_and_create_nothing(local, name, array):
    client = batch(local)
    queue = local["stacks"]["prod"]
    params: dict[str, Any] = {"arrayProperties": {"size": array}} if array is not None else {}
    with pytest.raises(ClientError) as caught:
        client.submit_job(
            jobName=name, jobQueue=queue["jobQueueArn"], jobDefinition=queue["jobDefinitionArn"], **params
        )
    assert caught.value.response["Error"]["Code"] == "ClientException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    listed = client.list_jobs(jobQueue=queue["jobQueueArn"], filters=[{"name": "JOB_NAME", "values": [name]}])
    assert listed["jobSummaryList"] == []


@pytest.mark.parametrize("operation", ["cancel_job", "terminate_job"])
def test_an_empty_job_id_or_reason_is_a_client_error(local, operation):
    client = batch(local)
    for arguments in ({"jobId": "", "reason": "r"}, {"jobId": "x", "reason": ""}):
        with pytest.raises(ClientError) as caught:
            getattr(client, operation)(**arguments)
        assert caught.value.response["Error"]["Code"] == "ClientException"


def test_an_operation_the_emulator_lacks_is_a_client_error_naming_it(local):
    with pytest.raises(ClientError) as caught:
        batch(local).get_job_queue_snapshot(jobQueue=local["stacks"]["prod"]["jobQueueArn"])
    assert caught.value.response["Error"]["Code"] == "ClientException"
    assert "getjobqueuesnapshot is not supported by the emulator" in caught.value.response["Error"]["Message"]


def test_eks_properties_override_reaches_the_job(local):
    client = batch(local)
    definition = client.register_job_definition(
        jobDefinitionName="eks",
        type="container",
        eksProperties={"podProperties": {"containers": [{"image": "busybox", "command": ["true"]}]}},
    )["jobDefinitionArn"]
    override = {"podProperties": {"containers": [{"command": ["echo", "override"]}]}}
    job_id = client.submit_job(
        jobName="eks",
        jobQueue=local["stacks"]["prod"]["jobQueueArn"],
        jobDefinition=definition,
        eksPropertiesOverride=override,
    )["jobId"]
    job = wait_for(client, job_id)
    assert job["status"] == "FAILED" and "EKS jobs (eksProperties) are not supported" in job["statusReason"]
    assert job["eksProperties"]["podProperties"]["containers"][0]["command"] == ["echo", "override"]


@pytest.mark.skipif(
    shutil.which("aws", path=str(Path(sys.executable).parent)) is None, reason="no AWS CLI (pip's awscli)"
)
def test_the_aws_cli_submits_watches_and_reads_logs_as_on_aws(local, tmp_path: Path):
    access, secret = local["state"].credentials()
    queue = local["stacks"]["prod"]
    environment = {
        **{k: v for k, v in os.environ.items() if k != "AWS_SESSION_TOKEN"},
        "AWS_ENDPOINT_URL": local["info"].endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": access,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }
    aws = str(Path(sys.executable).parent / "aws")

    def cli(*args: str) -> dict:
        done = subprocess.run(
            [aws, *args, "--output", "json"], env=environment, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout or "{}")

    queues = cli("batch", "describe-job-queues")["jobQueues"]
    assert queue["jobQueueArn"] in [q["jobQueueArn"] for q in queues]
    job_id = cli(
        "batch",
        "submit-job",
        "--job-name",
        "from-the-cli",
        "--job-queue",
        queue["jobQueueName"],
        "--job-definition",
        queue["jobDefinitionArn"],
        "--array-properties",
        "size=2",
        "--container-overrides",
        json.dumps({"command": ["sh", "-c", f"echo hello {INDEX}"]}),
    )["jobId"]
    deadline = time.monotonic() + 30
    while cli("batch", "describe-jobs", "--jobs", job_id)["jobs"][0]["status"] != "SUCCEEDED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    child = cli("batch", "describe-jobs", "--jobs", f"{job_id}:1")["jobs"][0]
    events = cli(
        "logs",
        "get-log-events",
        "--log-group-name",
        queue["logGroupName"],
        "--log-stream-name",
        child["container"]["logStreamName"],
    )["events"]
    assert [e["message"] for e in events] == ["hello 1"]
    refused = subprocess.run(
        [
            aws,
            "batch",
            "submit-job",
            "--job-name",
            "x",
            "--job-queue",
            queue["jobQueueName"],
            "--job-definition",
            queue["jobDefinitionArn"],
        ],
        env={**environment, "AWS_ACCESS_KEY_ID": "AKIAOTHER"},
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "UnrecognizedClientException" in refused.stderr
