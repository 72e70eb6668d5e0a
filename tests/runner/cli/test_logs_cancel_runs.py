from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from runner.aws.job_logs import child_job_id, read_log
from runner.aws.stack_outputs import StackOutputs
from runner.errors import RunnerError
from tests.runner.conftest import REGION, Runner, moto_jobs


def write_log(group: str, stream: str, lines: list[str]) -> None:
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)  # CloudWatch drops events older than 14 days
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


def child_stream(job_id: str, index: int) -> str:
    batch = boto3.client("batch", region_name=REGION)
    return batch.describe_jobs(jobs=[f"{job_id}:{index}"])["jobs"][0]["container"]["logStreamName"]


def test_logs_of_an_array_child_from_its_latest_attempt(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "5")
    write_log(stack.log_group_name, child_stream(run["jobId"], 3), ["start", "working", "done"])
    result = runner("logs", run["runId"], "--index", "3")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == ["start", "working", "done"]
    tail = runner.json("logs", run["runId"], "--index", "3", "--tail", "2")
    assert [e["message"] for e in tail["events"]] == ["working", "done"]
    assert tail["jobId"] == f"{run['jobId']}:3"
    assert tail["logGroupName"] == stack.log_group_name


def test_logs_with_a_missing_stream_is_a_message_not_a_crash(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "5")
    result = runner("logs", run["runId"], "--index", "1")
    assert result.exit_code == 1
    assert result.output.startswith("Error: log stream ")
    assert f"is not in {stack.log_group_name} (not written yet, or expired)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--index", "5"], "Error: --index 5 is out of range; use 0..4\n"),
        ([], "has 5 tasks; pass --index 0..4\n"),
    ],
)
def test_logs_index_must_fit_the_array(runner: Runner, stack: StackOutputs, args, message):
    run = runner.json("submit", "--array", "5")
    assert runner("logs", run["runId"], *args).output.endswith(message)


def test_index_on_a_single_job_is_refused():
    with pytest.raises(RunnerError, match="is not an array job; drop --index"):
        child_job_id("job", 2, None)


class PagedLogs:
    """GetLogEvents from the head in pages of 3, ending when the token repeats (as AWS does)."""

    def __init__(self, total: int) -> None:
        self.lines = [f"line {i}" for i in range(total)]
        self.calls: list[dict[str, Any]] = []

    def get_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        start = int(kwargs.get("nextToken", "f/0").split("/")[1])
        page = self.lines[start : start + 3]
        return {
            "events": [{"timestamp": i, "message": m} for i, m in enumerate(page, start)],
            "nextForwardToken": f"f/{start + len(page)}",
        }


class OneJob:
    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        return {"jobs": [{"jobId": jobs[0], "status": "SUCCEEDED", "container": {"logStreamName": "s"}}]}


def test_log_pages_from_the_head_until_the_end():
    logs = PagedLogs(7)
    log = read_log(OneJob(), logs, "job")
    assert [e.message for e in log.events] == [f"line {i}" for i in range(7)]
    assert not log.truncated
    assert all(call["startFromHead"] for call in logs.calls)


def test_log_output_is_bounded():
    logs = PagedLogs(100)
    log = read_log(OneJob(), logs, "job", limit=10)
    assert len(log.events) == 10 and log.truncated
    assert len(logs.calls) == 4  # pages of 3: stops as soon as the bound is reached


def set_statuses(job_id: str, statuses: dict[int, str]) -> None:
    for index, status in statuses.items():
        job = moto_jobs()[f"{job_id}:{index}"]
        job.status = status
        job.job_stopped = False


def test_cancel_cancels_queued_and_terminates_running(
    runner: Runner, stack: StackOutputs, api_calls: Counter
):
    run = runner.json("submit", "--array", "6")
    set_statuses(run["jobId"], {0: "RUNNABLE", 1: "RUNNABLE", 2: "RUNNING", 3: "STARTING"})
    api_calls.clear()
    result = runner.json("cancel", run["runId"], "--yes")
    assert result["cancelled"] == 2 and result["terminated"] == 2
    assert result["countsBefore"]["SUCCEEDED"] == 2
    assert api_calls == Counter({"DescribeJobs": 1, "CancelJob": 1, "TerminateJob": 1})


def test_cancel_of_a_finished_run_does_nothing(runner: Runner, stack: StackOutputs, api_calls: Counter):
    run = runner.json("submit", "--array", "3")
    api_calls.clear()
    result = runner("cancel", run["runId"], "--yes")
    assert result.output == "Nothing to cancel: SUCCEEDED 3  FAILED 0.\n"
    assert api_calls == Counter({"DescribeJobs": 1})


def test_cancel_without_a_terminal_needs_yes(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "3")
    result = runner("cancel", run["runId"])
    assert result.output == "Error: cancel needs confirmation; pass --yes when not at a terminal\n"


def test_runs_lists_newest_first_with_results(runner: Runner, stack: StackOutputs):
    assert runner("runs").output == "no runs yet: submit one with `runner submit --array N`\n"
    first = runner.json("submit", "--array", "2")
    runner.json("summary", first["runId"])
    second = runner.json("submit")
    listed = runner.json("runs")
    assert [r["runId"] for r in listed] == [second["runId"], first["runId"]]
    assert listed[1]["counts"]["SUCCEEDED"] == 2
    assert listed[0]["arraySize"] is None and listed[0]["local"] is False
    text = runner("runs").output
    assert first["runId"] in text and "2 ok, 0 failed" in text


def test_a_corrupt_record_does_not_hide_the_others(runner: Runner, stack: StackOutputs, isolated_environment):
    run = runner.json("submit", "--array", "2")
    (isolated_environment / "batch-stacks" / "runs" / "broken.json").write_text("{not json")
    assert [r["runId"] for r in runner.json("runs")] == [run["runId"]]


def test_commands_accept_a_job_id_or_child_id_for_a_recorded_run(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "4")
    by_job = runner.json("summary", run["jobId"])
    assert by_job["runId"] == run["runId"]
    child = runner.json("watch", f"{run['jobId']}:2")
    assert child["size"] == 1 and child["jobId"] == f"{run['jobId']}:2"
    assert json.loads(runner("outputs", "--json").stdout)["jobQueueArn"] == stack.job_queue_arn
