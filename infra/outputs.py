"""The stack outputs: the contract ``runner`` reads (see runner/stack_outputs.py)."""

from __future__ import annotations

import pulumi

from infra.environment import BatchEnvironment
from infra.settings import StackSettings


def stack_outputs(env: BatchEnvironment, settings: StackSettings) -> dict[str, pulumi.Input]:
    """Every output in the contract, by its exact name."""
    return {
        "region": env.region,
        "jobQueueName": env.queue.queue_name,
        "jobQueueArn": env.queue.arn,
        "jobDefinitionName": env.job_definition.definition_name,
        "jobDefinitionArn": env.job_definition.arn,
        "computeEnvironmentArns": pulumi.Output.all(*(ce.arn for ce in env.compute_environments)),
        "jobRoleArn": env.roles.job_role_arn,
        "logGroupName": env.log_group_name,
        "purchaseModel": settings.compute.purchase_model,
        "maxVcpus": settings.compute.max_vcpus,
        "jobVcpus": settings.job.vcpus,
        "jobMemoryMiB": settings.job.memory_mib,
    }
