"""IAM policy documents as plain dicts: pure, no AWS calls, no Pulumi invokes.

Serialise with ``policy_json`` so the same document always gives the same string (no diffs).
"""

from __future__ import annotations

import json
from typing import Any

from infra.choices import RUN_INDEX_FOLDER, RUN_RECORD_NAME
from infra.settings import DataSettings

PolicyDocument = dict[str, Any]

ECS_TASKS = "ecs-tasks.amazonaws.com"
EC2 = "ec2.amazonaws.com"
# AWS-managed policy the ECS agent on Batch instances needs (pull images, register, ship logs).
ECS_INSTANCE_POLICY = "service-role/AmazonEC2ContainerServiceforEC2Role"
# AWS-managed policy Fargate needs to pull images and ship logs for a task.
ECS_TASK_EXECUTION_POLICY = "service-role/AmazonECSTaskExecutionRolePolicy"

_READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
_WRITE_ACTIONS = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"]


def policy_json(document: PolicyDocument) -> str:
    """The canonical JSON of a policy document."""
    return json.dumps(document, sort_keys=True)


def assume_role_policy(service: str) -> PolicyDocument:
    """Trust policy letting one AWS service principal assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def managed_policy_arn(partition: str, name: str) -> str:
    """ARN of an AWS-managed policy in the given partition (aws, aws-cn, aws-us-gov)."""
    return f"arn:{partition}:iam::aws:policy/{name}"


def data_access_policy(data: DataSettings, partition: str = "aws") -> PolicyDocument | None:
    """Least-privilege S3 access to the configured bucket and prefix; None without a bucket.

    Listing is limited to the prefix with an ``s3:prefix`` condition; object actions to keys
    under it. ``read-write`` adds put, multipart abort and delete on those keys only.
    """
    if data.bucket is None:
        return None
    bucket_arn = f"arn:{partition}:s3:::{data.bucket}"
    list_statement: dict[str, Any] = {
        "Sid": "ListDataPrefix",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket_arn,
    }
    if data.prefix:
        list_statement["Condition"] = {"StringLike": {"s3:prefix": [f"{data.prefix}*"]}}
    actions = _READ_ACTIONS + (_WRITE_ACTIONS if data.access == "read-write" else [])
    statements = [
        list_statement,
        {
            "Sid": "DataObjects",
            "Effect": "Allow",
            "Action": actions,
            "Resource": f"{bucket_arn}/{data.prefix}*",
        },
    ]
    if data.access == "read-write":
        # Run records and the index of runs are written with the users' own credentials only.
        statements.append(
            {
                "Sid": "RunRecordsAreTheUsers",
                "Effect": "Deny",
                "Action": _WRITE_ACTIONS,
                "Resource": [
                    f"{bucket_arn}/{data.prefix}*/{RUN_RECORD_NAME}",
                    f"{bucket_arn}/{data.prefix}{RUN_INDEX_FOLDER}*",
                ],
            }
        )
    for number, location in enumerate(data.inputs, start=1):
        statements += input_statements(location, number, partition)
    return {"Version": "2012-10-17", "Statement": statements}


def input_statements(location: str, number: int, partition: str) -> list[dict[str, Any]]:
    """Read-only access to one ``data.inputs`` location (``s3://bucket/prefix``): list and get."""
    bucket, _, prefix = location[len("s3://") :].partition("/")
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    listing: dict[str, Any] = {
        "Sid": f"ListInputs{number}",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket_arn,
    }
    if prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    reading = {
        "Sid": f"ReadInputs{number}",
        "Effect": "Allow",
        "Action": _READ_ACTIONS,
        "Resource": f"{bucket_arn}/{prefix}*",
    }
    return [listing, reading]
