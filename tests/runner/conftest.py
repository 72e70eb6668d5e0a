"""Layered fixtures: credentials -> mocked AWS -> a deployed stack -> a CLI to drive it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws
from moto.batch import batch_backends
from moto.core import DEFAULT_ACCOUNT_ID

from runner.aws.clients import AwsTarget
from runner.aws.stack_outputs import StackOutputs
from runner.cli import cli

REGION = "us-east-1"


@pytest.fixture
def mocked_aws() -> Iterator[None]:
    with mock_aws(config={"batch": {"use_docker": False}}):
        yield


def deploy_stack(stack: str = "dev", *, max_vcpus: int = 32) -> StackOutputs:
    """What `pulumi up` leaves behind, made with boto3 in moto (VPC to job definition)."""
    ec2 = boto3.client("ec2", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    batch = boto3.client("batch", region_name=REGION)
    logs = boto3.client("logs", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{stack}-sg", Description="batch", VpcId=vpc)
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    service_role = iam.create_role(RoleName=f"{stack}-service", AssumeRolePolicyDocument=trust)
    job_role = iam.create_role(RoleName=f"{stack}-job", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName=f"{stack}-instance", AssumeRolePolicyDocument=trust)
    profile = iam.create_instance_profile(InstanceProfileName=f"{stack}-instance")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{stack}-instance", RoleName=f"{stack}-instance")
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"{stack}-ce",
        type="MANAGED",
        state="ENABLED",
        computeResources={
            "type": "SPOT",
            "minvCpus": 0,
            "maxvCpus": max_vcpus,
            "instanceTypes": ["c5"],
            "subnets": [subnet],
            "securityGroupIds": [group["GroupId"]],
            "instanceRole": profile["InstanceProfile"]["Arn"],
        },
        serviceRole=service_role["Role"]["Arn"],
    )
    queue = batch.create_job_queue(
        jobQueueName=f"{stack}-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    log_group = f"/batch-stacks/{stack}/abc"
    logs.create_log_group(logGroupName=log_group)
    definition = batch.register_job_definition(
        jobDefinitionName=f"{stack}-job",
        type="container",
        containerProperties={
            "image": "busybox",
            "user": "nobody",
            "jobRoleArn": job_role["Role"]["Arn"],
            "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "2048"}],
        },
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [
                {"action": "RETRY", "onStatusReason": "Host EC2*"},
                {"action": "EXIT", "onReason": "*"},
            ],
        },
    )
    return StackOutputs(
        stack=stack,
        region=REGION,
        job_queue_name=f"{stack}-queue",
        job_queue_arn=queue["jobQueueArn"],
        job_definition_name=f"{stack}-job",
        job_definition_arn=definition["jobDefinitionArn"],
        compute_environment_arns=(environment["computeEnvironmentArn"],),
        job_role_arn=job_role["Role"]["Arn"],
        log_group_name=log_group,
        purchase_model="spot",
        max_vcpus=max_vcpus,
        job_vcpus=2,
        job_memory_mib=2048,
    )


@pytest.fixture
def stack(mocked_aws: None) -> StackOutputs:
    return deploy_stack()


@pytest.fixture
def outputs_file(stack: StackOutputs, tmp_path: Path) -> Path:
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(stack.to_json()))
    return path


DATA_BUCKET = "lab-data"


@dataclass
class Runner:
    outputs_file: Path

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--outputs", str(self.outputs_file), *args], input=input)

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return json.loads(result.stdout)


@pytest.fixture
def runner(outputs_file: Path) -> Runner:
    return Runner(outputs_file)


@pytest.fixture
def data_stack(stack: StackOutputs, tmp_path: Path) -> Runner:
    """The lab stack with a data bucket (``s3://lab-data/runs/``): sweeps, records, packages."""
    from dataclasses import replace

    from runner.aws.stack_outputs import DataLocation

    boto3.client("s3", region_name=REGION).create_bucket(Bucket=DATA_BUCKET)
    path = tmp_path / "dev.json"
    path.write_text(
        json.dumps(replace(stack, data=DataLocation(DATA_BUCKET, "runs/", "read-write")).to_json())
    )
    return Runner(path)


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts every AWS API call made by clients the runner creates, by operation name."""
    calls: Counter[str] = Counter()
    original = AwsTarget.client

    def counting_client(self: AwsTarget, service: str) -> Any:
        client = original(self, service)
        client.meta.events.register(
            "before-parameter-build.*.*", lambda model, **_: calls.update([model.name])
        )
        return client

    monkeypatch.setattr(AwsTarget, "client", counting_client)
    return calls


def moto_jobs() -> dict[str, Any]:
    return batch_backends[DEFAULT_ACCOUNT_ID][REGION]._jobs


def fail_children(job_id: str, indices: dict[int, tuple[str, int]]) -> None:
    """Mark array children FAILED in moto, with a status reason and exit code each."""
    jobs = moto_jobs()
    for index, (reason, exit_code) in indices.items():
        child = jobs[f"{job_id}:{index}"]
        child.status = "FAILED"
        child.job_stopped_reason = reason
        child.exit_code = exit_code


def sample_outputs(**changes: Any) -> StackOutputs:
    """A stack's outputs with placeholder names (``changes`` replace fields), for code that only reads them."""
    base = dict(
        stack="dev",
        region=REGION,
        job_queue_name="q",
        job_queue_arn="arn:q",
        job_definition_name="d",
        job_definition_arn="arn:d:1",
        compute_environment_arns=("arn:ce",),
        job_role_arn="arn:r",
        log_group_name="/g",
        purchase_model="spot",
        max_vcpus=32,
        job_vcpus=1,
        job_memory_mib=2048,
    )
    return StackOutputs(**{**base, **changes})
