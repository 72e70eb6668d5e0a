from __future__ import annotations

import io
import itertools
import json
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from rich.console import Console

from runner.aws.job_status import progress_of
from runner.aws.stack_outputs import StackOutputs
from runner.cli import follow as cli_module
from runner.errors import AwsError, RunNotFoundError
from runner.runs.watch import MAX_INTERVAL, watch
from runner.show.terminal import ProgressView
from tests.runner.conftest import Runner, fail_children


class ScriptedBatch:
    """A Batch client whose DescribeJobs answers follow a script of status summaries."""

    def __init__(self, summaries: list[dict[str, int]], size: int = 10_000) -> None:
        self.summaries = summaries
        self.size = size
        self.calls = 0

    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        summary = self.summaries[min(self.calls, len(self.summaries) - 1)]
        self.calls += 1
        done = summary.get("SUCCEEDED", 0) + summary.get("FAILED", 0) == self.size
        return {
            "jobs": [
                {
                    "jobId": jobs[0],
                    "jobName": "sweep",
                    "status": "SUCCEEDED" if done else "PENDING",
                    "arrayProperties": {"size": self.size, "statusSummary": summary},
                }
            ]
        }


def test_one_describe_per_poll_whatever_the_array_size():
    script = [{"RUNNABLE": 10_000}, {"RUNNING": 5000, "RUNNABLE": 5000}, {"SUCCEEDED": 10_000}]
    batch = ScriptedBatch(script)
    seen: list[int] = []
    sleeps: list[float] = []
    final = watch(
        batch, "job", interval=5, on_progress=lambda p: seen.append(p.finished), sleep=sleeps.append
    )
    assert batch.calls == 3
    assert seen == [0, 0, 10_000]
    assert len(sleeps) == 2
    assert final.done and final.failed == 0


def test_backs_off_gently_while_nothing_changes_and_never_beyond_a_minute():
    script = [{"RUNNABLE": 10}] * 30 + [{"RUNNING": 10}] + [{"SUCCEEDED": 10}]
    batch = ScriptedBatch(script, size=10)
    sleeps: list[float] = []
    watch(batch, "job", interval=10, sleep=sleeps.append)
    assert sleeps[0] == 10
    assert sleeps[1] == 15 and sleeps[2] == 22.5
    assert max(sleeps) == MAX_INTERVAL
    assert all(b >= a for a, b in itertools.pairwise(sleeps[:30]))
    assert sleeps[30] == 10  # progress resets the interval


def test_interval_larger_than_the_ceiling_is_kept():
    batch = ScriptedBatch([{"RUNNABLE": 2}] * 4 + [{"SUCCEEDED": 2}], size=2)
    sleeps: list[float] = []
    watch(batch, "job", interval=90, sleep=sleeps.append)
    assert sleeps == [90, 90, 90, 90]


class FlakyBatch(ScriptedBatch):
    """Fails the polls whose numbers are in ``failing`` with ``error`` (a botocore exception)."""

    def __init__(self, summaries: list[dict[str, int]], failing: set[int], error: Exception, size: int = 10):
        super().__init__(summaries, size)
        self.failing, self.error, self.attempts = failing, error, 0

    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        self.attempts += 1
        if self.attempts in self.failing:
            raise self.error
        return super().describe_jobs(jobs)


THROTTLED = ClientError(
    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeJobs"
)
EXPIRED = ClientError({"Error": {"Code": "ExpiredTokenException", "Message": "expired"}}, "DescribeJobs")


def test_a_failed_poll_is_retried_with_backoff_and_shown_not_fatal():
    script = [{"RUNNING": 10}, {"SUCCEEDED": 10}]
    batch = FlakyBatch(script, failing={2, 3}, error=EndpointConnectionError(endpoint_url="https://batch"))
    retries: list[tuple[str, float]] = []
    sleeps: list[float] = []
    final = watch(
        batch,
        "job",
        interval=10,
        sleep=sleeps.append,
        on_retry=lambda err, delay: retries.append((str(err), delay)),
    )
    assert final.done
    assert [delay for _, delay in retries] == [15, 22.5]
    assert retries[0][0].startswith("https://batch cannot be reached")
    assert sleeps == [10, 15, 22.5]


def test_a_long_outage_ends_the_watch_with_the_error():
    batch = FlakyBatch([{"RUNNING": 10}], failing=set(range(2, 1000)), error=THROTTLED)
    with pytest.raises(AwsError, match="ThrottlingException"):
        watch(batch, "job", interval=10, sleep=lambda _: None, max_outage=300)
    assert 5 < batch.attempts < 15  # backoff to 60 s: about five minutes of tries, then the error


def test_a_lasting_error_is_not_retried():
    batch = FlakyBatch([{"RUNNING": 10}], failing={2}, error=EXPIRED)
    with pytest.raises(AwsError, match="refresh them"):
        watch(batch, "job", interval=10, sleep=lambda _: None)
    assert batch.attempts == 2


def test_plain_progress_shows_a_retried_poll_on_its_own_line():
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    view = ProgressView(console, clock=lambda: datetime(2026, 11, 25, 10, 0, 0))
    view.retrying(AwsError("https://batch cannot be reached; check your network"), 15)
    assert console.file.getvalue() == (
        "10:00:00  poll failed: https://batch cannot be reached; check your network; retrying in 15s\n"
    )


def test_single_job_progress_counts_itself():
    progress = progress_of({"jobId": "j", "jobName": "n", "status": "RUNNING"})
    assert progress.size == 1 and progress.counts["RUNNING"] == 1 and not progress.done
    assert progress_of({"jobId": "j", "status": "FAILED"}).failed == 1


def test_unknown_job_is_a_clear_error():
    class Empty:
        def describe_jobs(self, jobs):
            return {"jobs": []}

    with pytest.raises(RunNotFoundError, match="AWS has no job nope in this region"):
        watch(Empty(), "nope", sleep=lambda _: None)


def test_watch_cli_exits_zero_when_all_succeeded(runner: Runner, stack: StackOutputs, api_calls: Counter):
    run = runner.json("submit", "--array", "50")
    api_calls.clear()
    result = runner("watch", run["runId"], "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document == {
        "runId": run["runId"],
        "jobId": run["jobId"],
        "status": "SUCCEEDED",
        "size": 50,
        "done": True,
        "counts": {
            "SUBMITTED": 0,
            "PENDING": 0,
            "RUNNABLE": 0,
            "STARTING": 0,
            "RUNNING": 0,
            "SUCCEEDED": 50,
            "FAILED": 0,
        },
    }
    assert api_calls == Counter({"DescribeJobs": 1})


def test_watch_cli_exits_three_when_any_failed(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "5")
    fail_children(run["jobId"], {1: ("Essential container in task exited", 1)})
    result = runner("watch", run["runId"])
    assert result.exit_code == 3
    assert "FAILED 1" in result.output
    assert f"runner summary {run['runId']}" in result.output


def test_ctrl_c_stops_watching_not_the_jobs(
    runner: Runner, stack: StackOutputs, api_calls: Counter, monkeypatch
):
    run = runner.json("submit", "--array", "5")

    def interrupted(*args: Any, **kwargs: Any):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "watch", interrupted)
    api_calls.clear()
    result = runner("watch", run["runId"])
    assert result.exit_code == 130
    assert (
        f"Stopped watching; the jobs keep running. Resume with `runner watch {run['runId']}`" in result.output
    )
    assert api_calls["CancelJob"] == 0 and api_calls["TerminateJob"] == 0


def test_submit_wait_prints_progress_then_summary(runner: Runner, stack: StackOutputs):
    result = runner("submit", "--array", "100", "--wait")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("Submitted run ")
    assert any("100/100 done  SUCCEEDED 100  FAILED 0" in line for line in lines)
    assert any(line.split() == ["0", "0", "0", "0", "0", "100", "0"] for line in lines)
    progress_line = next(i for i, line in enumerate(lines) if "100/100 done" in line)
    summary_line = next(i for i, line in enumerate(lines) if line.startswith("Run "))
    assert progress_line < summary_line


def test_submit_wait_json_nests_the_summary(runner: Runner, stack: StackOutputs):
    result = runner("submit", "--array", "3", "--wait", "--json")
    document = json.loads(result.stdout)
    assert document["summary"]["counts"]["SUCCEEDED"] == 3
    assert document["summary"]["runId"] == document["runId"]


def test_watch_points_to_runner_why_once_when_tasks_stay_runnable():
    script = [{"RUNNABLE": 10}] * 40 + [{"SUCCEEDED": 10}]
    batch = ScriptedBatch(script, size=10)
    stuck: list[int] = []
    watch(
        batch, "job", interval=10, sleep=lambda _: None, on_stuck=lambda p: stuck.append(p.counts["RUNNABLE"])
    )
    assert stuck == [10]  # once, after ten minutes of polls with nothing finishing


def test_progress_resets_the_stuck_clock():
    script = ([{"RUNNABLE": 10}] * 8 + [{"RUNNABLE": 9, "SUCCEEDED": 1}]) * 3 + [{"SUCCEEDED": 10}]
    batch = ScriptedBatch(script, size=10)
    stuck: list[int] = []
    watch(batch, "job", interval=10, sleep=lambda _: None, on_stuck=lambda p: stuck.append(1))
    assert stuck == []
