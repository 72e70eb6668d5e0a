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
# Defaults every task starts with (a submit's --env, or a row's column, overrides them). Python
# writes its output as it goes, so a row's last line in its log is the error, not an older print.
DEFAULT_ENVIRONMENT = {"PYTHONUNBUFFERED": "1"}


# How Batch reports a host or task taken back: an EC2 instance gone, or ECS's Fargate Spot notice.
HOST_RECLAIMED = "Host EC2*"
FARGATE_SPOT_INTERRUPTED = "Your Spot Task was interrupted*"


@dataclass(frozen=True)
class JobDefinitionArgs:
    job: JobSettings
    image: pulumi.Input[str]  # job.image, or the image the stack built
    job_role_arn: pulumi.Input[str]
    log_group_name: pulumi.Input[str]
    region: pulumi.Input[str]
    tags: dict[str, str]
    # Fargate only: the task execution role, and whether tasks get a public IP to pull images.
    execution_role_arn: pulumi.Input[str] | None = None
    assign_public_ip: bool = False


def container_properties(
    job: JobSettings,
    *,
    image: str,
    job_role_arn: str,
    log_group_name: str,
    region: str,
    execution_role_arn: str | None = None,
    assign_public_ip: bool = False,
) -> str:
    """``containerProperties`` as canonical JSON (sorted keys, so revisions do not churn).

    With an ``execution_role_arn`` the properties are Fargate's.
    """
    properties: dict[str, object] = {
        "image": image,
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
        "environment": [{"name": k, "value": v} for k, v in sorted(DEFAULT_ENVIRONMENT.items())],
        "mountPoints": [],
        "volumes": [],
    }
    if job.command:
        properties["command"] = list(job.command)
    if execution_role_arn is not None:
        properties.update(
            executionRoleArn=execution_role_arn,
            networkConfiguration={"assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED"},
            fargatePlatformConfiguration={"platformVersion": "LATEST"},
        )
    return json.dumps(properties, sort_keys=True)


def retry_strategy(job: JobSettings, *, fargate: bool = False) -> dict[str, object]:
    """Retry only when the capacity went away (Spot reclaim); exit on anything else.

    Without the final EXIT rule Batch would retry every unmatched failure up to ``attempts``.
    """
    reclaimed = [HOST_RECLAIMED, FARGATE_SPOT_INTERRUPTED] if fargate else [HOST_RECLAIMED]
    return {
        "attempts": job.retry_attempts,
        "evaluate_on_exits": [{"action": "RETRY", "on_status_reason": reason} for reason in reclaimed]
        + [{"action": "EXIT", "on_reason": "*"}],
    }


class JobDefinition(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    definition_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: JobDefinitionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PROJECT}:index:JobDefinition", name, None, opts)
        job = args.job
        fargate = args.execution_role_arn is not None
        definition = aws.batch.JobDefinition(
            name,
            type="container",
            platform_capabilities=["FARGATE" if fargate else "EC2"],
            container_properties=pulumi.Output.all(
                args.job_role_arn, args.log_group_name, args.region, args.execution_role_arn, args.image
            ).apply(
                lambda values: container_properties(
                    job,
                    image=values[4],
                    job_role_arn=values[0],
                    log_group_name=values[1],
                    region=values[2],
                    execution_role_arn=values[3],
                    assign_public_ip=args.assign_public_ip,
                )
            ),
            retry_strategy=retry_strategy(job, fargate=fargate),
            timeout={"attempt_duration_seconds": job.timeout_seconds},
            propagate_tags=True,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = definition.arn
        self.definition_name = definition.name
        self.register_outputs({"arn": self.arn, "name": self.definition_name})
