"""Each Pulumi resource type the program uses, mapped to emulator calls (moto in-process)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pulumi
import pytest
from moto import mock_aws

from runner.aws.clients import AwsTarget
from runner.errors import RunnerError
from runner.local.deploy import deploy_stack
from runner.local.provisioner import EMULATOR_SERVICE_ROLE, EmulatorMocks, UnsupportedResourceError

# Each test runs the whole Pulumi program against moto: part of the slow, end-to-end set.
pytestmark = pytest.mark.emulator

PROJECT_DIR = Path(__file__).resolve().parents[3]
REGION = "us-east-1"


@pytest.fixture
def emulator() -> Iterator[None]:
    with mock_aws(config={"batch": {"use_docker": False}, "iam": {"load_aws_managed_policies": True}}):
        yield


@pytest.fixture
def mocks(emulator: None) -> EmulatorMocks:
    return EmulatorMocks(AwsTarget(REGION))


def create(mocks: EmulatorMocks, typ: str, name: str, inputs: dict, custom: bool = True):
    return mocks.new_resource(
        pulumi.runtime.MockResourceArgs(
            typ=typ, name=name, inputs=inputs, provider="", resource_id="", custom=custom
        )
    )


def client(service: str):
    return boto3.client(service, region_name=REGION)


TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            }
        ],
    }
)


def test_role_is_autonamed_with_trust_policy_and_tags(mocks: EmulatorMocks):
    role_id, state = create(
        mocks, "aws:iam/role:Role", "lab-job", {"assumeRolePolicy": TRUST, "tags": {"stack": "dev"}}
    )
    assert role_id.startswith("lab-job-") and len(role_id) == len("lab-job-") + 7
    role = client("iam").get_role(RoleName=role_id)["Role"]
    assert state["arn"] == role["Arn"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ecs-tasks.amazonaws.com"
    }
    assert {"Key": "stack", "Value": "dev"} in role["Tags"]


POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lab-data/runs/*"}
        ],
    }
)


def test_role_policy_attachment_and_instance_profile(mocks: EmulatorMocks):
    role_id, _ = create(mocks, "aws:iam/role:Role", "lab-instance", {"assumeRolePolicy": TRUST})
    create(mocks, "aws:iam/rolePolicy:RolePolicy", "lab-data", {"role": role_id, "policy": POLICY})
    managed = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
    create(
        mocks,
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "lab-ecs",
        {"role": role_id, "policyArn": managed},
    )
    profile_id, state = create(
        mocks, "aws:iam/instanceProfile:InstanceProfile", "lab-instance", {"role": role_id}
    )
    iam = client("iam")
    assert iam.list_role_policies(RoleName=role_id)["PolicyNames"][0].startswith("lab-data-")
    assert [
        p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role_id)["AttachedPolicies"]
    ] == [managed]
    profile = iam.get_instance_profile(InstanceProfileName=profile_id)["InstanceProfile"]
    assert state["arn"] == profile["Arn"] and ":instance-profile/" in profile["Arn"]
    assert [r["RoleName"] for r in profile["Roles"]] == [role_id]


def test_log_group_honours_name_prefix_and_retention(mocks: EmulatorMocks):
    name, state = create(
        mocks,
        "aws:cloudwatch/logGroup:LogGroup",
        "logs",
        {"namePrefix": "/batch-stacks/dev/", "retentionInDays": 7.0},
    )
    assert name.startswith("/batch-stacks/dev/") and state["name"] == name
    (group,) = client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert group["retentionInDays"] == 7


def test_security_group_keeps_exactly_the_declared_rules(mocks: EmulatorMocks):
    vpc = client("ec2").describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    egress = [
        {
            "protocol": "-1",
            "fromPort": 0,
            "toPort": 0,
            "cidrBlocks": ["0.0.0.0/0"],
            "ipv6CidrBlocks": ["::/0"],
        }
    ]
    group_id, _ = create(
        mocks,
        "aws:ec2/securityGroup:SecurityGroup",
        "sg",
        {"vpcId": vpc, "egress": egress, "description": "d"},
    )
    group = client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["IpPermissions"] == []
    (rule,) = group["IpPermissionsEgress"]
    assert rule["IpProtocol"] == "-1"
    assert rule["IpRanges"][0]["CidrIp"] == "0.0.0.0/0" and rule["Ipv6Ranges"][0]["CidrIpv6"] == "::/0"


def networking() -> tuple[list[str], list[str], str]:
    ec2 = client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [
        s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    ]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    profile = client("iam").create_instance_profile(InstanceProfileName="p")["InstanceProfile"]["Arn"]
    return subnets, [group], profile


def test_compute_environment_gets_the_emulators_service_role_and_update_policy(mocks: EmulatorMocks):
    subnets, groups, profile = networking()
    arn, state = create(
        mocks,
        "aws:batch/computeEnvironment:ComputeEnvironment",
        "ce",
        {
            "type": "MANAGED",
            "state": "ENABLED",
            "tags": {"stack": "dev"},
            "computeResources": {
                "type": "SPOT",
                "allocationStrategy": "SPOT_PRICE_CAPACITY_OPTIMIZED",
                "minVcpus": 0.0,
                "maxVcpus": 32.0,
                "instanceTypes": ["c5"],
                "subnets": subnets,
                "securityGroupIds": groups,
                "instanceRole": profile,
            },
            "updatePolicy": {"terminateJobsOnUpdate": True, "jobExecutionTimeoutMinutes": 30.0},
        },
    )
    (environment,) = client("batch").describe_compute_environments(computeEnvironments=[arn])[
        "computeEnvironments"
    ]
    assert environment["serviceRole"].endswith(f"role/{EMULATOR_SERVICE_ROLE}")
    assert (
        environment["computeResources"]["maxvCpus"] == 32 and environment["computeResources"]["minvCpus"] == 0
    )
    assert environment["computeEnvironmentName"] == state["name"] and state["arn"] == arn
    # A second environment reuses the same emulator-only service role.
    create(
        mocks,
        "aws:batch/computeEnvironment:ComputeEnvironment",
        "ce2",
        {
            "type": "MANAGED",
            "computeResources": {
                "type": "FARGATE",
                "maxVcpus": 4.0,
                "subnets": subnets,
                "securityGroupIds": groups,
            },
        },
    )
    assert (
        len([r for r in client("iam").list_roles()["Roles"] if r["RoleName"] == EMULATOR_SERVICE_ROLE]) == 1
    )


def test_queue_and_job_definition_take_the_programs_inputs(mocks: EmulatorMocks):
    subnets, groups, profile = networking()
    ce_arn, _ = create(
        mocks,
        "aws:batch/computeEnvironment:ComputeEnvironment",
        "ce",
        {
            "type": "MANAGED",
            "computeResources": {
                "type": "EC2",
                "minVcpus": 0.0,
                "maxVcpus": 8.0,
                "instanceTypes": ["m5"],
                "subnets": subnets,
                "securityGroupIds": groups,
                "instanceRole": profile,
            },
        },
    )
    queue_arn, queue_state = create(
        mocks,
        "aws:batch/jobQueue:JobQueue",
        "q",
        {
            "state": "ENABLED",
            "priority": 5.0,
            "computeEnvironmentOrders": [{"order": 1.0, "computeEnvironment": ce_arn}],
            "jobStateTimeLimitActions": [
                {
                    "action": "CANCEL",
                    "maxTimeSeconds": 1800.0,
                    "state": "RUNNABLE",
                    "reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
                }
            ],
        },
    )
    (queue,) = client("batch").describe_job_queues(jobQueues=[queue_arn])["jobQueues"]
    assert queue["priority"] == 5 and queue["computeEnvironmentOrder"][0]["computeEnvironment"] == ce_arn
    assert queue_state["name"] == queue["jobQueueName"]

    container = {
        "image": "busybox",
        "user": "nobody",
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
    }
    definition_arn, definition_state = create(
        mocks,
        "aws:batch/jobDefinition:JobDefinition",
        "jd",
        {
            "type": "container",
            "containerProperties": json.dumps(container),
            "propagateTags": True,
            "platformCapabilities": ["EC2"],
            "timeout": {"attemptDurationSeconds": 600.0},
            "retryStrategy": {
                "attempts": 3.0,
                "evaluateOnExits": [
                    {"action": "RETRY", "onStatusReason": "Host EC2*"},
                    {"action": "EXIT", "onReason": "*"},
                ],
            },
        },
    )
    (definition,) = client("batch").describe_job_definitions(jobDefinitions=[definition_arn])[
        "jobDefinitions"
    ]
    assert definition["containerProperties"]["user"] == "nobody"
    assert definition["retryStrategy"]["attempts"] == 3
    assert definition["timeout"] == {"attemptDurationSeconds": 600}
    assert (
        definition_state["revision"] == 1
        and definition_state["arnPrefix"] == definition_arn.rsplit(":", 1)[0]
    )


def test_component_and_provider_resources_create_nothing(mocks: EmulatorMocks):
    assert create(mocks, "batch-stacks:index:BatchEnvironment", "env", {}, custom=False) == ("env", {})
    assert create(mocks, "pulumi:providers:aws", "default", {})[0] == "default-provider"
    assert mocks.created == []


def test_unknown_resource_type_is_an_error_naming_it(mocks: EmulatorMocks):
    with pytest.raises(UnsupportedResourceError) as caught:
        create(mocks, "aws:s3/bucket:Bucket", "data", {})
    assert str(caught.value) == (
        "the local emulator cannot create aws:s3/bucket:Bucket (resource 'data'); "
        "add a mapping in runner/local/provisioner.py"
    )


def test_unknown_invoke_is_an_error_naming_it(mocks: EmulatorMocks):
    with pytest.raises(
        UnsupportedResourceError, match="cannot answer the invoke aws:rds/getInstance:getInstance"
    ):
        mocks.call(pulumi.runtime.MockCallArgs("aws:rds/getInstance:getInstance", {}, ""))


def test_invokes_are_answered_from_the_emulator(mocks: EmulatorMocks):
    vpc, _ = mocks.call(pulumi.runtime.MockCallArgs("aws:ec2/getVpc:getVpc", {"default": True}, ""))
    subnets, _ = mocks.call(
        pulumi.runtime.MockCallArgs(
            "aws:ec2/getSubnets:getSubnets", {"filters": [{"name": "vpc-id", "values": [vpc["id"]]}]}, ""
        )
    )
    described = client("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["id"]]}])["Subnets"]
    assert subnets["ids"] == sorted(s["SubnetId"] for s in described) and subnets["ids"]
    subnet, _ = mocks.call(
        pulumi.runtime.MockCallArgs("aws:ec2/getSubnet:getSubnet", {"id": subnets["ids"][0]}, "")
    )
    assert subnet["vpcId"] == vpc["id"]
    identity, _ = mocks.call(
        pulumi.runtime.MockCallArgs("aws:index/getCallerIdentity:getCallerIdentity", {}, "")
    )
    assert identity["accountId"] == "123456789012"
    region, _ = mocks.call(pulumi.runtime.MockCallArgs("aws:index/getRegion:getRegion", {}, ""))
    assert region["region"] == REGION


def test_emulator_refusal_is_one_line_naming_the_resource(mocks: EmulatorMocks):
    with pytest.raises(RunnerError) as caught:
        create(
            mocks,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "x",
            {"role": "missing", "policyArn": "arn:aws:iam::aws:policy/Nope"},
        )
    assert str(caught.value).startswith(
        "the emulator refused aws:iam/rolePolicyAttachment:RolePolicyAttachment 'x': NoSuchEntity"
    )


@pytest.mark.parametrize(
    ("stack", "batch_type", "strategy", "max_vcpus", "vcpus"),
    [
        ("dev", "SPOT", "SPOT_PRICE_CAPACITY_OPTIMIZED", 32, "1"),
        ("prod", "EC2", "BEST_FIT_PROGRESSIVE", 256, "2"),
    ],
)
def test_deploying_a_stack_creates_its_whole_graph(emulator, stack, batch_type, strategy, max_vcpus, vcpus):
    outputs = deploy_stack(PROJECT_DIR, stack, None)[0].to_json()
    batch = client("batch")
    (environment,) = batch.describe_compute_environments(
        computeEnvironments=list(outputs["computeEnvironmentArns"])
    )["computeEnvironments"]
    resources = environment["computeResources"]
    assert (resources["type"], resources["allocationStrategy"]) == (batch_type, strategy)
    assert (resources["minvCpus"], resources["maxvCpus"]) == (0, max_vcpus)
    assert ":instance-profile/" in resources["instanceRole"]
    assert resources["tags"] == {"project": "batch-stacks", "stack": stack}
    (queue,) = batch.describe_job_queues(jobQueues=[outputs["jobQueueArn"]])["jobQueues"]
    assert queue["state"] == "ENABLED"
    assert queue["computeEnvironmentOrder"] == [
        {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}
    ]
    (definition,) = batch.describe_job_definitions(jobDefinitions=[outputs["jobDefinitionArn"]])[
        "jobDefinitions"
    ]
    container = definition["containerProperties"]
    assert container["user"] == "nobody"
    assert container["jobRoleArn"] == outputs["jobRoleArn"]
    assert {r["type"]: r["value"] for r in container["resourceRequirements"]}["VCPU"] == vcpus
    assert container["logConfiguration"]["options"]["awslogs-group"] == outputs["logGroupName"]
    assert client("logs").describe_log_groups(logGroupNamePrefix=outputs["logGroupName"])["logGroups"]
    role_name = outputs["jobRoleArn"].rsplit("/", 1)[1]
    (policy_name,) = client("iam").list_role_policies(RoleName=role_name)["PolicyNames"]
    document = client("iam").get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    assert f"batch-stacks-{'lab' if stack == 'dev' else 'prod'}-data" in json.dumps(document)


def test_a_bad_stack_setting_is_one_line(emulator, tmp_path: Path):
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    (tmp_path / "Pulumi.dev.yaml").write_text(
        (PROJECT_DIR / "Pulumi.dev.yaml").read_text().replace("purchaseModel: spot", "purchaseModel: cheap")
    )
    with pytest.raises(RunnerError) as caught:
        deploy_stack(tmp_path, "dev", None)
    assert str(caught.value) == (
        "Pulumi.dev.yaml: batch-stacks:compute.purchaseModel: 'cheap' is not allowed; use one of: spot, on-demand"
    )
    assert client("batch").describe_compute_environments()["computeEnvironments"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("aws:region: us-east-1", "aws:region: mars-1"),
            "Pulumi.dev.yaml: aws:region 'mars-1' is not an AWS region with Batch; use one such as us-east-1",
        ),
        (
            None,
            "Pulumi.dev.yaml: `config` should be a map of settings (key: value), got a list; fix the file",
        ),
    ],
    ids=["unknown-region", "config-is-a-list"],
)
def test_a_broken_stack_file_is_one_line_and_creates_nothing(emulator, tmp_path: Path, change, message):
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    text = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.dev.yaml").write_text(text.replace(*change) if change else "config: [1, 2]\n")
    with pytest.raises(RunnerError) as caught:
        deploy_stack(tmp_path, "dev", None)
    assert str(caught.value) == message
    assert client("batch").describe_compute_environments()["computeEnvironments"] == []


def test_a_resource_the_emulator_cannot_create_stops_the_deploy(emulator, tmp_path: Path):
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    (tmp_path / "__main__.py").write_text(
        (PROJECT_DIR / "__main__.py").read_text() + "\nimport pulumi_aws as aws\naws.s3.Bucket('extra')\n"
    )
    with pytest.raises(
        UnsupportedResourceError, match=r"cannot create aws:s3/bucket:Bucket \(resource 'extra'\)"
    ):
        deploy_stack(tmp_path, "dev", None)
    # What the program had created before the unsupported resource is deleted again.
    batch = client("batch")
    assert batch.describe_compute_environments()["computeEnvironments"] == []
    assert batch.describe_job_queues()["jobQueues"] == []
    assert {r["RoleName"] for r in client("iam").list_roles()["Roles"]} <= {EMULATOR_SERVICE_ROLE}
    assert client("logs").describe_log_groups(logGroupNamePrefix="/batch-stacks/")["logGroups"] == []


def test_teardown_deletes_a_whole_deployment_newest_first(emulator):
    deployed, deployment = deploy_stack(PROJECT_DIR, "prod", None)
    outputs = deployed.to_json()
    mocks = EmulatorMocks(AwsTarget("us-east-1"))
    assert mocks.teardown(deployment.created) == []
    batch = client("batch")
    assert batch.describe_job_queues(jobQueues=[outputs["jobQueueArn"]])["jobQueues"] == []
    assert batch.describe_compute_environments()["computeEnvironments"] == []
    active = batch.describe_job_definitions(jobDefinitions=[outputs["jobDefinitionArn"]])["jobDefinitions"]
    assert all(d["status"] == "INACTIVE" for d in active)
    assert client("iam").list_instance_profiles()["InstanceProfiles"] == []
    assert mocks.teardown(deployment.created) == []  # already gone is not a failure


def test_a_fargate_spot_stack_deploys_and_runs(emulator, tmp_path: Path):
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    stack_file = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()
    stack_file = stack_file.replace("purchaseModel: spot", "purchaseModel: spot\n    platform: fargate")
    stack_file = stack_file.replace("    minVcpus: 0\n", "").replace(
        "    instanceTypes: [c6i, m6i, r6i, c5, m5, r5, c6a, m6a]\n", ""
    )
    (tmp_path / "Pulumi.dev.yaml").write_text(stack_file)
    outputs = deploy_stack(tmp_path, "dev", None)[0].to_json()
    batch = client("batch")
    (environment,) = batch.describe_compute_environments()["computeEnvironments"]
    assert environment["computeResources"]["type"] == "FARGATE_SPOT"
    assert "instanceRole" not in environment["computeResources"]
    (definition,) = batch.describe_job_definitions(jobDefinitions=[outputs["jobDefinitionArn"]])[
        "jobDefinitions"
    ]
    assert definition["platformCapabilities"] == ["FARGATE"]
    job = batch.submit_job(
        jobName="probe",
        jobQueue=outputs["jobQueueArn"],
        jobDefinition=outputs["jobDefinitionArn"],
        arrayProperties={"size": 3},
    )
    assert batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]["arrayProperties"]["size"] == 3


def test_a_stack_that_builds_its_image_deploys_without_building_and_tears_down(emulator, tmp_path: Path):
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    (tmp_path / "Pulumi.dev.yaml").write_text(
        (PROJECT_DIR / "Pulumi.dev.yaml")
        .read_text()
        .replace(
            "    image: public.ecr.aws/amazonlinux/amazonlinux:2023\n",
            "    build:\n      context: examples\n",
        )
    )
    deployed, deployment = deploy_stack(tmp_path, "dev", None)
    (repository,) = client("ecr").describe_repositories()["repositories"]
    assert client("ecr").get_lifecycle_policy(repositoryName=repository["repositoryName"])[
        "lifecyclePolicyText"
    ]
    (definition,) = client("batch").describe_job_definitions(jobDefinitions=[deployed.job_definition_arn])[
        "jobDefinitions"
    ]
    assert definition["containerProperties"]["image"] == f"{repository['repositoryUri']}:latest"
    assert EmulatorMocks(AwsTarget(REGION)).teardown(deployment.created) == []
    assert client("ecr").describe_repositories()["repositories"] == []
