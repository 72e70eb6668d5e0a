"""The whole per-stack Batch environment, composed from the smaller components."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.compute import ComputeEnvironment, ComputeEnvironmentArgs
from infra.image import TaskImage, TaskImageArgs
from infra.job_definition import JobDefinition, JobDefinitionArgs
from infra.network import BatchNetwork, BatchNetworkArgs
from infra.queue import JobQueue, JobQueueArgs
from infra.roles import BatchRoles, BatchRolesArgs
from infra.settings import PROJECT, StackSettings


class BatchEnvironment(pulumi.ComponentResource):
    """IAM, network, compute environment(s), log group, queue and job definition for one stack."""

    region: pulumi.Output[str]
    roles: BatchRoles
    compute_environments: list[ComputeEnvironment]
    queue: JobQueue
    job_definition: JobDefinition
    log_group_name: pulumi.Output[str]
    task_image: TaskImage | None  # when the stack builds its image (job.build)
    image: pulumi.Output[str]

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PROJECT}:index:BatchEnvironment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        tags = settings.tags

        self.region = aws.get_region_output(opts=invoke).region
        partition = aws.get_partition_output(opts=invoke).partition

        self.roles = BatchRoles(
            f"{name}-roles",
            BatchRolesArgs(
                data=settings.data, tags=tags, platform=settings.compute.platform, partition=partition
            ),
            opts=child,
        )
        network = BatchNetwork(
            f"{name}-network", BatchNetworkArgs(network=settings.network, tags=tags), opts=child
        )

        environments = [("compute", settings.compute)]
        if settings.compute.on_demand_fallback:
            environments.append(("fallback", settings.compute.on_demand_counterpart()))
        self.compute_environments = [
            ComputeEnvironment(
                f"{name}-{role}",
                ComputeEnvironmentArgs(
                    compute=compute,
                    instance_profile_arn=self.roles.instance_profile_arn,
                    subnet_ids=network.subnet_ids,
                    security_group_ids=network.security_group_ids,
                    tags=tags,
                    depends_on=tuple(self.roles.policy_attachments),
                ),
                opts=child,
            )
            for role, compute in environments
        ]

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name_prefix=f"/{PROJECT}/{settings.stack}/",
            retention_in_days=settings.logs.retention_days,
            tags=tags,
            # A stack that keeps its logs a long time keeps them past `pulumi destroy` too.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=settings.logs.retain_on_delete),
        )
        self.log_group_name = log_group.name

        # The task image: a pushed one by reference, or one this stack builds and pushes.
        built = settings.job.build
        self.task_image = (
            TaskImage(f"{name}-image", TaskImageArgs(build=built, tags=tags), opts=child) if built else None
        )
        self.image = (
            self.task_image.ref if self.task_image else pulumi.Output.from_input(settings.job.image or "")
        )

        self.queue = JobQueue(
            f"{name}-queue",
            JobQueueArgs(
                queue=settings.queue,
                compute_environment_arns=[ce.arn for ce in self.compute_environments],
                tags=tags,
            ),
            opts=child,
        )
        self.job_definition = JobDefinition(
            f"{name}-job",
            JobDefinitionArgs(
                job=settings.job,
                image=self.image,
                job_role_arn=self.roles.job_role_arn,
                log_group_name=log_group.name,
                region=self.region,
                tags=tags,
                execution_role_arn=self.roles.execution_role_arn,
                assign_public_ip=settings.network.public_ip,
            ),
            opts=child,
        )
        self.register_outputs(
            {
                "jobQueueArn": self.queue.arn,
                "jobDefinitionArn": self.job_definition.arn,
                "logGroupName": self.log_group_name,
            }
        )
