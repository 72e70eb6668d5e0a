"""IAM for Batch: the job role containers assume, and what the platform needs to start them.

EC2 hosts get an instance role with its instance profile; Fargate tasks get an execution role.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.settings import PROJECT, DataSettings, Platform


@dataclass(frozen=True)
class BatchRolesArgs:
    data: DataSettings
    tags: dict[str, str]
    platform: Platform = "ec2"
    partition: pulumi.Input[str] = "aws"


class BatchRoles(pulumi.ComponentResource):
    """Job role (trusted by ECS tasks, scoped S3 access) plus the platform's role.

    No Batch service role is created: omitting it lets Batch use its service-linked role, which
    keeps compute environment updates in place.
    """

    job_role_arn: pulumi.Output[str]
    # EC2 only: what the compute environment's instance_role takes (the profile, not the role).
    instance_profile_arn: pulumi.Output[str] | None
    # Fargate only: lets the task pull its image and write its logs.
    execution_role_arn: pulumi.Output[str] | None
    # Compute environments depend on these so hosts never start without their permissions.
    policy_attachments: list[pulumi.Resource]

    def __init__(self, name: str, args: BatchRolesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PROJECT}:index:BatchRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        partition = pulumi.Output.from_input(args.partition)

        def service_role(suffix: str, service: str, description: str) -> aws.iam.Role:
            return aws.iam.Role(
                f"{name}-{suffix}",
                assume_role_policy=policies.policy_json(policies.assume_role_policy(service)),
                description=description,
                tags=args.tags,
                opts=child,
            )

        def attach(suffix: str, role: aws.iam.Role, policy: str) -> aws.iam.RolePolicyAttachment:
            return aws.iam.RolePolicyAttachment(
                f"{name}-{suffix}",
                role=role.name,
                policy_arn=partition.apply(lambda p: policies.managed_policy_arn(p, policy)),
                opts=child,
            )

        job_role = service_role("job", policies.ECS_TASKS, "Assumed by batch-stacks job containers")
        if args.data.bucket is not None:
            aws.iam.RolePolicy(
                f"{name}-job-data",
                role=job_role.id,
                policy=partition.apply(
                    lambda p: policies.policy_json(policies.data_access_policy(args.data, p) or {})
                ),
                opts=child,
            )
        self.job_role_arn = job_role.arn
        self.instance_profile_arn = None
        self.execution_role_arn = None

        if args.platform == "fargate":
            execution_role = service_role("execution", policies.ECS_TASKS, "Fargate: pull images, write logs")
            self.policy_attachments = [
                attach("execution-ecs", execution_role, policies.ECS_TASK_EXECUTION_POLICY)
            ]
            self.execution_role_arn = execution_role.arn
        else:
            instance_role = service_role("instance", policies.EC2, "Batch container instances (ECS agent)")
            self.policy_attachments = [attach("instance-ecs", instance_role, policies.ECS_INSTANCE_POLICY)]
            profile = aws.iam.InstanceProfile(
                f"{name}-instance", role=instance_role.name, tags=args.tags, opts=child
            )
            self.instance_profile_arn = profile.arn

        self.register_outputs(
            {
                "jobRoleArn": self.job_role_arn,
                "instanceProfileArn": self.instance_profile_arn,
                "executionRoleArn": self.execution_role_arn,
            }
        )
