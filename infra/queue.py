"""The job queue: compute environments in order, and no job left stuck in RUNNABLE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.settings import PROJECT, QueueSettings

# Reasons Batch reports for jobs that can never be placed; cancelling them beats waiting forever.
UNSCHEDULABLE_REASONS = (
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
)


@dataclass(frozen=True)
class JobQueueArgs:
    queue: QueueSettings
    # In the order Batch should try them (Spot first, on-demand fallback after).
    compute_environment_arns: Sequence[pulumi.Input[str]]
    tags: dict[str, str]


def runnable_time_limit_actions(queue: QueueSettings) -> list[dict[str, object]]:
    """Cancel jobs stuck RUNNABLE for a reason that waiting cannot fix."""
    return [
        {
            "action": "CANCEL",
            "max_time_seconds": queue.runnable_timeout_minutes * 60,
            "reason": reason,
            "state": "RUNNABLE",
        }
        for reason in UNSCHEDULABLE_REASONS
    ]


class JobQueue(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: JobQueueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PROJECT}:index:JobQueue", name, None, opts)
        queue = aws.batch.JobQueue(
            name,
            state="ENABLED",
            priority=args.queue.priority,
            compute_environment_orders=[
                {"order": position, "compute_environment": arn}
                for position, arn in enumerate(args.compute_environment_arns, start=1)
            ],
            job_state_time_limit_actions=runnable_time_limit_actions(args.queue),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = queue.arn
        self.queue_name = queue.name
        self.register_outputs({"arn": self.arn, "name": self.queue_name})
