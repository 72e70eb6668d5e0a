"""Run records shared in the data bucket: a writer in another terminal, a damaged record and a
taken run id never lose a submitted job or another run's data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from runner.aws.clients import AwsTarget
from runner.runs.store import is_run_id, new_run_id
from tests.runner.conftest import REGION, Runner, moto_jobs
from tests.security.conftest import BUCKET


def record_key(run_id: str) -> str:
    return f"runs/{run_id}/run.json"


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def test_a_writer_in_another_terminal_never_costs_a_submitted_shard_its_record(
    data_stack: Runner, monkeypatch: pytest.MonkeyPatch
):
    """`runner cancel` (or a watch) writes the shared record between two SubmitJob calls of a
    three-shard run: every shard's job id is recorded, and the other writer's change is kept."""
    original = AwsTarget.client

    def meddle(**_: Any) -> None:
        listed = s3().list_objects_v2(Bucket=BUCKET, Prefix="runs/").get("Contents", [])
        for item in listed:
            if item["Key"].endswith("/run.json"):
                data = json.loads(s3().get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
                data["cancelled_at"] = "2026-12-04T10:00:00+00:00"
                s3().put_object(Bucket=BUCKET, Key=item["Key"], Body=json.dumps(data).encode())

    def client(self: AwsTarget, service: str) -> Any:
        made = original(self, service)
        if service == "batch":
            made.meta.events.register("after-call.batch.SubmitJob", meddle)
        return made

    monkeypatch.setattr(AwsTarget, "client", client)
    submitted = data_stack.json("submit", "--array", "25000", "--command", "true")
    shared = json.loads(s3().get_object(Bucket=BUCKET, Key=record_key(submitted["runId"]))["Body"].read())
    assert [s["job_id"] for s in shared["shards"]] == submitted["jobIds"] and len(submitted["jobIds"]) == 3
    assert set(submitted["jobIds"]) == {j for j in moto_jobs() if ":" not in j}
    assert shared["state"] == "submitted" and shared["cancelled_at"] == "2026-12-04T10:00:00+00:00"


def test_a_damaged_shared_record_is_served_and_repaired_from_a_good_copy(data_stack: Runner):
    run = data_stack.json("submit", "--array", "3", "--command", "true")["runId"]
    s3().put_object(Bucket=BUCKET, Key=record_key(run), Body=b"{not json")
    summary = data_stack("summary", run)  # the local copy serves, and the summary is saved
    assert summary.exit_code == 0, summary.output
    repaired = json.loads(s3().get_object(Bucket=BUCKET, Key=record_key(run))["Body"].read())
    assert repaired["run_id"] == run and repaired["summary"]["complete"]
    cancelled = data_stack("cancel", run, "--yes")
    assert cancelled.exit_code == 0, cancelled.output


def test_prune_repairs_or_removes_unreadable_records_in_the_bucket(data_stack: Runner, tmp_path: Path):
    mine = data_stack.json("submit", "--array", "2", "--command", "true")["runId"]
    s3().put_object(Bucket=BUCKET, Key=record_key(mine), Body=b"[]")
    theirs = "20261201-000000-0badf00d"  # a teammate's, damaged, with no copy on this machine
    s3().put_object(Bucket=BUCKET, Key=record_key(theirs), Body=b"\xff")
    s3().put_object(Bucket=BUCKET, Key=f"runs/index/{theirs}~bob", Body=b"")
    pruned = {entry["run"]: entry["reason"] for entry in data_stack.json("runs", "--prune")}
    assert pruned[mine].startswith("repaired in the bucket from this machine's copy")
    assert pruned[theirs].startswith("removed from the bucket: the run record s3://lab-data/runs/")
    assert json.loads(s3().get_object(Bucket=BUCKET, Key=record_key(mine))["Body"].read())["run_id"] == mine
    left = [o["Key"] for o in s3().list_objects_v2(Bucket=BUCKET, Prefix="runs/").get("Contents", [])]
    assert not [key for key in left if theirs in key]


def test_a_run_id_that_is_taken_never_overwrites_the_other_runs_table(
    data_stack: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    table = tmp_path / "t.csv"
    table.write_text("sample\na\nb\n")
    first = data_stack.json("submit", "--tasks", str(table), "--command", "true")["runId"]
    before = s3().get_object(Bucket=BUCKET, Key=f"runs/{first}/tasks/piece-00000.jsonl")["Body"].read()
    monkeypatch.setattr("runner.runs.sweep.new_run_id", lambda now: first)
    table.write_text("sample\nx\ny\n")
    result = data_stack("submit", "--tasks", str(table), "--command", "true")
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == (
        f"Error: s3://{BUCKET}/runs/{first}/tasks/piece-00000.jsonl exists already: another run has "
        "this run's id; submit again"
    )
    after = s3().get_object(Bucket=BUCKET, Key=f"runs/{first}/tasks/piece-00000.jsonl")["Body"].read()
    assert after == before


def test_run_ids_carry_32_random_bits_and_old_ids_still_read():
    from datetime import datetime, timezone

    made = {new_run_id(datetime(2026, 12, 4, tzinfo=timezone.utc)) for _ in range(200)}
    assert len(made) == 200 and all(is_run_id(r) and len(r.rsplit("-", 1)[1]) == 8 for r in made)
    assert is_run_id("20261125-100000-abcd") and not is_run_id("20261125-100000-abcd\n")
