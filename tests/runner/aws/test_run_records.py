"""Run records in the data bucket: conditional writes that never lose a change, one line for a
record that cannot be read, and the team's runs listed without reading them all."""

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

from runner.aws.run_records import RecordConflict, RunRecords
from runner.aws.stack_outputs import DataLocation, StackOutputs
from runner.errors import RunnerError, RunRecordError
from runner.runs.store import RunRecord, RunStore
from runner.runs.team import since_run_id, team_runs, totals
from tests.runner.conftest import REGION

BUCKET = "lab-data"
DATA = DataLocation(BUCKET, "runs/", "read-write")


@pytest.fixture
def s3(mocked_aws: None) -> Iterator[Any]:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    yield client


def counting(client: Any) -> Counter[str]:
    calls: Counter[str] = Counter()
    client.meta.events.register("before-parameter-build.*.*", lambda model, **_: calls.update([model.name]))
    return calls


def test_a_record_is_created_once_and_changed_only_from_what_was_read(s3: Any):
    records = RunRecords(s3, DATA)
    first = records.create("20261202-010203-abcd", {"run_id": "20261202-010203-abcd", "n": 1}, "alice")
    with pytest.raises(RecordConflict):
        records.create("20261202-010203-abcd", {"n": 2}, "bob")  # the second creator loses
    data, etag = records.read("20261202-010203-abcd")  # type: ignore[misc]
    assert data["n"] == 1 and data["version"] == 1 and etag == first
    second = records.replace("20261202-010203-abcd", {**data, "n": 3}, etag)
    with pytest.raises(RecordConflict):
        records.replace("20261202-010203-abcd", {**data, "n": 4}, etag)  # read before the last write
    assert records.read("20261202-010203-abcd")[0]["n"] == 3  # type: ignore[index]
    assert second != first
    assert [(e.run_id, e.user) for e in records.index()] == [("20261202-010203-abcd", "alice")]
    assert records.read("20261202-999999-ffff") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"{not json",
            "the run record s3://lab-data/runs/20261202-010203-abcd/run.json is not valid JSON; fix or remove it",
        ),
        (
            json.dumps({"version": 9}).encode(),
            "the run record s3://lab-data/runs/20261202-010203-abcd/run.json was written by a newer batch-stacks "
            "(record version 9); upgrade the runner",
        ),
    ],
)
def test_a_record_that_cannot_be_read_is_one_line_naming_it(s3: Any, body: bytes, message: str):
    s3.put_object(Bucket=BUCKET, Key="runs/20261202-010203-abcd/run.json", Body=body)
    with pytest.raises(RunRecordError) as caught:
        RunRecords(s3, DATA).read("20261202-010203-abcd")
    assert str(caught.value) == message


class Bucket:
    """The store's view of one data bucket for every record (the CLI's SharedRecords, for tests)."""

    def __init__(self, s3: Any, user: str) -> None:
        self.records, self.user = RunRecords(s3, DATA), user

    def records_for(self, record: RunRecord) -> RunRecords:
        return self.records

    def home(self) -> RunRecords:
        return self.records

    def who(self, record: RunRecord) -> dict[str, str]:
        return {"arn": f"arn:aws:iam::123456789012:user/{self.user}", "user": self.user}


def a_run(run_id: str, stack: StackOutputs) -> RunRecord:
    outputs = {**stack.to_json(), "data": DATA.to_json()}
    return RunRecord(run_id, "dev", "2026-12-02T01:02:03+00:00", f"dev-{run_id}", {}, outputs)


def test_two_machines_changing_one_record_lose_nothing(s3: Any, stack: StackOutputs, tmp_path: Path):
    alice = RunStore(tmp_path / "alice", Bucket(s3, "alice"))
    bob = RunStore(tmp_path / "bob", Bucket(s3, "bob"))
    run = a_run("20261202-010203-abcd", stack)
    alice.save(run)
    assert bob.load(run.run_id).submitted_by == {
        "arn": "arn:aws:iam::123456789012:user/alice",
        "user": "alice",
    }

    def bobs_change(record: RunRecord) -> None:
        record.retry_run_ids.append("20261202-020000-bbbb")

    def alices_change_racing(record: RunRecord) -> None:
        if not record.retry_run_ids:  # the first try: bob writes in between alice's read and write
            bob.update(run.run_id, bobs_change)
        record.cancelled_at = "2026-12-02T03:00:00+00:00"

    alice.update(run.run_id, alices_change_racing)
    final = RunStore(tmp_path / "carol", Bucket(s3, "carol")).load(run.run_id)
    assert final.retry_run_ids == ["20261202-020000-bbbb"] and final.cancelled_at is not None


def test_a_local_record_is_shared_when_next_written(s3: Any, stack: StackOutputs, tmp_path: Path):
    local = RunStore(tmp_path / "me")  # written before records were shared
    run = a_run("20261202-010203-abcd", stack)
    local.save(run)
    shared = RunStore(tmp_path / "me", Bucket(s3, "me"))
    shared.update(run.run_id, lambda record: setattr(record, "cancelled_at", "2026-12-02T03:00:00+00:00"))
    assert RunRecords(s3, DATA).read(run.run_id)[0]["cancelled_at"] == "2026-12-02T03:00:00+00:00"  # type: ignore[index]


def test_the_newest_20_of_10000_team_runs_take_10_listings_and_20_reads(s3: Any, stack: StackOutputs):
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    ids = [
        f"202611{day:02d}-{second // 60:02d}{second % 60:02d}00-{second:04x}"
        for day in range(20, 30)
        for second in range(1000)
    ]
    for number, run_id in enumerate(ids):
        user = ("alice", "bob", "carol")[number % 3]
        backend.put_object(BUCKET, f"runs/index/{run_id}~{user}", b"")
    for number, run_id in enumerate(ids[-1000:]):  # the last day's runs; its last 40 summarized
        record = a_run(run_id, stack)
        if number >= 960:
            record.summary = {"vcpuHours": 2.0, "cost": {"estimatedUsd": 0.5}, "counts": {"SUCCEEDED": 1}}
        backend.put_object(
            BUCKET, f"runs/{run_id}/run.json", json.dumps({**record.__dict__, "shards": []}).encode()
        )
    records = RunRecords(s3, DATA)
    calls = counting(s3)
    newest = team_runs(records, limit=20)
    assert [r.run_id for r in newest.records] == sorted(ids, reverse=True)[:20] and newest.listed == 10_000
    assert calls == Counter({"ListObjectsV2": 10, "GetObject": 20})

    calls.clear()
    window = team_runs(records, limit=None, since="20261129-000000")
    assert calls["ListObjectsV2"] == 1 and window.listed == 1000  # the listing starts at the day
    by_user = {t.key: t for t in totals(window.records, "user")}
    assert (
        sum(t.runs for t in by_user.values()) == 1000 and sum(t.unsummarized for t in by_user.values()) == 960
    )
    assert round(sum(t.vcpu_hours for t in by_user.values()), 6) == 80.0


def test_since_takes_a_period_or_a_date():
    from datetime import datetime, timezone

    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    assert since_run_id("7d", now) == "20261125-120000"
    assert since_run_id("12h", now) == "20261202-000000"
    assert since_run_id("2026-11-30", now) == "20261130-000000"
    with pytest.raises(RunnerError, match="--since takes a period such as 7d or 12h"):
        since_run_id("last week", now)


def test_a_user_who_may_only_read_is_told_why_not_when_writing(s3: Any, monkeypatch: pytest.MonkeyPatch):
    from botocore.exceptions import ClientError

    def denied(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject")

    monkeypatch.setattr(s3, "put_object", denied)
    with pytest.raises(RunnerError) as caught:
        RunRecords(s3, DATA).create("20261202-010203-abcd", {}, "reader")
    assert str(caught.value) == (
        "you may not write run records to s3://lab-data/runs/ (s3:PutObject); ask for write access to "
        "submit, retry or cancel (reading runs needs only s3:GetObject and s3:ListBucket)"
    )
