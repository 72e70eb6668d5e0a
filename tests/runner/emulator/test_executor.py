"""The emulator runs tasks for real: processes, exit codes, OOM, timeouts, Spot, retries, logs."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from runner.cli import cli
from runner.local.process import stop_server
from tests.runner.emulator.conftest import SLOTS, batch, run, small_definition, submit, wait_for
from tests.runner.emulator.conftest import client as emulator_client

pytestmark = pytest.mark.emulator


def test_tasks_run_with_batchs_environment_and_exit_codes_and_their_logs_are_readable(local):
    script = (
        "i=$(( ${RUNNER_INDEX_OFFSET:-0} + ${AWS_BATCH_JOB_ARRAY_INDEX:-0} )); "
        'echo "task $i of $RUNNER_ARRAY_SIZE job=$AWS_BATCH_JOB_ID attempt=$AWS_BATCH_JOB_ATTEMPT '
        'queue=$AWS_BATCH_JQ_NAME ce=$AWS_BATCH_CE_NAME param=$1 cwd=$(ls -A | wc -l)"; '
        "touch left-behind; exit $(( i == 2 ? 3 : 0 ))"
    )
    result = run(
        "--stack",
        "prod",
        "submit",
        "--array",
        "3",
        "--param",
        "greeting=hello",
        "--json",
        "--command",
        f"sh -c '{script}' sh Ref::greeting",
        "--wait",
        "--interval",
        "1",
    )
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    summary = document["summary"]
    assert summary["counts"]["SUCCEEDED"] == 2 and summary["counts"]["FAILED"] == 1
    (failure,) = summary["failures"]
    assert (failure["index"], failure["exitCode"], failure["class"]) == (2, 3, "app")
    assert failure["statusReason"] == "Essential container in task exited"
    assert summary["runtimeSeconds"]["max"] > 0
    log = run("logs", document["runId"], "--index", "1", "--json")
    (event,) = json.loads(log.stdout)["events"]
    job_id = document["jobId"]
    assert event["message"].startswith(f"task 1 of 3 job={job_id}:1 attempt=1 queue=batch-stacks-prod-queue-")
    assert "param=hello" in event["message"] and event["message"].endswith("cwd=0")  # a fresh directory
    stream = json.loads(log.stdout)["logStreamName"]
    assert stream.startswith("job/default/") and len(stream.rsplit("/", 1)[1]) == 32


def test_a_memory_hog_is_killed_as_out_of_memory(local):
    hog = [sys.executable, "-c", "import time; b = bytearray(400 * 1024 * 1024); time.sleep(30)"]
    client = batch(local)
    job = wait_for(
        client,
        submit(local, "prod", hog, overrides={"resourceRequirements": [{"type": "MEMORY", "value": "128"}]}),
    )
    assert job["status"] == "FAILED"
    attempt = job["attempts"][-1]
    assert attempt["container"]["reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert attempt["container"]["exitCode"] == 137


def test_an_attempt_past_its_timeout_is_stopped(local):
    client = batch(local)
    started = time.monotonic()
    job = wait_for(client, submit(local, "prod", ["sleep", "30"], timeout={"attemptDurationSeconds": 1}))
    assert job["status"] == "FAILED" and job["statusReason"] == "Job attempt duration exceeded timeout"
    assert job["attempts"][-1]["container"]["exitCode"] == 143  # SIGTERM, honoured within the grace
    assert time.monotonic() - started < 10


def test_users_cannot_submit_an_attempt_duration_below_the_emulators_minimum(local):
    with pytest.raises(client_error(), match="attemptDurationSeconds must be at least 1"):
        submit(local, "prod", ["true"], timeout={"attemptDurationSeconds": 0})


def client_error() -> type[Exception]:
    from botocore.exceptions import ClientError

    return ClientError


def test_spot_reclaims_are_retried_by_the_definitions_rule(local):
    result = run(
        "--stack",
        "dev",
        "submit",
        "--array",
        "8",
        "--command",
        "sleep 0.6",
        "--json",
        "--wait",
        "--interval",
        "1",
    )
    document = json.loads(result.stdout)
    client = batch(local)
    children = client.describe_jobs(jobs=[f"{document['jobId']}:{i}" for i in range(8)])["jobs"]
    reclaimed = [
        a for c in children for a in c["attempts"] if a["statusReason"].startswith("Host EC2 (instance i-")
    ]
    assert reclaimed, "with half of Spot attempts reclaimed some must be"
    retried_then_done = [c for c in children if len(c["attempts"]) > 1 and c["status"] == "SUCCEEDED"]
    assert retried_then_done, "the lab's rule retries a reclaimed attempt"
    for child in children:
        assert len(child["attempts"]) <= 3  # the definition's retryAttempts
        if child["status"] == "FAILED":
            assert child["statusReason"].startswith("Host EC2")
    summary = json.loads(run("summary", document["runId"], "--attempts", "--json").stdout)
    assert summary["spotInterruptions"]["attempts"] == len(reclaimed)


def test_depends_on_waits_and_a_failed_dependency_fails_the_job(local):
    client = batch(local)
    first = submit(local, "prod", ["sleep", "0.8"])
    second = submit(local, "prod", ["true"], dependsOn=[{"jobId": first}])
    assert wait_for(client, second, ("PENDING",), timeout=2)["status"] == "PENDING"
    assert wait_for(client, second)["status"] == "SUCCEEDED"
    assert (
        client.describe_jobs(jobs=[first])["jobs"][0]["stoppedAt"]
        <= (client.describe_jobs(jobs=[second])["jobs"][0]["startedAt"])
    )
    failing = submit(local, "prod", ["false"])
    blocked = submit(local, "prod", ["true"], dependsOn=[{"jobId": failing}])
    job = wait_for(client, blocked)
    assert (job["status"], job["statusReason"], job["attempts"]) == ("FAILED", "Dependent Job failed", [])


def test_capacity_limits_concurrency_and_an_oversized_job_waits_with_the_reason(local):
    client = batch(local)
    array = submit(local, "prod", ["sleep", "0.5"], arrayProperties={"size": 6})
    peak = 0
    while True:
        summary = client.describe_jobs(jobs=[array])["jobs"][0]["arrayProperties"]["statusSummary"]
        peak = max(peak, summary["RUNNING"] + summary["STARTING"])
        if summary["SUCCEEDED"] + summary["FAILED"] == 6:
            break
        time.sleep(0.05)
    assert 1 <= peak <= SLOTS
    huge = submit(
        local, "prod", ["true"], overrides={"resourceRequirements": [{"type": "VCPU", "value": "512"}]}
    )
    time.sleep(0.5)
    job = client.describe_jobs(jobs=[huge])["jobs"][0]
    assert job["status"] == "RUNNABLE"
    assert job["statusReason"].startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    client.cancel_job(jobId=huge, reason="too big")
    assert wait_for(client, huge)["status"] == "FAILED"


def test_cancel_and_terminate_stop_what_they_should(local):
    client = batch(local)
    array = submit(local, "prod", ["sleep", "30"], arrayProperties={"size": SLOTS + 2})
    deadline = time.monotonic() + 10
    while (
        client.describe_jobs(jobs=[array])["jobs"][0]["arrayProperties"]["statusSummary"]["RUNNING"] < SLOTS
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.cancel_job(jobId=array, reason="Cancelled by runner: enough")
    time.sleep(0.3)
    summary = client.describe_jobs(jobs=[array])["jobs"][0]["arrayProperties"]["statusSummary"]
    assert (summary["FAILED"], summary["RUNNING"]) == (2, SLOTS)  # CancelJob leaves running ones alone
    client.terminate_job(jobId=array, reason="Cancelled by runner: stop")
    parent = wait_for(client, array)
    assert parent["status"] == "FAILED"
    children = client.describe_jobs(jobs=[f"{array}:{i}" for i in range(SLOTS + 2)])["jobs"]
    assert {c["statusReason"] for c in children} == {
        "Cancelled by runner: enough",
        "Cancelled by runner: stop",
    }
    assert not any("sleep 30" in " ".join(p) for p in task_processes())


def test_a_submit_not_signed_with_the_emulators_keys_is_refused_as_aws_does(local, tmp_path: Path):
    marker = tmp_path / "ran"
    outputs = local["stacks"]["prod"]
    request = {
        "jobName": "intruder",
        "jobQueue": outputs["jobQueueArn"],
        "jobDefinition": outputs["jobDefinitionArn"],
        "containerOverrides": {"command": ["touch", str(marker)]},
    }
    access, _ = local["state"].credentials()
    refused = {
        "UnrecognizedClientException": batch(local, keys=("AKIAOTHERUSER", "not-the-secret")),
        "InvalidSignatureException": batch(
            local, keys=(access, "a-guessed-secret")
        ),  # the key id is not enough
    }
    before = batch(local).list_jobs(jobQueue=outputs["jobQueueArn"], jobStatus="SUCCEEDED")["jobSummaryList"]
    for code, client in refused.items():
        with pytest.raises(ClientError) as caught:
            client.submit_job(**request)
        assert caught.value.response["Error"]["Code"] == code
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    unsigned = urllib.request.Request(
        f"{local['info'].endpoint_url}/v1/submitjob", data=json.dumps(request).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught_unsigned:
        urllib.request.urlopen(unsigned, timeout=5)
    assert caught_unsigned.value.code == 403
    assert json.loads(caught_unsigned.value.read())["__type"] == "MissingAuthenticationTokenException"
    time.sleep(0.5)
    after = batch(local).list_jobs(jobQueue=outputs["jobQueueArn"], jobStatus="SUCCEEDED")["jobSummaryList"]
    assert not marker.exists() and len(after) == len(before)
    assert not [
        j
        for j in batch(local).list_jobs(jobQueue=outputs["jobQueueArn"], jobStatus="FAILED")["jobSummaryList"]
        if j["jobName"] == "intruder"
    ]
    assert oct(local["state"].credentials_file.stat().st_mode & 0o777) == "0o600"
    exports = CliRunner().invoke(cli, ["local", "env"]).output
    assert (
        f"export AWS_ACCESS_KEY_ID={access}" in exports
        and "export AWS_ENDPOINT_URL=http://127.0.0.1:" in exports
    )


def task_processes() -> list[list[str]]:
    """Command lines of processes whose parent is an emulator (its task processes)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            parent_cmd = Path(f"/proc/{stat[1]}/cmdline").read_bytes()
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if b"runner.emulator.server" in parent_cmd and stat[0] != "Z":
            found.append([part.decode(errors="replace") for part in cmd if part])
    return found


def why(*args: str) -> dict:
    result = run("why", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_why_names_an_oversized_job_a_disabled_queue_and_a_disabled_compute_environment(local):
    client = batch(local)
    outputs = local["stacks"]["prod"]
    huge = submit(
        local, "prod", ["true"], overrides={"resourceRequirements": [{"type": "VCPU", "value": "512"}]}
    )
    time.sleep(0.3)
    verdict = why(huge, "--stack", "prod")
    assert verdict["cause"] == "resource-requirement"
    assert verdict["verdict"].startswith(
        "each task asks for 512 vCPU and 4096 MiB, more than the compute "
        "environments can give (at most 256 vCPUs)"
    )
    client.cancel_job(jobId=huge, reason="too big")

    client.update_job_queue(jobQueue=outputs["jobQueueArn"], state="DISABLED")
    try:
        waiting = submit(local, "prod", ["true"])
        time.sleep(0.3)
        assert client.describe_jobs(jobs=[waiting])["jobs"][0]["status"] == "RUNNABLE"
        verdict = why(waiting, "--stack", "prod")
        assert (
            verdict["cause"] == "queue-disabled"
            and "is DISABLED, so nothing is scheduled" in verdict["verdict"]
        )
        assert why("--queue", "--stack", "prod")["cause"] == "queue-disabled"
    finally:
        client.update_job_queue(jobQueue=outputs["jobQueueArn"], state="ENABLED")
    assert wait_for(client, waiting)["status"] == "SUCCEEDED"  # scheduled once enabled again

    (environment,) = outputs["computeEnvironmentArns"]
    client.update_compute_environment(computeEnvironment=environment, state="DISABLED")
    try:
        waiting = submit(local, "prod", ["true"])
        time.sleep(0.3)
        verdict = why(waiting, "--stack", "prod")
        assert verdict["cause"] == "compute-disabled"
        assert any(
            line.startswith("compute environment batch-stacks-prod-compute-") and "DISABLED" in line
            for line in verdict["evidence"]
        )
    finally:
        client.update_compute_environment(computeEnvironment=environment, state="ENABLED")
    assert wait_for(client, waiting)["status"] == "SUCCEEDED"


PROBE = """
import json, os, urllib.request
import boto3
out = {"env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "ECS_", "HOME"))}}
out["arn"] = boto3.client("sts").get_caller_identity()["Arn"]
s3 = boto3.client("s3")
for name, bucket, key in json.loads(os.environ["TRIES"]):
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        out[name] = "allowed"
    except Exception as err:
        out[name] = getattr(err, "response", {}).get("Error", {}).get("Code", str(err))
meta = os.environ["ECS_CONTAINER_METADATA_URI_V4"]
out["task"] = json.load(urllib.request.urlopen(meta + "/task"))
print(json.dumps(out))
"""


def probe(
    local, stack: str, tries: list[tuple[str, str, str]], definition: str | None = None, **extra
) -> dict:
    """Run PROBE as a task of ``stack`` (or of ``definition``) and read what it printed."""
    client = batch(local)
    outputs = local["stacks"][stack]
    env = [{"name": "TRIES", "value": json.dumps(tries)}]
    job_id = client.submit_job(
        jobName="probe",
        jobQueue=outputs["jobQueueArn"],
        jobDefinition=definition or outputs["jobDefinitionArn"],
        containerOverrides={"command": [sys.executable, "-c", PROBE], "environment": env, **extra},
    )["jobId"]
    job = wait_for(client, job_id)
    assert job["status"] == "SUCCEEDED", job
    log = run("logs", job_id, "--json")
    assert log.exit_code == 0, log.output
    return {"job": job, **json.loads(json.loads(log.stdout)["events"][-1]["message"])}


def test_a_task_runs_as_its_job_role_and_iam_says_no_where_aws_would(local):
    lab, prod = local["stacks"]["dev"]["data"], local["stacks"]["prod"]["data"]
    seen = probe(
        local,
        "dev",
        [
            ("inside", lab["bucket"], lab["prefix"] + "probe/ok.txt"),
            ("outside", lab["bucket"], "elsewhere/x.txt"),
            ("other", prod["bucket"], prod["prefix"] + "x.txt"),
        ],
        resourceRequirements=[{"type": "MEMORY", "value": "512"}],
    )
    role = local["stacks"]["dev"]["jobRoleArn"].rsplit("/", 1)[1]
    assert seen["arn"].startswith(f"arn:aws:sts::123456789012:assumed-role/{role}/")
    assert (seen["inside"], seen["outside"], seen["other"]) == ("allowed", "AccessDenied", "AccessDenied")
    env = seen["env"]
    owner = local["state"].credentials()[0]
    assert "AWS_ACCESS_KEY_ID" not in env and owner not in json.dumps(env)  # never the owner's keys
    assert env["AWS_EXECUTION_ENV"] == "AWS_ECS_EC2" and env["HOME"]
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:")
    task = seen["task"]
    (container,) = task["Containers"]
    assert task["LaunchType"] == "EC2" and task["Cluster"].startswith("arn:aws:ecs:")
    assert container["Limits"] == {"CPU": 1024, "Memory": 512}
    assert container["LogOptions"]["awslogs-group"] == local["stacks"]["dev"]["logGroupName"]
    described = seen["job"]["container"]
    assert (
        described["memory"] == 512 and {"type": "MEMORY", "value": "512"} in described["resourceRequirements"]
    )
    assert described["jobRoleArn"] == local["stacks"]["dev"]["jobRoleArn"]
    assert described["image"] and described["logConfiguration"]["logDriver"] == "awslogs"

    # prod's data access is read: its role may not write, even under its own prefix.
    seen = probe(local, "prod", [("write", prod["bucket"], prod["prefix"] + "x.txt")])
    assert seen["write"] == "AccessDenied"


def test_a_role_of_ones_own_allows_or_denies_and_a_missing_role_fails_at_once(local):
    iam = emulator_client(local, "iam")
    trust = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ]
        }
    )
    bucket = local["stacks"]["prod"]["data"]["bucket"]
    policies = {
        "allows": {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        "denies": {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
    }
    client = batch(local)
    definitions = {}
    for name, statement in policies.items():
        role = iam.create_role(RoleName=f"probe-{name}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        iam.put_role_policy(
            RoleName=f"probe-{name}",
            PolicyName="p",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
        definitions[name] = small_definition(local, f"probe-{name}", jobRoleArn=role)
    tries = [("write", bucket, "anywhere/x.txt")]
    assert probe(local, "prod", tries, definitions["allows"])["write"] == "allowed"
    assert probe(local, "prod", tries, definitions["denies"])["write"] == "AccessDenied"

    missing = small_definition(
        local, "probe-missing", jobRoleArn="arn:aws:iam::123456789012:role/no-such-role"
    )
    outputs = local["stacks"]["prod"]
    job = wait_for(
        client,
        client.submit_job(
            jobName="norole",
            jobQueue=outputs["jobQueueArn"],
            jobDefinition=missing,
            containerOverrides={"command": ["true"]},
        )["jobId"],
    )
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith(
        "ECS was unable to assume the role 'arn:aws:iam::123456789012:role/no-such-role'"
    )


def test_local_down_leaves_no_task_process(local):
    """Last in the module: stops the module's emulator while tasks that ignore SIGTERM run."""
    client = batch(local)
    job = submit(local, "prod", ["sh", "-c", "trap '' TERM; sleep 300"], arrayProperties={"size": 2})
    wait_for(client, f"{job}:0", ("RUNNING",), timeout=10)

    def sleepers() -> list[int]:
        found = []
        for p in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if p.name.isdigit() and b"sleep\x00300" in (p / "cmdline").read_bytes():
                    found.append(int(p.name))
        return found

    deadline = time.monotonic() + 10  # RUNNING once started: its walls go up, then it runs
    while not (pids := sleepers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids
    stop_server(local["state"])
    time.sleep(0.2)
    assert not [
        p
        for p in pids
        if Path(f"/proc/{p}").exists()
        and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    ]
    assert not os.path.exists(local["state"].server_file)
