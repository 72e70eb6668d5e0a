"""A managed compute environment (EC2, Spot, Fargate or Fargate Spot) that scales to zero."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.settings import PROJECT, ComputeSettings

BATCH_TYPE = {
    ("ec2", "spot"): "SPOT",
    ("ec2", "on-demand"): "EC2",
    ("fargate", "spot"): "FARGATE_SPOT",
    ("fargate", "on-demand"): "FARGATE",
}


@dataclass(frozen=True)
class ComputeEnvironmentArgs:
    compute: ComputeSettings
    subnet_ids: pulumi.Input[list[str]]
    security_group_ids: pulumi.Input[list[str]]
    tags: dict[str, str]
    # EC2 only: the instance profile hosts run with.
    instance_profile_arn: pulumi.Input[str] | None = None
    # Resources the hosts need before they start (the platform role's policy attachments).
    depends_on: tuple[pulumi.Resource, ...] = ()


def compute_resources(compute: ComputeSettings) -> dict[str, object]:
    """The static part of ``compute_resources`` for the configured platform and purchase model.

    ``desired_vcpus`` is never set: Batch owns it, and setting it would fight the scaler. Fargate
    takes only a type and a vCPU ceiling.
    """
    resources: dict[str, object] = {
        "type": BATCH_TYPE[(compute.platform, compute.purchase_model)],
        "max_vcpus": compute.max_vcpus,
    }
    if compute.fargate:
        return resources
    resources.update(
        allocation_strategy=compute.allocation_strategy,
        min_vcpus=compute.min_vcpus,
        instance_types=list(compute.instance_types),
    )
    if compute.bid_percentage is not None:
        resources["bid_percentage"] = compute.bid_percentage
    return resources


class ComputeEnvironment(pulumi.ComponentResource):
    """One managed compute environment.

    Autonamed (no fixed name) so a replacement is created before the old one is deleted, and
    without a service role so Batch uses its service-linked role.
    """

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ComputeEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PROJECT}:index:ComputeEnvironment", name, None, opts)
        compute = args.compute
        resources: dict[str, object] = {
            **compute_resources(compute),
            "subnets": args.subnet_ids,
            "security_group_ids": args.security_group_ids,
        }
        update_policy = None
        if not compute.fargate:
            # Instances carry the cost-allocation tags too: they are what is billed.
            resources.update(instance_role=args.instance_profile_arn, tags=args.tags)
            update_policy = {
                "terminate_jobs_on_update": compute.terminate_jobs_on_update,
                "job_execution_timeout_minutes": compute.update_timeout_minutes,
            }
        environment = aws.batch.ComputeEnvironment(
            name,
            type="MANAGED",
            state="ENABLED",
            compute_resources=resources,
            update_policy=update_policy,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.arn = environment.arn
        self.register_outputs({"arn": self.arn})
