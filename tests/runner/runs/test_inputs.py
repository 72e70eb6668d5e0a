"""``--input``: addresses checked for form, for the job role's reach and for presence, by listing the
folders they share (1,000 names a call), never one call per object."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from runner.aws.stack_outputs import DataLocation
from runner.errors import InvalidInputError
from runner.runs.inputs import check_inputs, missing_inputs, staged_inputs
from runner.runs.table import TaskTable
from tests.runner.conftest import REGION, Runner

BUCKET = "lab-data"
DATA = DataLocation(BUCKET, "runs/", "read-write", ("s3://lab-raw/reads/",))


@pytest.fixture
def s3(mocked_aws: None) -> Iterator[Any]:
    client = boto3.client("s3", region_name=REGION)
    for bucket in (BUCKET, "lab-raw"):
        client.create_bucket(Bucket=bucket)
    yield client


def put_many(bucket: str, keys: list[str]) -> None:
    """Objects straight into moto's backend (thousands in well under a second)."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in keys:
        backend.put_object(bucket, key, b"x")


def counting(client: Any) -> Counter[str]:
    calls: Counter[str] = Counter()
    client.meta.events.register("before-parameter-build.*.*", lambda model, **_: calls.update([model.name]))
    return calls


def table(values: list[Any], column: str = "reads") -> TaskTable:
    return TaskTable(
        "samples.csv", ("sample", column), [{"sample": f"s{i}", column: v} for i, v in enumerate(values)]
    )


def test_ten_thousand_inputs_in_one_folder_take_at_most_eleven_calls(s3: Any):
    keys = [f"runs/inputs/sample-{i:05d}.fq" for i in range(10_000)]
    put_many(BUCKET, keys + [f"runs/inputs/zz-other-{i}.fq" for i in range(3_000)])  # listed past: not read
    staged = staged_inputs(table([f"s3://{BUCKET}/{k}" for k in keys]), ["reads"], DATA, "sample")
    calls = counting(s3)
    assert missing_inputs(s3, staged) == []
    assert calls["ListObjectsV2"] <= 10_000 // 1_000 + 1


def test_the_missing_ones_are_named_by_row_and_nothing_else_is_read(s3: Any):
    put_many(BUCKET, ["runs/in/a.fq", "runs/in/c.fq", "runs/in/lanes/1.fq"])
    put_many("lab-raw", ["reads/x.fq"])
    values = [
        f"s3://{BUCKET}/runs/in/a.fq",
        f"s3://{BUCKET}/runs/in/b.fq",  # missing
        f"s3://{BUCKET}/runs/in/lanes/",  # a folder with objects
        f"s3://{BUCKET}/runs/in/empty/",  # a folder with none
        "s3://lab-raw/reads/x.fq",
    ]
    staged = staged_inputs(table(values), ["reads"], DATA, "sample")
    calls = counting(s3)
    assert [(i.row, i.uri) for i in missing_inputs(s3, staged)] == [(1, values[1]), (3, values[3])]
    assert calls["ListObjectsV2"] == 2 and sum(calls.values()) == 2  # one folder a bucket
    with pytest.raises(InvalidInputError) as caught:
        check_inputs(s3, staged)
    assert str(caught.value) == (
        f"2 staged inputs are missing: row 1 (s1) reads {values[1]}; row 3 (s3) reads {values[3]}; "
        "fix the table (nothing was submitted)"
    )


@pytest.mark.parametrize(
    ("values", "columns", "message"),
    [
        (
            ["s3://lab-data/runs/a"],
            ["depth"],
            "--input depth is not a column of the table; its columns: sample, reads",
        ),
        (
            ["/home/me/a.fq"],
            ["reads"],
            "--input reads: row 0 (sample s0) holds '/home/me/a.fq', not an s3://bucket/key address",
        ),
        ([3], ["reads"], "--input reads: row 0 (sample s0) holds 3, not an s3://bucket/key address"),
        (
            ["s3://lab-data"],
            ["reads"],
            "--input reads: row 0 (sample s0) holds 's3://lab-data', not an s3://bucket/key",
        ),
        (
            ["s3://lab-data/elsewhere/a.fq"],
            ["reads"],
            "--input reads: row 0 (sample s0) reads s3://lab-data/elsewhere/a.fq, which the stack's job role may "
            "not read (it reads s3://lab-data/runs/, s3://lab-raw/reads/); copy it there or add its location "
            "to batch-stacks:data.inputs",
        ),
        (["s3://lab-data/runs/a"], ["reads", "reads"], "--input names a column twice"),
    ],
)
def test_bad_inputs_are_one_line_before_anything_is_listed(
    values: list[Any], columns: list[str], message: str
):
    with pytest.raises(InvalidInputError) as caught:
        staged_inputs(table(values), columns, DATA, "sample")
    assert str(caught.value).startswith(message), caught.value


@pytest.fixture
def data_stack(stack: Any, tmp_path: Path) -> Runner:
    from dataclasses import replace

    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(replace(stack, data=DATA).to_json()))
    return Runner(path)


def test_a_missing_input_submits_and_uploads_nothing(data_stack: Runner, tmp_path: Path, api_calls: Counter):
    put_many(BUCKET, ["runs/in/a.fq"])
    sheet = tmp_path / "samples.csv"
    sheet.write_text(f"sample,reads\na,s3://{BUCKET}/runs/in/a.fq\nb,s3://{BUCKET}/runs/in/b.fq\n")
    code = tmp_path / "qc.py"
    code.write_text("print('qc')\n")
    run = (
        "submit",
        "--tasks",
        str(sheet),
        "--input",
        "reads",
        "--code",
        str(code),
        "--command",
        "python3 qc.py",
    )
    result = data_stack(*run)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "Error: 1 staged input is missing: row 1 (b) reads s3://lab-data/runs/in/b.fq"
    )
    assert api_calls["PutObject"] == 0 and api_calls["SubmitJob"] == 0
    assert data_stack.json("runs") == []
    submitted = data_stack.json(*run, "--no-input-check")
    assert submitted["tasks"] == 2 and submitted["code"]["files"] == 1
