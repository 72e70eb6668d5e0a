"""Local files and folders as inputs: found and hashed before anything is sent, uploaded once by
content into the stack's bucket, never sent again when unchanged, and a folder cut short is never
taken for whole."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import boto3
import pytest

from runner.aws.stack_outputs import DataLocation
from runner.runs.local_inputs import FOLDER, hash_input, upload_inputs
from tests.runner.conftest import REGION, Runner, moto_jobs

BUCKET = "lab-data"
DATA = DataLocation(BUCKET, "runs/", "read-write")


def keys(prefix: str) -> list[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def sheet(tmp_path: Path) -> Path:
    """A project folder of one's own: a sample sheet naming files and a folder beside it."""
    project = tmp_path / "project"
    (project / "reads" / "lanes" / "sub").mkdir(parents=True)
    (project / "reads" / "a.fq").write_text("ACGT\n")
    (project / "reads" / "same-bytes.fq").write_text("ACGT\n")
    (project / "reads" / "lanes" / "1.fq").write_text("GGCC\n")
    (project / "reads" / "lanes" / "sub" / "2.fq").write_text("TTAA\n")
    path = project / "samples.csv"
    path.write_text(
        "sample,reads\n"
        "a,reads/a.fq\n"
        "again,reads/a.fq\n"
        "twin,reads/same-bytes.fq\n"
        "lanes,reads/lanes\n"
        f"remote,s3://{BUCKET}/runs/remote.fq\n"
    )
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key="runs/remote.fq", Body=b"AC\n")
    return path


def table_rows(run_id: str) -> list[dict]:
    body = boto3.client("s3", region_name=REGION).get_object(
        Bucket=BUCKET, Key=f"runs/{run_id}/tasks/piece-00000.jsonl"
    )["Body"]
    return [json.loads(line) for line in body.read().decode().splitlines()]


def test_local_files_and_folders_are_uploaded_once_by_content(
    data_stack: Runner, tmp_path: Path, api_calls: Counter, monkeypatch: pytest.MonkeyPatch
):
    path = sheet(tmp_path)
    monkeypatch.chdir(tmp_path)  # relative paths are the table's, not where you are
    submit = ("submit", "--tasks", str(path), "--input", "reads", "--command", 'cat "$reads"')
    run = data_stack.json(*submit)["runId"]
    uploaded = keys(f"runs/{FOLDER}")
    assert len(uploaded) == 5  # a.fq, same-bytes.fq, the folder's two files, then its marker
    values = [row["reads"] for row in table_rows(run)]
    assert values[0] == values[1] and values[0].endswith("/a.fq")  # one object for both rows
    assert values[2].endswith("/same-bytes.fq") and values[2] != values[0]  # named as the row reads it
    assert values[3].endswith("/lanes/") and values[4] == f"s3://{BUCKET}/runs/remote.fq"
    lanes = values[3][len(f"s3://{BUCKET}/") :]
    assert keys(lanes) == [lanes + "1.fq", lanes + "sub/2.fq"]
    assert any(key.endswith(".complete") for key in uploaded)

    api_calls.clear()
    again = data_stack.json(*submit)["runId"]
    # The table's piece and the run's record (created, its index marker, after its shard, when
    # submitted): no input is sent again, and one listing said so.
    assert api_calls["PutObject"] == 1 + 4 and keys(f"runs/{FOLDER}") == uploaded
    assert api_calls["CreateMultipartUpload"] == 0
    assert [row["reads"] for row in table_rows(again)] == values


def test_a_path_that_is_not_there_is_one_line_and_nothing_is_sent(
    data_stack: Runner, tmp_path: Path, api_calls: Counter
):
    path = sheet(tmp_path)
    path.write_text(path.read_text() + "typo,reads/b.fq\n")
    result = data_stack("submit", "--tasks", str(path), "--input", "reads", "--command", "true")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: --input reads: row 5 (sample typo): {path.parent / 'reads' / 'b.fq'} does not exist; "
        "fix the table or the path (nothing was uploaded)\n"
    )
    assert api_calls["PutObject"] == 0 and moto_jobs() == {} and keys(f"runs/{FOLDER}") == []


def test_a_folder_cut_short_is_uploaded_again(mocked_aws: None, tmp_path: Path):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    folder = tmp_path / "lanes"
    folder.mkdir()
    for name in ("1.fq", "2.fq"):
        (folder / name).write_text(name)
    item = hash_input(folder, "--input reads")
    s3.put_object(Bucket=BUCKET, Key=item.key(DATA) + "1.fq", Body=b"1.fq")  # killed after one file
    planned: list[tuple[int, int]] = []
    sent = upload_inputs(s3, DATA, [item], on_plan=lambda files, size: planned.append((files, size)))
    assert sent == [item] and planned == [(2, 8)]
    assert keys(item.key(DATA)) == [item.key(DATA) + "1.fq", item.key(DATA) + "2.fq"]
    assert upload_inputs(s3, DATA, [item]) == []  # whole now: nothing sent
