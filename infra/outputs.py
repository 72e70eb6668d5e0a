"""The stack outputs: the contract ``runner`` reads (``runner/aws/stack_outputs.py`` checks it)."""

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
        # What tasks run: job.image, or the image this stack built and pushed (by digest).
        "jobImage": env.image,
        "costModel": cost_model(settings),
        "data": data_location(settings),
    }


def data_location(settings: StackSettings) -> dict[str, object] | None:
    """Where the stack's tasks read and write data, and may read inputs (None: no data bucket)."""
    data = settings.data
    if data.bucket is None:
        return None
    located: dict[str, object] = {"bucket": data.bucket, "prefix": data.prefix, "access": data.access}
    if data.inputs:
        located["inputs"] = list(data.inputs)
    return located


def cost_model(settings: StackSettings) -> dict[str, object]:
    """What a vCPU-hour costs on this stack (the runner's estimates read it from here)."""
    cost, model = settings.cost, settings.compute.purchase_model
    return {
        "purchaseModel": model,
        "usdPerVcpuHour": cost.usd_per_vcpu_hour(model),
        "onDemandUsdPerVcpuHour": cost.on_demand_usd_per_vcpu_hour,
        "spotUsdPerVcpuHour": cost.spot_usd_per_vcpu_hour,
        "hourlyBudgetUsd": cost.hourly_budget_usd,
    }
