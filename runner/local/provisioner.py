"""Create each resource the Pulumi program declares in the emulator, from its actual inputs.

``EmulatorMocks`` plugs into Pulumi's mock engine: every ``RegisterResource`` becomes the boto3
calls the AWS provider would make, every invoke is answered by asking the emulator. A resource
type with no mapping is an error naming the type, so a new resource can never be skipped quietly.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pulumi
from botocore.exceptions import BotoCoreError, ClientError

from runner.aws.clients import AwsTarget
from runner.errors import RunnerError

Inputs = dict[str, Any]
State = dict[str, Any]
# The role moto insists on for compute environments; real AWS uses the service-linked role the
# program relies on by omitting serviceRole.
EMULATOR_SERVICE_ROLE = "batch-stacks-emulator-batch-service"


class UnsupportedResourceError(RunnerError):
    """The program declares a resource (or invoke) the emulator cannot create (or answer)."""


def autoname(logical_name: str) -> str:
    """Pulumi's default physical name: the logical name plus a random suffix."""
    return f"{logical_name}-{secrets.token_hex(4)[:7]}"


def _tags_list(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in (tags or {}).items()]


def _int(value: Any) -> int:
    return int(value)  # the mock engine hands numbers over as floats


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class EmulatorMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that deploy into an AWS emulator (moto) through boto3."""

    def __init__(self, target: AwsTarget) -> None:
        self.target = target
        self._clients: dict[str, Any] = {}
        self.created: list[tuple[str, str]] = []  # (type, physical id), in creation order
        self.error: Exception | None = None
        self.resources: dict[str, Callable[[str, Inputs], tuple[str, State]]] = {
            "aws:iam/role:Role": self._role,
            "aws:iam/rolePolicy:RolePolicy": self._role_policy,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._role_policy_attachment,
            "aws:iam/instanceProfile:InstanceProfile": self._instance_profile,
            "aws:cloudwatch/logGroup:LogGroup": self._log_group,
            "aws:ec2/securityGroup:SecurityGroup": self._security_group,
            "aws:batch/computeEnvironment:ComputeEnvironment": self._compute_environment,
            "aws:batch/jobQueue:JobQueue": self._job_queue,
            "aws:batch/jobDefinition:JobDefinition": self._job_definition,
            "aws:ecr/repository:Repository": self._repository,
            "aws:ecr/lifecyclePolicy:LifecyclePolicy": self._lifecycle_policy,
            "docker-build:index:Image": self._image,
        }
        self.invokes: dict[str, Callable[[Inputs], dict[str, Any]]] = {
            "aws:index/getRegion:getRegion": self._get_region,
            "aws:index/getPartition:getPartition": lambda _: {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
            },
            "aws:index/getCallerIdentity:getCallerIdentity": self._get_caller_identity,
            "aws:ec2/getVpc:getVpc": self._get_vpc,
            "aws:ec2/getSubnets:getSubnets": self._get_subnets,
            "aws:ec2/getSubnet:getSubnet": self._get_subnet,
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": self._get_authorization_token,
        }

    def teardown(self, created: list[tuple[str, str]]) -> list[str]:
        """Delete what a deployment created, newest first; returns what could not be deleted.

        Dependents were created after what they depend on, so reverse order deletes them first.
        """
        batch = self.client("batch")
        deleters: dict[str, Callable[[str], Any]] = {
            "aws:iam/role:Role": self._delete_role,
            "aws:iam/rolePolicy:RolePolicy": self._delete_role_policy,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._detach_role_policy,
            "aws:iam/instanceProfile:InstanceProfile": self._delete_instance_profile,
            "aws:cloudwatch/logGroup:LogGroup": lambda name: self.client("logs").delete_log_group(
                logGroupName=name
            ),
            "aws:ec2/securityGroup:SecurityGroup": lambda gid: self.client("ec2").delete_security_group(
                GroupId=gid
            ),
            "aws:batch/computeEnvironment:ComputeEnvironment": self._delete_compute_environment,
            "aws:batch/jobQueue:JobQueue": self._delete_job_queue,
            "aws:ecr/repository:Repository": lambda repository: self.client("ecr").delete_repository(
                repositoryName=repository, force=True
            ),
            "aws:batch/jobDefinition:JobDefinition": lambda arn: batch.deregister_job_definition(
                jobDefinition=arn
            ),
            # Gone with their repository; an image the emulator never built has nothing to delete.
            "aws:ecr/lifecyclePolicy:LifecyclePolicy": lambda _: None,
            "docker-build:index:Image": lambda _: None,
        }
        left: list[str] = []
        for typ, physical_id in reversed(created):
            try:
                deleters[typ](physical_id)
            except ClientError as err:
                error = err.response.get("Error", {})
                code, message = error.get("Code", ""), str(error.get("Message", "")).lower()
                gone = (
                    "NotFound" in code
                    or "NoSuchEntity" in code
                    or "not exist" in message
                    or ("not found" in message)
                )
                if not gone:
                    left.append(f"{typ} {physical_id} ({code}: {error.get('Message', '')})")
            except KeyError:
                left.append(f"{typ} {physical_id} (no way to delete it)")
        return left

    def _delete_role(self, name: str) -> None:
        iam = self.client("iam")
        for profile in iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
            iam.remove_role_from_instance_profile(
                InstanceProfileName=profile["InstanceProfileName"], RoleName=name
            )
        iam.delete_role(RoleName=name)

    def _delete_role_policy(self, physical_id: str) -> None:
        role, policy = physical_id.split(":", 1)  # as _role_policy names it
        self.client("iam").delete_role_policy(RoleName=role, PolicyName=policy)

    def _detach_role_policy(self, physical_id: str) -> None:
        role, policy_arn = physical_id.split("/", 1)  # as _role_policy_attachment names it
        self.client("iam").detach_role_policy(RoleName=role, PolicyArn=policy_arn)

    def _delete_instance_profile(self, name: str) -> None:
        iam = self.client("iam")
        for role in iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]:
            iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role["RoleName"])
        iam.delete_instance_profile(InstanceProfileName=name)

    def _delete_job_queue(self, arn: str) -> None:
        batch = self.client("batch")
        batch.update_job_queue(jobQueue=arn, state="DISABLED")
        batch.delete_job_queue(jobQueue=arn)

    def _delete_compute_environment(self, arn: str) -> None:
        batch = self.client("batch")
        batch.update_compute_environment(computeEnvironment=arn, state="DISABLED")
        batch.delete_compute_environment(computeEnvironment=arn)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.target.client(service)
        return self._clients[service]

    # --- The mock engine's two entry points ---------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:
            return args.name, {}  # component resources exist only in the program
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider", {}
        handler = self.resources.get(args.typ)
        try:
            if handler is None:
                raise UnsupportedResourceError(
                    f"the local emulator cannot create {args.typ} (resource '{args.name}'); "
                    "add a mapping in runner/local/provisioner.py"
                )
            physical_id, state = handler(args.name, dict(args.inputs))
        except ClientError as err:
            error = err.response.get("Error", {})
            self.error = RunnerError(
                f"the emulator refused {args.typ} '{args.name}': {error.get('Code')}: {error.get('Message')}"
            )
            raise self.error from None
        except BotoCoreError as err:  # no answer, or not one botocore could read
            self.error = RunnerError(
                f"the emulator failed creating {args.typ} '{args.name}' ({type(err).__name__}); "
                "see its log (`runner local status`) and run `runner local up` again"
            )
            raise self.error from None
        except Exception as err:
            self.error = err
            raise
        self.created.append((args.typ, physical_id))
        return physical_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        handler = self.invokes.get(args.token)
        if handler is None:
            self.error = UnsupportedResourceError(
                f"the local emulator cannot answer the invoke {args.token}; "
                "add it in runner/local/provisioner.py"
            )
            raise self.error
        return handler(dict(args.args)), []

    # --- Invokes ------------------------------------------------------------------------------

    def _get_region(self, _: Inputs) -> dict[str, Any]:
        region = self.target.region
        return {"region": region, "name": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com"}

    def _get_caller_identity(self, _: Inputs) -> dict[str, Any]:
        identity = self.client("sts").get_caller_identity()
        return {
            "accountId": identity["Account"],
            "arn": identity["Arn"],
            "userId": identity["UserId"],
            "id": identity["Account"],
        }

    def _get_vpc(self, inputs: Inputs) -> dict[str, Any]:
        filters = [{"Name": f["name"], "Values": list(f["values"])} for f in inputs.get("filters") or []]
        if inputs.get("default"):
            filters.append({"Name": "isDefault", "Values": ["true"]})
        kwargs: dict[str, Any] = {"Filters": filters}
        if inputs.get("id"):
            kwargs["VpcIds"] = [inputs["id"]]
        vpcs = self.client("ec2").describe_vpcs(**kwargs)["Vpcs"]
        if len(vpcs) != 1:
            raise RunnerError(f"the emulator has {len(vpcs)} VPCs matching {inputs}; expected exactly one")
        vpc = vpcs[0]
        return {"id": vpc["VpcId"], "cidrBlock": vpc["CidrBlock"], "default": vpc.get("IsDefault", False)}

    def _get_subnets(self, inputs: Inputs) -> dict[str, Any]:
        filters = [{"Name": f["name"], "Values": list(f["values"])} for f in inputs.get("filters") or []]
        subnets = self.client("ec2").describe_subnets(Filters=filters)["Subnets"]
        return {"ids": sorted(s["SubnetId"] for s in subnets), "id": "subnets"}

    def _get_subnet(self, inputs: Inputs) -> dict[str, Any]:
        (subnet,) = self.client("ec2").describe_subnets(SubnetIds=[inputs["id"]])["Subnets"]
        return {
            "id": subnet["SubnetId"],
            "vpcId": subnet["VpcId"],
            "availabilityZone": subnet["AvailabilityZone"],
        }

    # --- Resources ----------------------------------------------------------------------------

    def _role(self, name: str, inputs: Inputs) -> tuple[str, State]:
        role_name = inputs.get("name") or autoname(name)
        role = self.client("iam").create_role(
            **_drop_none(
                {
                    "RoleName": role_name,
                    "Path": inputs.get("path", "/"),
                    "AssumeRolePolicyDocument": inputs["assumeRolePolicy"],
                    "Description": inputs.get("description"),
                    "Tags": _tags_list(inputs.get("tags")),
                }
            )
        )["Role"]
        return role_name, {**inputs, "name": role_name, "arn": role["Arn"], "uniqueId": role["RoleId"]}

    def _role_policy(self, name: str, inputs: Inputs) -> tuple[str, State]:
        policy_name = inputs.get("name") or autoname(name)
        self.client("iam").put_role_policy(
            RoleName=inputs["role"], PolicyName=policy_name, PolicyDocument=inputs["policy"]
        )
        return f"{inputs['role']}:{policy_name}", {**inputs, "name": policy_name}

    def _role_policy_attachment(self, name: str, inputs: Inputs) -> tuple[str, State]:
        self.client("iam").attach_role_policy(RoleName=inputs["role"], PolicyArn=inputs["policyArn"])
        return f"{inputs['role']}/{inputs['policyArn']}", dict(inputs)

    def _instance_profile(self, name: str, inputs: Inputs) -> tuple[str, State]:
        iam = self.client("iam")
        profile_name = inputs.get("name") or autoname(name)
        profile = iam.create_instance_profile(
            InstanceProfileName=profile_name,
            Path=inputs.get("path", "/"),
            Tags=_tags_list(inputs.get("tags")),
        )["InstanceProfile"]
        if inputs.get("role"):
            iam.add_role_to_instance_profile(InstanceProfileName=profile_name, RoleName=inputs["role"])
        return profile_name, {
            **inputs,
            "name": profile_name,
            "arn": profile["Arn"],
            "uniqueId": profile["InstanceProfileId"],
        }

    def _repository(self, name: str, inputs: Inputs) -> tuple[str, State]:
        repository_name = inputs.get("name") or autoname(name).lower()
        created = self.client("ecr").create_repository(
            repositoryName=repository_name,
            imageTagMutability=inputs.get("imageTagMutability") or "MUTABLE",
            tags=[{"Key": k, "Value": v} for k, v in (inputs.get("tags") or {}).items()],
        )["repository"]
        return repository_name, {
            **inputs,
            "name": repository_name,
            "arn": created["repositoryArn"],
            "registryId": created["registryId"],
            "repositoryUrl": created["repositoryUri"],
        }

    def _lifecycle_policy(self, name: str, inputs: Inputs) -> tuple[str, State]:
        self.client("ecr").put_lifecycle_policy(
            repositoryName=inputs["repository"], lifecyclePolicyText=inputs["policy"]
        )
        return inputs["repository"], {**inputs, "registryId": ""}

    @staticmethod
    def _image(name: str, inputs: Inputs) -> tuple[str, State]:
        """Not built: no registry is reachable, and tasks run as local processes from the run's
        package, not from an image. The job definition names the tag it would have pushed."""
        tag = str((inputs.get("tags") or [f"{name}:latest"])[0])
        return f"{name}-local", {**inputs, "ref": tag, "digest": ""}

    def _get_authorization_token(self, inputs: Inputs) -> dict[str, Any]:
        return {"userName": "AWS", "password": "local", "authorizationToken": "", "id": "local", **inputs}

    def _log_group(self, name: str, inputs: Inputs) -> tuple[str, State]:
        logs = self.client("logs")
        group = inputs.get("name") or (
            inputs["namePrefix"] + secrets.token_hex(13) if inputs.get("namePrefix") else autoname(name)
        )
        logs.create_log_group(logGroupName=group, tags=inputs.get("tags") or {})
        if inputs.get("retentionInDays"):
            logs.put_retention_policy(logGroupName=group, retentionInDays=_int(inputs["retentionInDays"]))
        (described,) = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][:1]
        return group, {**inputs, "name": group, "arn": described["arn"].removesuffix(":*")}

    @staticmethod
    def _permissions(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        permissions = []
        for rule in rules:
            permission: dict[str, Any] = {
                "IpProtocol": str(rule["protocol"]),
                "IpRanges": [{"CidrIp": c} for c in rule.get("cidrBlocks") or []],
                "Ipv6Ranges": [{"CidrIpv6": c} for c in rule.get("ipv6CidrBlocks") or []],
            }
            if str(rule["protocol"]) != "-1":
                permission.update(FromPort=_int(rule["fromPort"]), ToPort=_int(rule["toPort"]))
            permissions.append(permission)
        return permissions

    def _security_group(self, name: str, inputs: Inputs) -> tuple[str, State]:
        ec2 = self.client("ec2")
        group_name = inputs.get("name") or autoname(name)
        tags = _tags_list(inputs.get("tags"))
        group_id = ec2.create_security_group(
            GroupName=group_name,
            Description=inputs.get("description") or "Managed by Pulumi",
            VpcId=inputs["vpcId"],
            **({"TagSpecifications": [{"ResourceType": "security-group", "Tags": tags}]} if tags else {}),
        )["GroupId"]
        # The provider removes AWS's default egress rule and applies exactly the declared ones.
        ec2.revoke_security_group_egress(
            GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        )
        if inputs.get("egress"):
            ec2.authorize_security_group_egress(
                GroupId=group_id, IpPermissions=self._permissions(inputs["egress"])
            )
        if inputs.get("ingress"):
            ec2.authorize_security_group_ingress(
                GroupId=group_id, IpPermissions=self._permissions(inputs["ingress"])
            )
        return group_id, {
            **inputs,
            "name": group_name,
            "arn": f"arn:aws:ec2:{self.target.region}::security-group/{group_id}",
        }

    def _service_role_arn(self) -> str:
        iam = self.client("iam")
        try:
            return iam.get_role(RoleName=EMULATOR_SERVICE_ROLE)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "batch.amazonaws.com"},
                    }
                ],
            }
            return iam.create_role(
                RoleName=EMULATOR_SERVICE_ROLE, AssumeRolePolicyDocument=json.dumps(trust)
            )["Role"]["Arn"]

    def _compute_environment(self, name: str, inputs: Inputs) -> tuple[str, State]:
        batch = self.client("batch")
        ce_name = inputs.get("name") or autoname(name)
        resources = inputs.get("computeResources") or {}
        compute = _drop_none(
            {
                "type": resources.get("type"),
                "allocationStrategy": resources.get("allocationStrategy"),
                "minvCpus": _int(resources["minVcpus"]) if "minVcpus" in resources else None,
                "maxvCpus": _int(resources["maxVcpus"]),
                "desiredvCpus": _int(resources["desiredVcpus"]) if "desiredVcpus" in resources else None,
                "instanceTypes": resources.get("instanceTypes"),
                "subnets": resources.get("subnets"),
                "securityGroupIds": resources.get("securityGroupIds"),
                "instanceRole": resources.get("instanceRole"),
                "bidPercentage": _int(resources["bidPercentage"]) if "bidPercentage" in resources else None,
                "tags": resources.get("tags"),
            }
        )
        created = batch.create_compute_environment(
            **_drop_none(
                {
                    "computeEnvironmentName": ce_name,
                    "type": inputs["type"],
                    "state": inputs.get("state"),
                    "computeResources": compute,
                    "serviceRole": inputs.get("serviceRole") or self._service_role_arn(),
                    "tags": inputs.get("tags"),
                }
            )
        )
        policy = inputs.get("updatePolicy")
        if policy:
            # As the provider does: the update policy is only accepted by UpdateComputeEnvironment.
            batch.update_compute_environment(
                computeEnvironment=ce_name,
                updatePolicy=_drop_none(
                    {
                        "terminateJobsOnUpdate": policy.get("terminateJobsOnUpdate"),
                        "jobExecutionTimeoutMinutes": _int(policy["jobExecutionTimeoutMinutes"])
                        if "jobExecutionTimeoutMinutes" in policy
                        else None,
                    }
                ),
            )
        arn = created["computeEnvironmentArn"]
        return arn, {**inputs, "name": ce_name, "arn": arn}

    def _job_queue(self, name: str, inputs: Inputs) -> tuple[str, State]:
        queue_name = inputs.get("name") or autoname(name)
        params = _drop_none(
            {
                "jobQueueName": queue_name,
                "state": inputs.get("state", "ENABLED"),
                "priority": _int(inputs.get("priority", 1)),
                "computeEnvironmentOrder": [
                    {"order": _int(o["order"]), "computeEnvironment": o["computeEnvironment"]}
                    for o in inputs.get("computeEnvironmentOrders") or []
                ],
                "jobStateTimeLimitActions": [
                    {
                        "reason": a["reason"],
                        "state": a["state"],
                        "maxTimeSeconds": _int(a["maxTimeSeconds"]),
                        "action": a["action"],
                    }
                    for a in inputs.get("jobStateTimeLimitActions") or []
                ]
                or None,
                "schedulingPolicyArn": inputs.get("schedulingPolicyArn"),
                "tags": inputs.get("tags"),
            }
        )
        created = self.client("batch").create_job_queue(**params)
        arn = created["jobQueueArn"]
        return arn, {**inputs, "name": queue_name, "arn": arn}

    def _job_definition(self, name: str, inputs: Inputs) -> tuple[str, State]:
        definition_name = inputs.get("name") or autoname(name)
        retry = inputs.get("retryStrategy")
        params = _drop_none(
            {
                "jobDefinitionName": definition_name,
                "type": inputs["type"],
                "containerProperties": json.loads(inputs["containerProperties"])
                if inputs.get("containerProperties")
                else None,
                "parameters": inputs.get("parameters"),
                "retryStrategy": _drop_none(
                    {
                        "attempts": _int(retry["attempts"]) if "attempts" in retry else None,
                        "evaluateOnExit": [
                            _drop_none(
                                {
                                    "action": r["action"],
                                    "onStatusReason": r.get("onStatusReason"),
                                    "onReason": r.get("onReason"),
                                    "onExitCode": r.get("onExitCode"),
                                }
                            )
                            for r in retry.get("evaluateOnExits") or []
                        ]
                        or None,
                    }
                )
                if retry
                else None,
                "timeout": {"attemptDurationSeconds": _int(inputs["timeout"]["attemptDurationSeconds"])}
                if inputs.get("timeout")
                else None,
                "propagateTags": inputs.get("propagateTags"),
                "platformCapabilities": inputs.get("platformCapabilities"),
                "tags": inputs.get("tags"),
            }
        )
        created = self.client("batch").register_job_definition(**params)
        arn = created["jobDefinitionArn"]
        return arn, {
            **inputs,
            "name": definition_name,
            "arn": arn,
            "revision": created["revision"],
            "arnPrefix": arn.rsplit(":", 1)[0],
        }
