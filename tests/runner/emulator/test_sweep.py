"""End to end on the emulator: a table in chunks and shards, failing rows, a retry
that runs exactly those rows, and results and collect exact row by row."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.local.process import ExecutorOptions
from runner.runs import shards
from tests.runner.emulator.conftest import PROJECT_DIR, as_json, batch, client, running_emulator

pytestmark = pytest.mark.emulator
ROWS, PER_TASK = 1_050, 50  # 21 tasks, in 2 pieces of the table
FAILING = (5, 1013)  # in tasks 0 and 20
# Rows of the failing tasks leave a file (row 0 also a nested one); the rest leave nothing.
# The failing rows fail only the first time (a retry's tasks have RUNNER_PARENT_RUN_ID).
SCRIPT = (
    'if [ -z "$RUNNER_PARENT_RUN_ID" ] && { [ "$RUNNER_ROW" = 5 ] || [ "$RUNNER_ROW" = 1013 ]; }; then exit 3; fi; '
    'if [ "$RUNNER_ROW" -lt 50 ] || { [ "$RUNNER_ROW" -ge 1000 ] && [ "$RUNNER_ROW" -lt 1050 ]; }; then '
    'printf "%s" "$sample" > "$RUNNER_OUTPUT_DIR/r.txt"; fi; '
    'if [ "$RUNNER_ROW" = 0 ]; then mkdir -p "$RUNNER_OUTPUT_DIR/sub" && cat "$RUNNER_ROW_FILE" > "$RUNNER_OUTPUT_DIR/sub/row.json"; fi'
)
SPECIAL = ["be,ta", 'say "hi"', "multi\nline", "ünï ✓"]


@pytest.fixture(scope="module")
def sweep_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An emulator without Spot reclaims, the lab stack (read-write data) deployed."""
    root = tmp_path_factory.mktemp("sweep-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RUNNER_EMULATOR_STOP_GRACE", "5")  # time for a stopped row to record its kill
        with running_emulator(root, ExecutorOptions(slots=3, spot_interruptions=0), ("dev",)) as started:
            yield started


@pytest.fixture
def local(sweep_emulator: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("XDG_STATE_HOME", str(sweep_emulator["root"]))
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
    monkeypatch.setattr(shards, "SHARD_SIZE", 16)  # 21 tasks in 2 shards, as 21,000 would be in 3
    return sweep_emulator


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--local", *args])


def test_a_sweep_of_1050_rows_in_chunks_and_shards_retries_exactly_its_failed_rows(local, tmp_path: Path):
    path = tmp_path / "samples.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample", "depth"])
        writer.writerows([value, i] for i, value in enumerate(SPECIAL))
        writer.writerows([f"s{i}", i % 7] for i in range(len(SPECIAL), ROWS))
    command = f"sh -c '{SCRIPT}'"
    submitted = as_json(
        "submit",
        "--tasks",
        str(path),
        "--per-task",
        str(PER_TASK),
        "--command",
        command,
        "--wait",
        "--interval",
        "1",
    )
    run_id = submitted["runId"]
    assert submitted["tasks"] == 21 and len(submitted["shards"]) == 2
    summary = submitted["summary"]
    assert sorted(f["index"] for f in summary["failures"]) == [0, 20]
    assert summary["rows"]["counts"]["failed"] == {"rows": 2, "ranges": "5,1013"}
    assert [(r["row"], r["key"], r["exitCode"]) for r in summary["rows"]["notDone"]] == [
        (5, "s5", 3),
        (1013, "s1013", 3),
    ]

    before = as_json("results", run_id)["counts"]
    assert before["failed"] == {"rows": 2, "ranges": "5,1013"}  # the other rows of their tasks ran
    assert before["succeeded"] == {"rows": 98, "ranges": "0-4,6-49,1000-1012,1014-1049"}
    assert before["no-outputs"]["rows"] == ROWS - 100
    assert before["killed"]["rows"] == 0 and before["not-run"]["rows"] == 0

    text = run("summary", run_id).output
    assert (
        "rows     1,050 rows, 50 per task: 98 succeeded with outputs, 950 succeeded without outputs, 2 failed"
        in text
    )
    retried = as_json("retry", run_id, "--skip-existing", "--wait", "--interval", "1")
    assert retried["tasks"] == 2 and retried["summary"]["counts"]["FAILED"] == 0
    for task, row in ((0, 5), (20, 1013)):
        log = run("logs", run_id, "--index", str(task)).output
        ran = [line for line in log.splitlines() if ": running (" in line]
        assert ran == [f"[batch-stacks] row {row}: running (sample s{row})"], log[-500:]
        assert log.count("done already; skipped") == PER_TASK - 1

    after = run("results", run_id)
    assert after.exit_code == 0, after.output
    counts = as_json("results", run_id)["counts"]
    assert counts["succeeded"] == {"rows": 100, "ranges": "0-49,1000-1049"}
    assert counts["failed"]["rows"] == 0 and counts["no-outputs"]["rows"] == ROWS - 100

    dest = tmp_path / "collected"
    collected = as_json("collect", run_id, "--to", str(dest), "--rows", "0-3,5,1013,500")
    assert collected["downloaded"] == 7 and collected["rows"] == 7  # row 0 has two files; 500 none
    for row, value in enumerate(SPECIAL):
        assert (dest / str(row) / "r.txt").read_text(encoding="utf-8") == value
    assert json.loads((dest / "0" / "sub" / "row.json").read_text(encoding="utf-8")) == {
        "sample": "be,ta",
        "depth": "0",
    }
    assert (dest / "1013" / "r.txt").read_text() == "s1013"
    again = as_json("collect", run_id, "--to", str(dest), "--rows", "0-3,5,1013")
    assert again["downloaded"] == 0 and again["skipped"] == 7
    assert not any(name.endswith(".part") for _, _, names in os.walk(dest) for name in names)


FILES = 500  # row 4's outputs: an upload long enough to be stopped in the middle
# Rows 1 (exit 3), 4 (terminated mid-upload) and 6 (out of memory) fail the first time only.
KILLS = (
    'first=$([ -z "$RUNNER_PARENT_RUN_ID" ] && echo 1); echo "row $RUNNER_ROW of $sample"; '
    'case "$RUNNER_ROW" in '
    '1) [ "$first" ] && { echo "bad input $sample" >&2; exit 3; };; '
    "2) exit 0;; "
    f'4) i=0; while [ $i -lt {FILES} ]; do echo $i > "$RUNNER_OUTPUT_DIR/f$i"; i=$((i+1)); done;; '
    '6) [ "$first" ] && python3 -c "b = bytearray(700 * 2**20); import time; time.sleep(5)";; '
    'esac; echo "$sample" > "$RUNNER_OUTPUT_DIR/result.txt"'
)


def test_rows_killed_in_every_way_are_never_done_and_a_retry_reruns_exactly_them(
    local: dict[str, Any], tmp_path: Path
):
    table = tmp_path / "samples.csv"
    table.write_text("id,sample\n" + "".join(f"{i},S{i:02d}\n" for i in range(9)))
    submitted = as_json(
        "submit",
        "--tasks",
        str(table),
        "--key",
        "sample",
        "--per-task",
        "3",
        "--memory",
        "512",
        "--command",
        f"sh -c '{KILLS}'",
    )
    run_id, job_id = submitted["runId"], submitted["jobId"]
    s3 = client(local, "s3")
    bucket, prefix = local["stacks"]["dev"]["data"]["bucket"], f"runs/{run_id}/out/4/"
    deadline = time.monotonic() + 60
    # Stop task 1 once row 4's upload has begun (its files take seconds to upload).
    while (
        time.monotonic() < deadline
        and not (s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)["KeyCount"])
    ):
        time.sleep(0.05)
    batch(local).terminate_job(jobId=f"{job_id}:1", reason="stopped mid-upload by the test")
    assert run("watch", run_id, "--interval", "1").exit_code == 3

    found = as_json("results", run_id)
    fates = {e["row"]: (e["key"], e["state"]) for e in found["entries"]}
    assert fates == {
        0: ("S00", "succeeded"),
        1: ("S01", "failed"),
        2: ("S02", "no-outputs"),
        3: ("S03", "succeeded"),
        4: ("S04", "killed"),
        5: ("S05", "not-run"),
        6: ("S06", "killed"),
        7: ("S07", "not-run"),
        8: ("S08", "not-run"),
    }
    entries = {e["row"]: e for e in found["entries"]}
    assert entries[1]["lastLine"] == "bad input S01" and entries[1]["exitCode"] == 3
    assert entries[4]["reason"] == (
        "killed: stopped mid-upload by the test, exit code 143; "
        "the task was stopped (SIGTERM) while its outputs were uploaded"
    )
    assert entries[6]["reason"].startswith("killed: out of memory")
    leftovers = sum(
        page.get("KeyCount", 0)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    assert 0 < leftovers <= FILES  # the killed attempt's part of an upload is there, but no manifest
    row_log = run("logs", run_id, "--row", "1").output
    assert "row 1 of S01" in row_log and "bad input S01" in row_log and "row 0 of" not in row_log

    retried = as_json("retry", run_id, "--skip-existing", "--wait", "--interval", "1")
    assert retried["tasks"] == 3 and retried["summary"]["counts"]["FAILED"] == 0
    reran = []
    for task in range(3):
        log = run("logs", run_id, "--index", str(task)).output
        reran += [int(line.split()[2].rstrip(":")) for line in log.splitlines() if ": running (" in line]
    assert reran == [1, 4, 5, 6, 7, 8]  # exactly the rows not done
    after = run("results", retried["runId"])  # a retry's id reads the whole lineage
    assert after.exit_code == 0, after.output
    dest = tmp_path / "out"
    collected = as_json("collect", retried["runId"], "--to", str(dest))
    assert collected["notDone"] == [] and collected["rows"] == 9
    assert sorted(os.listdir(dest / "4")) == sorted([f"f{i}" for i in range(FILES)] + ["result.txt"])
    assert all(
        (dest / str(row) / "result.txt").read_text() == f"S{row:02d}\n" for row in (0, 1, 3, 4, 5, 6, 7, 8)
    )
    assert not (dest / "2").exists()
