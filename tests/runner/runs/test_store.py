"""Run records: never lost, never blocking, readable across versions; pruning."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from runner.errors import RunRecordError
from runner.runs.shards import Shard
from runner.runs.store import RunRecord, RunStore, prune_runs

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
OUTPUTS = {"region": "us-east-1", "purchaseModel": "spot", "jobVcpus": 1, "jobQueueName": "q"}


def record(run_id: str = "20261125-100000-abcd", **changes) -> RunRecord:
    job_ids = changes.pop("job_ids", ["job-1"])
    values = dict(
        run_id=run_id,
        stack="dev",
        created_at=NOW.isoformat(),
        job_name=f"dev-{run_id}",
        request={},
        outputs=OUTPUTS,
        state="submitted",
        total_tasks=4,
        array=True,
        shards=[Shard(0, 4, f"dev-{run_id}", job_ids[0] if job_ids else None)],
    )
    values.update(changes)
    return RunRecord(**values)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path)


def write(store: RunStore, name: str, content: str | bytes) -> Path:
    store.root.mkdir(parents=True, exist_ok=True)
    path = store.root / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


GOOD = json.loads(json.dumps(asdict(record())))
# What version 0.1 wrote: no shards, the job ids and the array size in the request.
V01 = {
    k: v
    for k, v in GOOD.items()
    if k not in ("shards", "total_tasks", "array", "parent_run_id", "retry_run_ids")
} | {"job_ids": ["job-1"], "request": {"arrayProperties": {"size": 4}}}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            '{"run_id": "20261125-100000-abcd", "stack": "dev", "created',
            "is not valid JSON (Unterminated string",
        ),
        ("", "is empty"),
        (b"\x80{}", "is not UTF-8 text (byte 0x80 at offset 0)"),
        ("[]", "cannot be read: it holds a list, not a run record"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "outputs"}), "cannot be read: it lacks 'outputs'"),
        (
            json.dumps({**GOOD, "job_ids": "job-1"}),
            "cannot be read: 'job_ids' should be a list, got a string",
        ),
        (json.dumps({**GOOD, "request": None}), "cannot be read: 'request' should be an object, got null"),
        (json.dumps({**GOOD, "summary": 3}), "cannot be read: 'summary' should be an object, got a number"),
        (json.dumps({**GOOD, "outputs": {}}), "cannot be read: its stack outputs lack 'region'"),
    ],
)
def test_an_unreadable_record_is_skipped_and_named_and_the_others_still_load(
    store: RunStore, content, problem
):
    store.save(record("20261125-090000-0001"))
    path = write(store, "20261125-100000-abcd.json", content)
    records, unreadable = store.scan()
    assert [r.run_id for r in records] == ["20261125-090000-0001"]
    (error,) = unreadable
    assert error.path == path
    assert str(error).startswith(f"run record {path}")
    assert problem in str(error) and "\n" not in str(error)
    assert str(error).endswith("`runner runs --prune` removes unreadable records)")
    with pytest.raises(RunRecordError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        store.load("20261125-100000-abcd")


def test_records_of_a_newer_or_older_version_still_load(store: RunStore):
    newer = {**GOOD, "run_id": "20261125-100000-0002", "costModel": {"usd": 1}, "schema": 9}
    older = {k: v for k, v in V01.items() if k not in ("summary", "endpoint_url", "error", "state")}
    older["run_id"] = "20261125-100000-0003"
    write(store, "20261125-100000-0002.json", json.dumps(newer))
    write(store, "20261125-100000-0003.json", json.dumps(older))
    records, unreadable = store.scan()
    assert unreadable == []
    assert {r.run_id: r.state for r in records} == {
        "20261125-100000-0002": "submitted",
        "20261125-100000-0003": "submitted",
    }


def test_unknown_state_is_read_from_what_the_record_holds(store: RunStore):
    unsubmitted = [{**GOOD["shards"][0], "job_id": None}]
    write(
        store,
        "20261125-100000-0004.json",
        json.dumps({**GOOD, "run_id": "20261125-100000-0004", "state": "exploded", "shards": unsubmitted}),
    )
    assert store.load("20261125-100000-0004").state == "submitting"


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"state": "submitting", "job_ids": []}, "incomplete"),
        ({"shards": [Shard(0, 10_000, "a", "j1"), Shard(10_000, 5, "b")]}, "incomplete"),
        ({"state": "submit-failed", "job_ids": [], "error": "refused"}, "incomplete"),
        ({}, "running"),
        ({"summary": {"complete": False, "counts": {"FAILED": 1}}}, "running"),
        ({"summary": {"complete": True, "counts": {"SUCCEEDED": 4, "FAILED": 0}}}, "succeeded"),
        ({"summary": {"complete": True, "counts": {"SUCCEEDED": 3, "FAILED": 1}}}, "failed"),
    ],
)
def test_outcome_says_running_succeeded_failed_or_incomplete(changes, outcome):
    assert record(**changes).outcome == outcome
    assert record(**changes).to_json()["state"] == outcome


def test_prune_forgets_old_finished_runs_gone_emulators_and_unreadable_files(store: RunStore):
    old = (NOW - timedelta(days=40)).isoformat()
    done = {"complete": True, "counts": {"SUCCEEDED": 4, "FAILED": 0}}
    store.save(record("20261015-100000-0001", created_at=old, summary=done))  # old, finished: pruned
    store.save(record("20261015-100000-0002", created_at=old))  # old but maybe still running: kept
    store.save(record("20261125-100000-0003", summary=done))  # finished, recent: kept
    store.save(record("20261125-100000-0004", endpoint_url="http://127.0.0.1:5001"))  # emulator gone
    store.save(record("20261125-100000-0005", endpoint_url="http://127.0.0.1:5002"))  # emulator up
    write(store, "broken.json", "{")
    for run_id in ("20261015-100000-0001", "20261125-100000-0003", "20260101-000000-0000"):
        for cache in ("times", "logs"):  # the last run's record is already gone
            store.save_cache(run_id, cache, {"basis": cache})

    def gone(run: RunRecord) -> str | None:  # the context decides (by the local stack's identity)
        return "its local stack is gone" if run.endpoint_url == "http://127.0.0.1:5001" else None

    pruned = prune_runs(store, NOW, 30, gone)
    assert {p.name for p in pruned} == {"20261015-100000-0001", "20261125-100000-0004", "broken.json"}
    assert sorted(r.run_id for r in store.all()) == [
        "20261015-100000-0002",
        "20261125-100000-0003",
        "20261125-100000-0005",
    ]
    assert not (store.root / "broken.json").exists()
    # A pruned run's caches go with it, and so do those whose record is gone.
    assert sorted(p.name for p in store.root.glob("*.json.gz")) == [
        "20261125-100000-0003.logs.json.gz",
        "20261125-100000-0003.times.json.gz",
    ]
    assert store.load_cache("20261125-100000-0003", "times") == {"basis": "times"}
    reasons = {p.name: p.reason for p in pruned}
    assert reasons["20261015-100000-0001"] == "succeeded, created 2026-10-16"
    assert reasons["20261125-100000-0004"] == "its local stack is gone"


def test_a_damaged_cache_reads_as_empty(store: RunStore):
    store.save_cache("20261125-100000-0003", "times", {"times": {}})
    store.cache_path("20261125-100000-0003", "times").write_bytes(b"not gzip")
    assert store.load_cache("20261125-100000-0003", "times") == {}
    assert store.load_cache("20261125-100000-0009", "times") == {}
