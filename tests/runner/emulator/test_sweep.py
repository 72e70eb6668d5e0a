"""End to end on the emulator: a table past 10,000 rows in chunks and shards, failing rows, a retry
that runs exactly those rows, and results and collect exact row by row."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.local.process import ExecutorOptions
from runner.runs import shards
from tests.runner.emulator.conftest import PROJECT_DIR, running_emulator

pytestmark = pytest.mark.emulator
ROWS, PER_TASK = 10_050, 250  # 41 tasks
FAILING = (5, 7013)  # in tasks 0 and 28
# Rows of the failing tasks leave a file (row 0 also a nested one); the rest leave nothing.
# The failing rows fail only the first time (a retry's tasks have RUNNER_PARENT_RUN_ID).
SCRIPT = (
    'if [ -z "$RUNNER_PARENT_RUN_ID" ] && { [ "$RUNNER_ROW" = 5 ] || [ "$RUNNER_ROW" = 7013 ]; }; then exit 3; fi; '
    'if [ "$RUNNER_ROW" -lt 250 ] || { [ "$RUNNER_ROW" -ge 7000 ] && [ "$RUNNER_ROW" -lt 7250 ]; }; then '
    'printf "%s" "$sample" > "$RUNNER_OUTPUT_DIR/r.txt"; fi; '
    'if [ "$RUNNER_ROW" = 0 ]; then mkdir -p "$RUNNER_OUTPUT_DIR/sub" && cat "$RUNNER_ROW_FILE" > "$RUNNER_OUTPUT_DIR/sub/row.json"; fi'
)
SPECIAL = ["be,ta", 'say "hi"', "multi\nline", "ünï ✓"]


@pytest.fixture(scope="module")
def sweep_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An emulator without Spot reclaims, the lab stack (read-write data) deployed."""
    root = tmp_path_factory.mktemp("sweep-state")
    with running_emulator(root, ExecutorOptions(slots=3, spot_interruptions=0), ("dev",)) as started:
        yield started


@pytest.fixture
def local(sweep_emulator: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("XDG_STATE_HOME", str(sweep_emulator["root"]))
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
    monkeypatch.setattr(shards, "SHARD_SIZE", 16)  # 41 tasks in 3 shards, as 41,000 would be in 5
    return sweep_emulator


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--local", *args])


def as_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return json.loads(result.stdout)


def test_a_sweep_of_10050_rows_in_chunks_retries_exactly_its_failed_rows(local, tmp_path: Path):
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
    assert submitted["tasks"] == 41 and len(submitted["shards"]) == 3
    summary = submitted["summary"]
    assert sorted(f["index"] for f in summary["failures"]) == [0, 28]
    assert summary["rows"] == {"rows": ROWS, "perTask": PER_TASK, "failedRows": "0-249,7000-7249"}

    before = as_json("results", run_id)["groups"]
    assert before["failed"] == {"rows": 500, "ranges": "0-249,7000-7249"}
    assert before["succeeded without outputs"]["rows"] == ROWS - 500
    assert before["succeeded with outputs"]["rows"] == 0 and before["not run"]["rows"] == 0

    text = run("summary", run_id).output
    assert (
        f"rows     10,050 rows, 250 per task; failed tasks hold rows 0-249,7000-7249 (`runner results {run_id}`)"
        in text
    )
    retried = as_json("retry", run_id, "--skip-existing", "--wait", "--interval", "1")
    assert retried["tasks"] == 2 and retried["summary"]["counts"]["FAILED"] == 0
    for task, row in ((0, 5), (28, 7013)):
        log = run("logs", run_id, "--index", str(task)).output
        ran = [line for line in log.splitlines() if line.endswith(": running")]
        assert ran == [f"[batch-stacks] row {row}: running"], log[-500:]
        assert log.count("has outputs already; skipped") == PER_TASK - 1

    after = run("results", run_id)
    assert after.exit_code == 0, after.output
    groups = as_json("results", run_id)["groups"]
    assert groups["succeeded with outputs"] == {"rows": 500, "ranges": "0-249,7000-7249"}
    assert groups["failed"]["rows"] == 0 and groups["succeeded without outputs"]["rows"] == ROWS - 500

    dest = tmp_path / "collected"
    collected = as_json("collect", run_id, "--to", str(dest), "--rows", "0-3,5,7013,8000")
    assert collected["downloaded"] == 7 and collected["rows"] == 6  # row 0 has two files; 8000 none
    for row, value in enumerate(SPECIAL):
        assert (dest / str(row) / "r.txt").read_text(encoding="utf-8") == value
    assert json.loads((dest / "0" / "sub" / "row.json").read_text(encoding="utf-8")) == {
        "sample": "be,ta",
        "depth": "0",
    }
    assert (dest / "7013" / "r.txt").read_text() == "s7013"
    again = as_json("collect", run_id, "--to", str(dest), "--rows", "0-3,5,7013")
    assert again["downloaded"] == 0 and again["skipped"] == 7
    assert not any(name.endswith(".part") for _, _, names in os.walk(dest) for name in names)
