from __future__ import annotations

import json

from infra import policies
from infra.settings import DataSettings


def test_trust_policy_names_only_the_given_service():
    document = policies.assume_role_policy(policies.ECS_TASKS)
    (statement,) = document["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }


def test_policy_json_is_canonical():
    first = policies.policy_json({"b": 1, "a": [2]})
    assert first == policies.policy_json({"a": [2], "b": 1}) == '{"a": [2], "b": 1}'


def test_no_bucket_means_no_s3_access():
    assert policies.data_access_policy(DataSettings()) is None


def test_read_access_is_scoped_to_bucket_prefix():
    document = policies.data_access_policy(DataSettings(bucket="lab-data", prefix="runs/"))
    assert document is not None
    listing, objects = document["Statement"]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Resource"] == "arn:aws:s3:::lab-data"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["runs/*"]}}
    assert objects["Resource"] == "arn:aws:s3:::lab-data/runs/*"
    assert objects["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]


def test_read_write_adds_object_writes_only():
    document = policies.data_access_policy(
        DataSettings(bucket="lab-data", prefix="runs/", access="read-write"), partition="aws-cn"
    )
    assert document is not None
    _, objects, records = document["Statement"]
    assert records == {
        "Sid": "RunRecordsAreTheUsers",
        "Effect": "Deny",
        "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
        "Resource": ["arn:aws-cn:s3:::lab-data/runs/*/run.json", "arn:aws-cn:s3:::lab-data/runs/index/*"],
    }
    assert set(objects["Action"]) == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
    }
    assert objects["Resource"] == "arn:aws-cn:s3:::lab-data/runs/*"


def test_no_statement_grants_wildcard_actions_or_whole_account():
    document = policies.data_access_policy(DataSettings(bucket="lab-data", access="read-write"))
    text = json.dumps(document)
    assert '"s3:*"' not in text and '"*"' not in text
    listing, objects, _ = document["Statement"]
    assert "Condition" not in listing  # no prefix configured: the whole (single) bucket
    assert objects["Resource"] == "arn:aws:s3:::lab-data/*"


def test_managed_policy_arn_follows_partition():
    assert (
        policies.managed_policy_arn("aws-us-gov", policies.ECS_INSTANCE_POLICY)
        == "arn:aws-us-gov:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
    )
