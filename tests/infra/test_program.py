"""The program's resource graph for each committed stack file, under Pulumi's mock engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime.mocks import MockMonitor

from infra.settings import SettingsError
from runner.aws.stack_outputs import CONTRACT_KEYS, COST_MODEL_KEY, DATA_KEY, JOB_IMAGE_KEY
from tests.infra.conftest import PROJECT_DIR, Deployment, deploy

CE = "aws:batch/computeEnvironment:ComputeEnvironment"
QUEUE = "aws:batch/jobQueue:JobQueue"
JOB_DEF = "aws:batch/jobDefinition:JobDefinition"
ROLE = "aws:iam/role:Role"
PROFILE = "aws:iam/instanceProfile:InstanceProfile"
TAGGABLE = (
    CE,
    QUEUE,
    JOB_DEF,
    ROLE,
    PROFILE,
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:ec2/securityGroup:SecurityGroup",
)


def role_trusted_by(deployment: Deployment, service: str):
    (role,) = [
        r
        for r in deployment.mocks.of_type(ROLE)
        if json.loads(r.inputs["assumeRolePolicy"])["Statement"][0]["Principal"]["Service"] == service
    ]
    return role


def test_lab_is_spot_and_scales_to_zero(dev: Deployment):
    resources = dev.mocks.one(CE).inputs["computeResources"]
    assert resources["type"] == "SPOT"
    assert resources["allocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert "bidPercentage" not in resources
    assert resources["minVcpus"] == 0
    assert "desiredVcpus" not in resources
    assert resources["maxVcpus"] == 32
    assert len(resources["instanceTypes"]) >= 4
    assert dev.mocks.one(CE).inputs["updatePolicy"]["terminateJobsOnUpdate"] is True


def test_prod_is_on_demand_with_a_higher_ceiling(prod: Deployment, dev: Deployment):
    resources = prod.mocks.one(CE).inputs["computeResources"]
    assert resources["type"] == "EC2"
    assert resources["allocationStrategy"] == "BEST_FIT_PROGRESSIVE"
    assert resources["minVcpus"] == 0
    assert resources["maxVcpus"] == 256 > dev.outputs["maxVcpus"]
    assert prod.mocks.one(CE).inputs["updatePolicy"]["terminateJobsOnUpdate"] is False


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_compute_environment_is_managed_autonamed_without_service_role(stack, request):
    deployment: Deployment = request.getfixturevalue(stack)
    ce = deployment.mocks.one(CE).inputs
    assert ce["type"] == "MANAGED"
    assert "name" not in ce and "serviceRole" not in ce
    profile = deployment.mocks.one(PROFILE)
    assert ce["computeResources"]["instanceRole"] == profile.state["arn"]
    assert ":instance-profile/" in profile.state["arn"] or "InstanceProfile/" in profile.state["arn"]
    assert ce["computeResources"]["subnets"] == ["subnet-0aaa", "subnet-0bbb"]
    assert ce["computeResources"]["securityGroupIds"] == ["sg-0123456789abcdef0"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_queue_points_at_the_compute_environment_and_cancels_stuck_jobs(stack, request):
    deployment: Deployment = request.getfixturevalue(stack)
    queue = deployment.mocks.one(QUEUE).inputs
    assert queue["state"] == "ENABLED"
    assert queue["computeEnvironmentOrders"] == [
        {"order": 1, "computeEnvironment": deployment.mocks.one(CE).state["arn"]}
    ]
    assert deployment.outputs["computeEnvironmentArns"] == [deployment.mocks.one(CE).state["arn"]]
    actions = queue["jobStateTimeLimitActions"]
    assert {a["reason"] for a in actions} == {
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
    }
    assert all(a["action"] == "CANCEL" and a["state"] == "RUNNABLE" for a in actions)
    assert all(600 <= a["maxTimeSeconds"] <= 86400 for a in actions)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_job_definition_runs_as_nobody_with_job_role_logs_and_retries(stack, request):
    deployment: Deployment = request.getfixturevalue(stack)
    definition = deployment.mocks.one(JOB_DEF).inputs
    container = json.loads(definition["containerProperties"])
    assert container["user"] == "nobody"
    assert container["jobRoleArn"] == role_trusted_by(deployment, "ecs-tasks.amazonaws.com").state["arn"]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert container["logConfiguration"]["options"]["awslogs-group"] == deployment.outputs["logGroupName"]
    assert container["logConfiguration"]["options"]["awslogs-region"] == "us-east-1"
    requirements = {r["type"]: r["value"] for r in container["resourceRequirements"]}
    assert requirements == {
        "VCPU": str(deployment.outputs["jobVcpus"]),
        "MEMORY": str(deployment.outputs["jobMemoryMiB"]),
    }
    assert "vcpus" not in container and "memory" not in container
    retry = definition["retryStrategy"]
    assert retry["attempts"] == 3
    assert retry["evaluateOnExits"] == [
        {"action": "RETRY", "onStatusReason": "Host EC2*"},
        {"action": "EXIT", "onReason": "*"},
    ]
    assert definition["timeout"]["attemptDurationSeconds"] >= 60
    assert definition["propagateTags"] is True
    # Canonical JSON: re-serialising with sorted keys gives the same string (no revision churn).
    assert json.dumps(container, sort_keys=True) == definition["containerProperties"]


def test_job_role_policy_is_scoped_to_the_data_bucket(dev: Deployment, prod: Deployment):
    for deployment, bucket, writes in (
        (dev, "batch-stacks-lab-data", True),
        (prod, "batch-stacks-prod-data", False),
    ):
        (policy,) = deployment.mocks.of_type("aws:iam/rolePolicy:RolePolicy")
        document = json.loads(policy.inputs["policy"])
        allowed = {s["Resource"] for s in document["Statement"] if s["Effect"] == "Allow"}
        assert allowed == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/runs/*"}
        actions = set(document["Statement"][1]["Action"])
        assert ("s3:PutObject" in actions) is writes
        denied = [s["Resource"] for s in document["Statement"] if s["Effect"] == "Deny"]
        # Run records are the users' to write: a writing role is denied them.
        assert denied == (
            [[f"arn:aws:s3:::{bucket}/runs/*/run.json", f"arn:aws:s3:::{bucket}/runs/index/*"]]
            if writes
            else []
        )
        job_role = role_trusted_by(deployment, "ecs-tasks.amazonaws.com")
        assert policy.inputs["role"] == job_role.name or policy.inputs["role"] == job_role.state["name"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_instance_role_has_only_the_ecs_instance_policy(stack, request):
    deployment: Deployment = request.getfixturevalue(stack)
    instance_role = role_trusted_by(deployment, "ec2.amazonaws.com")
    (attachment,) = deployment.mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["role"] == instance_role.state["name"]
    assert attachment.inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
    )
    assert deployment.mocks.one(PROFILE).inputs["role"] == instance_role.state["name"]
    for resource in deployment.mocks.resources:
        assert "FullAccess" not in json.dumps(resource.inputs)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_taggable_resource_carries_project_and_stack(stack, request):
    deployment: Deployment = request.getfixturevalue(stack)
    tagged = [r for r in deployment.mocks.resources if r.type in TAGGABLE]
    assert len(tagged) == len(TAGGABLE) + 1  # two roles
    for resource in tagged:
        assert resource.inputs["tags"]["project"] == "batch-stacks", resource.name
        assert resource.inputs["tags"]["stack"] == stack, resource.name
    assert deployment.mocks.one(CE).inputs["computeResources"]["tags"]["stack"] == stack


def test_log_retention_is_short_in_the_lab_and_long_in_prod(dev: Deployment, prod: Deployment):
    def retention(d: Deployment) -> float:
        return d.mocks.one("aws:cloudwatch/logGroup:LogGroup").inputs["retentionInDays"]

    assert retention(dev) == 7
    assert retention(prod) == 365


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_contract_output_is_exported(stack, request):
    deployment: Deployment = request.getfixturevalue(stack)
    assert set(deployment.outputs) == set(CONTRACT_KEYS) | {COST_MODEL_KEY, DATA_KEY, JOB_IMAGE_KEY}
    assert (
        deployment.outputs["data"]
        == {
            "dev": {"bucket": "batch-stacks-lab-data", "prefix": "runs/", "access": "read-write"},
            "prod": {"bucket": "batch-stacks-prod-data", "prefix": "runs/", "access": "read"},
        }[stack]
    )
    expected_price = {"dev": 0.017, "prod": 0.0425}[stack]
    assert deployment.outputs["costModel"] == {
        "purchaseModel": deployment.outputs["purchaseModel"],
        "usdPerVcpuHour": expected_price,
        "onDemandUsdPerVcpuHour": 0.0425,
        "spotUsdPerVcpuHour": 0.017,
        "hourlyBudgetUsd": None,
    }
    assert deployment.outputs["purchaseModel"] == {"dev": "spot", "prod": "on-demand"}[stack]
    assert deployment.outputs["jobQueueArn"] == deployment.mocks.one(QUEUE).state["arn"]
    assert deployment.outputs["jobDefinitionArn"] == deployment.mocks.one(JOB_DEF).state["arn"]


def test_components_are_typed_and_parent_their_children(dev: Deployment):
    components = {r.type for r in dev.mocks.resources if r.type.startswith("batch-stacks:")}
    assert components == {
        "batch-stacks:index:BatchEnvironment",
        "batch-stacks:index:BatchRoles",
        "batch-stacks:index:BatchNetwork",
        "batch-stacks:index:ComputeEnvironment",
        "batch-stacks:index:JobQueue",
        "batch-stacks:index:JobDefinition",
    }
    for resource in dev.mocks.resources:
        assert resource.name.startswith("batch-stacks-dev"), resource.name


def project_copy(tmp_path: Path, stack_file: str) -> Path:
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    (tmp_path / "Pulumi.lab.yaml").write_text(stack_file)
    return tmp_path


def test_on_demand_fallback_adds_a_second_environment_after_spot(tmp_path: Path):
    stack_file = (
        (PROJECT_DIR / "Pulumi.dev.yaml")
        .read_text()
        .replace("purchaseModel: spot", "purchaseModel: spot\n    onDemandFallback: true")
    )
    deployment = deploy("lab", project_copy(tmp_path, stack_file))
    spot, on_demand = deployment.mocks.of_type(CE)
    assert spot.inputs["computeResources"]["type"] == "SPOT"
    assert on_demand.inputs["computeResources"]["type"] == "EC2"
    orders = deployment.mocks.one(QUEUE).inputs["computeEnvironmentOrders"]
    assert orders == [
        {"order": 1, "computeEnvironment": spot.state["arn"]},
        {"order": 2, "computeEnvironment": on_demand.state["arn"]},
    ]
    assert deployment.outputs["computeEnvironmentArns"] == [
        spot.state["arn"],
        on_demand.state["arn"],
    ]


def test_configured_network_is_used_and_no_group_created_when_given(tmp_path: Path):
    stack_file = (PROJECT_DIR / "Pulumi.dev.yaml").read_text() + (
        "  batch-stacks:network:\n    subnetIds: [subnet-0c1, subnet-0c2]\n    securityGroupIds: [sg-0c1]\n"
    )
    deployment = deploy("lab", project_copy(tmp_path, stack_file))
    resources = deployment.mocks.one(CE).inputs["computeResources"]
    assert resources["subnets"] == ["subnet-0c1", "subnet-0c2"]
    assert resources["securityGroupIds"] == ["sg-0c1"]
    assert deployment.mocks.of_type("aws:ec2/securityGroup:SecurityGroup") == []
    assert "aws:ec2/getVpc:getVpc" not in deployment.mocks.invokes


def test_configured_subnets_without_groups_create_a_group_in_their_vpc(tmp_path: Path):
    stack_file = (PROJECT_DIR / "Pulumi.dev.yaml").read_text() + (
        "  batch-stacks:network:\n    subnetIds: [subnet-0c1]\n"
    )
    deployment = deploy("lab", project_copy(tmp_path, stack_file))
    group = deployment.mocks.one("aws:ec2/securityGroup:SecurityGroup")
    assert group.inputs["vpcId"] == "vpc-0fromsubnet"
    assert "ingress" not in group.inputs or group.inputs["ingress"] == []


def test_bad_value_in_a_stack_file_stops_before_any_resource(tmp_path: Path):
    stack_file = (PROJECT_DIR / "Pulumi.prod.yaml").read_text().replace("maxVcpus: 256", "maxVcpus: -1")
    with pytest.raises(SettingsError) as caught:
        deploy("lab", project_copy(tmp_path, stack_file))
    assert str(caught.value) == (
        "batch-stacks:compute.maxVcpus: -1 is not allowed; use a whole number from 1 to 10000"
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_default_command_shows_the_logical_index_contract(stack, request):
    deployment = request.getfixturevalue(stack)
    properties = json.loads(deployment.mocks.one(JOB_DEF).inputs["containerProperties"])
    script = properties["command"][-1]
    assert "${RUNNER_INDEX_OFFSET:-0} + ${AWS_BATCH_JOB_ARRAY_INDEX:-0}" in script
    assert "RUNNER_ARRAY_SIZE" in script


def test_misspelled_section_and_every_other_mistake_stop_the_program(tmp_path: Path):
    stack_file = (
        (PROJECT_DIR / "Pulumi.prod.yaml")
        .read_text()
        .replace("batch-stacks:compute:", "batch-stacks:comptue:")
        .replace("memoryMiB: 4096", "memoryMiB: 64")
    )
    with pytest.raises(SettingsError) as caught:
        deploy("lab", project_copy(tmp_path, stack_file))
    assert str(caught.value).splitlines() == [
        "batch-stacks:comptue: unknown setting; did you mean 'batch-stacks:compute'?",
        "batch-stacks:job.memoryMiB: 64 is not allowed; use a whole number from 128 to 1572864",
    ]


def test_prod_keeps_its_log_group_on_destroy_and_the_lab_does_not(monkeypatch: pytest.MonkeyPatch):
    retained: dict[str, bool] = {}
    original = MockMonitor.RegisterResource

    def recording(self: MockMonitor, request: Any) -> Any:
        if request.type == "aws:cloudwatch/logGroup:LogGroup":
            retained[request.name] = request.retainOnDelete
        return original(self, request)

    monkeypatch.setattr(MockMonitor, "RegisterResource", recording)
    deploy("dev")
    deploy("prod")
    assert retained == {"batch-stacks-dev-logs": False, "batch-stacks-prod-logs": True}


def test_every_security_group_rule_says_what_it_is_for(dev: Deployment):
    group = dev.mocks.one("aws:ec2/securityGroup:SecurityGroup")
    rules = group.inputs.get("egress", []) + group.inputs.get("ingress", [])
    assert rules and all(rule.get("description") for rule in rules)


def fargate_stack(tmp_path: Path) -> Deployment:
    stack_file = (
        (PROJECT_DIR / "Pulumi.dev.yaml")
        .read_text()
        .replace(
            "purchaseModel: spot", "purchaseModel: spot\n    platform: fargate\n    onDemandFallback: true"
        )
        .replace("    minVcpus: 0\n", "")
        .replace("    instanceTypes: [c6i, m6i, r6i, c5, m5, r5, c6a, m6a]\n", "")
    )
    return deploy("lab", project_copy(tmp_path, stack_file))


def test_fargate_spot_stack_has_no_instances_and_an_execution_role(tmp_path: Path):
    deployment = fargate_stack(tmp_path)
    spot, fallback = deployment.mocks.of_type(CE)
    assert spot.inputs["computeResources"]["type"] == "FARGATE_SPOT"
    assert fallback.inputs["computeResources"]["type"] == "FARGATE"
    for environment in (spot, fallback):
        assert set(environment.inputs["computeResources"]) == {
            "type",
            "maxVcpus",
            "subnets",
            "securityGroupIds",
        }
        assert "updatePolicy" not in environment.inputs
    assert deployment.mocks.of_type(PROFILE) == []
    assert all(
        json.loads(r.inputs["assumeRolePolicy"])["Statement"][0]["Principal"]["Service"]
        == "ecs-tasks.amazonaws.com"
        for r in deployment.mocks.of_type(ROLE)
    )
    (attachment,) = deployment.mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert (
        attachment.inputs["policyArn"]
        == "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    )

    definition = deployment.mocks.one(JOB_DEF).inputs
    assert definition["platformCapabilities"] == ["FARGATE"]
    container = json.loads(definition["containerProperties"])
    execution_role = next(r for r in deployment.mocks.of_type(ROLE) if r.name.endswith("-execution"))
    assert container["executionRoleArn"] == execution_role.state["arn"]
    assert container["jobRoleArn"] != container["executionRoleArn"]
    assert container["networkConfiguration"] == {"assignPublicIp": "ENABLED"}
    assert container["user"] == "nobody"
    assert [rule.get("onStatusReason") for rule in definition["retryStrategy"]["evaluateOnExits"]] == [
        "Host EC2*",
        "Your Spot Task was interrupted*",
        None,
    ]
    assert deployment.outputs["purchaseModel"] == "spot"


def test_a_stack_that_builds_its_image_owns_the_repository_and_runs_the_pushed_digest(tmp_path: Path):
    stack_file = (
        (PROJECT_DIR / "Pulumi.dev.yaml")
        .read_text()
        .replace(
            "    image: public.ecr.aws/amazonlinux/amazonlinux:2023\n",
            "    build:\n      context: examples\n      platform: linux/arm64\n",
        )
    )
    deployment = deploy("lab", project_copy(tmp_path, stack_file))
    mocks = deployment.mocks
    repository = mocks.one("aws:ecr/repository:Repository")
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    lifecycle = json.loads(mocks.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])
    assert lifecycle["rules"][0]["selection"]["countNumber"] == 20
    url = repository.state["repositoryUrl"]
    image = mocks.one("docker-build:index:Image").inputs
    assert image["push"] is True and image["platforms"] == ["linux/arm64"]
    assert image["context"] == {"location": "examples"} and image["dockerfile"] == {
        "location": "examples/Dockerfile"
    }
    assert image["tags"] == [f"{url}:latest"]
    assert image["registries"] == [{"address": url, "username": "AWS", "password": "token-from-ecr"}]
    assert image["cacheFrom"] == [{"registry": {"ref": f"{url}:buildcache"}}]
    assert "aws:ecr/getAuthorizationToken:getAuthorizationToken" in mocks.invokes
    container = json.loads(mocks.one(JOB_DEF).inputs["containerProperties"])
    assert container["image"] == f"{url}@sha256:" + "ab" * 32  # by digest: a new build, a new revision
    assert deployment.outputs["jobImage"] == container["image"]
    component = mocks.one("batch-stacks:index:TaskImage")
    assert component.name.endswith("-image")


def test_a_stack_that_names_its_image_builds_nothing(dev: Deployment):
    assert dev.mocks.of_type("docker-build:index:Image") == []
    assert dev.mocks.of_type("aws:ecr/repository:Repository") == []
    assert dev.outputs["jobImage"] == "public.ecr.aws/amazonlinux/amazonlinux:2023"
