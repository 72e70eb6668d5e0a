"""The job definition: the container every job starts from, retries and logs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.settings import PROJECT, JobSettings

# Containers never run as root (the seed's "User: nobody").
CONTAINER_USER = "nobody"
LOG_STREAM_PREFIX = "job"


@dataclass(frozen=True)
class JobDefinitionArgs:
    job: JobSettings
    job_role_arn: pulumi.Input[str]
    log_group_name: pulumi.Input[str]
    region: pulumi.Input[str]
    tags: dict[str, str]


def container_properties(job: JobSettings, *, job_role_arn: str, log_group_name: str, region: str) -> str:
    """``containerProperties`` as canonical JSON (sorted keys, so revisions do not churn)."""
    properties: dict[str, object] = {
        "image": job.image,
        "user": CONTAINER_USER,
        "jobRoleArn": job_role_arn,
        "resourceRequirements": [
            {"type": "VCPU", "value": str(job.vcpus)},
            {"type": "MEMORY", "value": str(job.memory_mib)},
        ],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group_name,
                "awslogs-region": region,
                "awslogs-stream-prefix": LOG_STREAM_PREFIX,
            },
        },
        "environment": [],
        "mountPoints": [],
        "volumes": [],
    }
    if job.command:
        properties["command"] = list(job.command)
    return json.dumps(properties, sort_keys=True)


def retry_strategy(job: JobSettings) -> dict[str, object]:
    """Retry only when the host went away (Spot reclaim); exit on anything else.

    Without the final EXIT rule Batch would retry every unmatched failure up to ``attempts``.
    """
    return {
        "attempts": job.retry_attempts,
        "evaluate_on_exits": [
            {"action": "RETRY", "on_status_reason": "Host EC2*"},
            {"action": "EXIT", "on_reason": "*"},
        ],
    }


class JobDefinition(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    definition_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: JobDefinitionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PROJECT}:index:JobDefinition", name, None, opts)
        job = args.job
        definition = aws.batch.JobDefinition(
            name,
            type="container",
            platform_capabilities=["EC2"],
            container_properties=pulumi.Output.all(args.job_role_arn, args.log_group_name, args.region).apply(
                lambda values: container_properties(
                    job, job_role_arn=values[0], log_group_name=values[1], region=values[2]
                )
            ),
            retry_strategy=retry_strategy(job),
            timeout={"attempt_duration_seconds": job.timeout_seconds},
            propagate_tags=True,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = definition.arn
        self.definition_name = definition.name
        self.register_outputs({"arn": self.arn, "name": self.definition_name})
