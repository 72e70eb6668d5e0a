"""The stack-output contract between the Pulumi program and the runner."""

from __future__ import annotations

CONTRACT_KEYS: tuple[str, ...] = (
    "region",
    "jobQueueName",
    "jobQueueArn",
    "jobDefinitionName",
    "jobDefinitionArn",
    "computeEnvironmentArns",
    "jobRoleArn",
    "logGroupName",
    "purchaseModel",
    "maxVcpus",
    "jobVcpus",
    "jobMemoryMiB",
)
