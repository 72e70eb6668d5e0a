"""IAM for Batch: the job role containers assume and the instance role/profile for the hosts."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.settings import PROJECT, DataSettings


@dataclass(frozen=True)
class BatchRolesArgs:
    data: DataSettings
    tags: dict[str, str]
    partition: pulumi.Input[str] = "aws"


class BatchRoles(pulumi.ComponentResource):
    """Job role (trusted by ECS tasks, scoped S3 access) and instance role with its profile.

    No Batch service role is created: omitting it lets Batch use its service-linked role, which
    keeps compute environment updates in place.
    """

    job_role_arn: pulumi.Output[str]
    instance_profile_arn: pulumi.Output[str]
    # Compute environments depend on these so hosts never start without their permissions.
    instance_policy_attachments: list[pulumi.Resource]

    def __init__(self, name: str, args: BatchRolesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PROJECT}:index:BatchRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def service_role(suffix: str, service: str, description: str) -> aws.iam.Role:
            return aws.iam.Role(
                f"{name}-{suffix}",
                assume_role_policy=policies.policy_json(policies.assume_role_policy(service)),
                description=description,
                tags=args.tags,
                opts=child,
            )

        job_role = service_role("job", policies.ECS_TASKS, "Assumed by batch-stacks job containers")
        if args.data.bucket is not None:
            aws.iam.RolePolicy(
                f"{name}-job-data",
                role=job_role.id,
                policy=pulumi.Output.from_input(args.partition).apply(
                    lambda partition: policies.policy_json(
                        policies.data_access_policy(args.data, partition) or {}
                    )
                ),
                opts=child,
            )

        instance_role = service_role("instance", policies.EC2, "Batch container instances (ECS agent)")
        ecs_attachment = aws.iam.RolePolicyAttachment(
            f"{name}-instance-ecs",
            role=instance_role.name,
            policy_arn=pulumi.Output.from_input(args.partition).apply(
                lambda partition: policies.managed_policy_arn(partition, policies.ECS_INSTANCE_POLICY)
            ),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-instance",
            role=instance_role.name,
            tags=args.tags,
            opts=child,
        )

        self.job_role_arn = job_role.arn
        self.instance_profile_arn = profile.arn
        self.instance_policy_attachments = [ecs_attachment]
        self.register_outputs(
            {"jobRoleArn": self.job_role_arn, "instanceProfileArn": self.instance_profile_arn}
        )
