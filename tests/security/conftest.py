"""The attacks a reviewer tried, each refused in one line with nothing lost (one module a kind).

The fixtures are the runner's own layers (tests/runner/conftest.py): credentials, then moto, then
a deployed stack with a data bucket, then a CLI to drive it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from runner.aws.stack_outputs import DataLocation, StackOutputs
from tests.runner.conftest import REGION, Runner, api_calls, mocked_aws, stack

__all__ = ["api_calls", "mocked_aws", "stack"]
BUCKET = "lab-data"


@pytest.fixture
def data_stack(stack: StackOutputs, tmp_path: Path) -> Runner:
    """The lab stack with a data bucket: runs, records, tables and packages live there."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(replace(stack, data=DataLocation(BUCKET, "runs/", "read-write")).to_json()))
    return Runner(path)
