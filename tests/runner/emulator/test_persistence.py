"""The emulator's snapshots: every backend in one consistent pickle, written whole or not at all,
loaded only from the owner's own folder, taken while no request is being served."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from runner.emulator import persistence
from runner.emulator.persistence import Gate, SnapshotError, backends_in_use, dump, is_read, load

CONFIG = {"batch": {"use_docker": False}, "iam": {"load_aws_managed_policies": True}}


def test_a_snapshot_brings_back_objects_keys_roles_logs_and_jobs_with_their_history():
    with mock_aws(config=CONFIG):
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        put = s3.put_object(Bucket="data", Key="runs/a.json", Body=b"{}", Metadata={"row": "7"})
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="carol")
        key = iam.create_access_key(UserName="carol")["AccessKey"]
        iam.create_role(RoleName="job", AssumeRolePolicyDocument="{}")
        iam.attach_role_policy(RoleName="job", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="/aws/batch/job")
        logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName="s")
        logs.put_log_events(
            logGroupName="/aws/batch/job",
            logStreamName="s",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": "hi"}],
        )
        job_id = _finished_batch_job()
        data = dump(backends_in_use())
        assert len(data) < 5_000_000  # AWS's managed policies (24 MB) are named, not copied

    with mock_aws(config=CONFIG):  # a fresh moto: empty until the snapshot is loaded
        assert load(data) >= 5
        s3 = boto3.client("s3", region_name="us-east-1")
        got = s3.get_object(Bucket="data", Key="runs/a.json")
        assert got["ETag"] == put["ETag"] and got["Metadata"] == {"row": "7"} and got["Body"].read() == b"{}"
        iam = boto3.client("iam", region_name="us-east-1")
        assert (
            iam.list_access_keys(UserName="carol")["AccessKeyMetadata"][0]["AccessKeyId"]
            == key["AccessKeyId"]
        )
        attached = iam.list_attached_role_policies(RoleName="job")["AttachedPolicies"]
        assert [p["PolicyName"] for p in attached] == ["ReadOnlyAccess"]
        policy = iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")["Policy"]
        assert policy["AttachmentCount"] == 1
        events = boto3.client("logs", region_name="us-east-1").get_log_events(
            logGroupName="/aws/batch/job", logStreamName="s"
        )["events"]
        assert [e["message"] for e in events] == ["hi"]
        batch = boto3.client("batch", region_name="us-east-1")
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]  # moto's job is a thread: rebuilt, not run
        assert job["status"] == "SUCCEEDED" and job["jobName"] == "kept"


def _finished_batch_job() -> str:
    """A job of moto's own Batch (which finishes it at once without Docker), finished."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=subnet["VpcId"])[
        "GroupId"
    ]
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    batch = boto3.client("batch", region_name="us-east-1")
    environment = batch.create_compute_environment(
        computeEnvironmentName="lab-ce",
        type="MANAGED",
        serviceRole=role,
        computeResources={
            "type": "FARGATE",
            "maxvCpus": 4,
            "subnets": [subnet["SubnetId"]],
            "securityGroupIds": [group],
        },
    )["computeEnvironmentArn"]
    queue = batch.create_job_queue(
        jobQueueName="lab-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )["jobQueueArn"]
    definition = batch.register_job_definition(
        jobDefinitionName="d",
        type="container",
        containerProperties={"image": "busybox", "command": ["true"], "vcpus": 1, "memory": 512},
    )["jobDefinitionArn"]
    job_id = batch.submit_job(jobName="kept", jobQueue=queue, jobDefinition=definition)["jobId"]
    deadline = time.monotonic() + 10
    while batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] != "SUCCEEDED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job_id


def test_a_damaged_or_foreign_snapshot_is_refused_and_set_aside(tmp_path: Path):
    with pytest.raises(SnapshotError):
        load(b"not a pickle")
    path = tmp_path / "data" / "emulator.snapshot"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"\x80\x05damaged")
    restored = persistence.restore(path)
    assert restored.error and restored.set_aside and not path.exists()
    assert Path(restored.set_aside).read_bytes() == b"\x80\x05damaged"  # never deleted

    path.write_bytes(b"x")
    path.chmod(0o666)  # anyone could have written it: loading it would run their code
    with pytest.raises(SnapshotError, match="not yours alone"):
        persistence.read_own(path)


def test_a_write_is_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "emulator.snapshot"
    persistence.write_atomically(path, b"first")

    def full_disk(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        persistence.write_atomically(path, b"second, half written")
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["emulator.snapshot"]  # no temporary file left


def test_a_snapshot_waits_for_requests_in_flight_and_holds_new_ones():
    gate, events = Gate(), []

    def request(name: str, hold: float) -> None:
        with gate.request():
            events.append(f"{name} in")
            time.sleep(hold)
            events.append(f"{name} out")

    first = threading.Thread(target=request, args=("a", 0.2))
    first.start()
    time.sleep(0.05)
    later = threading.Thread(target=request, args=("b", 0))
    with gate.alone():
        events.append("snapshot")
        later.start()
        time.sleep(0.1)
        events.append("snapshot done")
    first.join()
    later.join()
    assert events == ["a in", "a out", "snapshot", "snapshot done", "b in", "b out"]


@pytest.mark.parametrize(
    ("method", "path", "target", "read"),
    [
        ("GET", "/bucket/key", "", True),
        ("HEAD", "/bucket/key", "", True),
        ("PUT", "/bucket/key", "", False),
        ("POST", "/v1/describejobs", "", True),
        ("POST", "/v1/listjobs", "", True),
        ("POST", "/v1/submitjob", "", False),
        ("POST", "/", "Logs_20140328.GetLogEvents", True),
        ("POST", "/", "Logs_20140328.PutLogEvents", False),
        ("POST", "/", "", False),  # a query-protocol call may change anything
    ],
)
def test_only_reads_skip_a_snapshot(method: str, path: str, target: str, read: bool):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_X_AMZ_TARGET": target}
    assert is_read(environ) is read
