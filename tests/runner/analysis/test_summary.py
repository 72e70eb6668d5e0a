from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runner.analysis.cost import stack_prices
from runner.analysis.summary import Summary, percentile, runtime_stats, summarize
from runner.aws.stack_outputs import StackOutputs
from tests.runner.conftest import REGION, Runner, fail_children

PARENT = "a1b2c3d4-0000-0000-0000-000000000000"


def test_summary_lists_failed_indices_with_reasons(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "20")
    fail_children(run["jobId"], {3: ("Essential container in task exited", 2), 17: ("Timeout", 137)})
    result = runner("summary", run["runId"], "--json")
    assert result.exit_code == 3
    import json

    summary = json.loads(result.stdout)
    assert summary["counts"]["SUCCEEDED"] == 18
    assert summary["counts"]["FAILED"] == 2
    assert [(f["index"], f["statusReason"], f["exitCode"]) for f in summary["failures"]] == [
        (3, "Essential container in task exited", 2),
        (17, "Timeout", 137),
    ]
    assert summary["failures"][0]["jobId"] == f"{run['jobId']}:3"
    assert summary["runId"] == run["runId"]
    assert summary["size"] == 20


def test_summary_text_names_every_failed_index(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "10")
    fail_children(run["jobId"], {4: ("CannotPullContainerError: image not found", 1)})
    result = runner("summary", run["runId"])
    assert result.exit_code == 3
    assert "1 failed" in result.output
    assert "CannotPullContainerError: image not found" in result.output
    assert "Run " + run["runId"] in result.output


def test_summary_json_shape(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "5")
    summary = runner.json("summary", run["jobId"])
    assert set(summary) >= {
        "runId",
        "jobId",
        "status",
        "size",
        "counts",
        "failures",
        "runtimeSeconds",
        "vcpuHours",
    }
    assert set(summary["runtimeSeconds"]) == {"min", "p50", "p90", "max"}
    assert summary["counts"] == {
        "SUBMITTED": 0,
        "PENDING": 0,
        "RUNNABLE": 0,
        "STARTING": 0,
        "RUNNING": 0,
        "SUCCEEDED": 5,
        "FAILED": 0,
    }
    assert summary["vcpus"] == 2
    assert summary["cost"]["basis"] == (
        "estimate: latest attempt of each task and every attempt of failed tasks x list prices; "
        "redeploy the stack for its costModel"
    )
    assert set(summary["cost"]) == {
        "purchaseModel",
        "usdPerVcpuHour",
        "vcpuHours",
        "estimatedUsd",
        "wastedUsd",
        "basis",
        "alternative",
    }
    assert set(summary["cost"]["alternative"]) == {"purchaseModel", "usdPerVcpuHour", "estimatedUsd"}


def test_finished_run_summary_is_cached_and_readable_after_aws_forgets(
    runner: Runner, stack: StackOutputs, api_calls: Counter
):
    run = runner.json("submit", "--array", "5")
    first = runner.json("summary", run["runId"])
    boto3.client("batch", region_name=REGION)  # AWS forgets finished jobs after a day or two:
    from tests.runner.conftest import moto_jobs

    moto_jobs().clear()
    api_calls.clear()
    again = runner.json("summary", run["runId"])
    assert again == first
    assert sum(api_calls.values()) == 0
    # Asking AWS again finds nothing: the complete summary in the record still answers.
    assert runner.json("summary", run["runId"], "--refresh") == first
    assert api_calls["DescribeJobs"] == 1


def test_price_override_recomputes_cost_from_cache(runner: Runner, stack: StackOutputs):
    run = runner.json("submit", "--array", "5")
    runner.json("summary", run["runId"])
    summary = runner.json("summary", run["runId"], "--vcpu-hour-price", "0.5")
    assert summary["cost"]["usdPerVcpuHour"] == 0.5
    assert summary["cost"]["basis"].endswith(" x --vcpu-hour-price")


def test_unknown_run_id_is_one_line(runner: Runner, stack: StackOutputs):
    result = runner("summary", "20200101-000000-0000")
    assert result.output == "Error: no run 20200101-000000-0000; list runs with `runner runs`\n"


def test_unknown_job_id_is_one_line(runner: Runner, stack: StackOutputs):
    result = runner("summary", "00000000-1111-2222-3333-444444444444")
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: AWS has no job 00000000-1111-2222-3333-444444444444 in this region"
    )


def test_percentiles_are_nearest_rank():
    values = list(range(1, 11))
    assert percentile(values, 0.5) == 5
    assert percentile(values, 0.9) == 9
    assert percentile([7.0], 0.9) == 7.0
    assert runtime_stats([]) is None
    stats = runtime_stats([30.0, 10.0, 20.0])
    assert (stats.min, stats.p50, stats.max) == (10.0, 20.0, 30.0)


# --- Call budgets with a stubbed client: moto neither paginates nor keeps real timings. ----


def child(index: int, status: str, *, started: int = 1_000_000, runtime_ms: int = 60_000, **extra: Any):
    job = {
        "jobId": f"{PARENT}:{index}",
        "jobName": "sweep",
        "status": status,
        "createdAt": started - 5_000,
        "startedAt": started,
        "stoppedAt": started + runtime_ms,
        "arrayProperties": {"index": index},
    }
    job.update(extra)
    return job


def stub_array(stubber: Stubber, size: int, failed: set[int]) -> None:
    """DescribeJobs(parent), then ListJobs pages of 1,000 for SUCCEEDED and FAILED, then describes."""
    statuses = {"SUCCEEDED": size - len(failed), "FAILED": len(failed)}
    stubber.add_response(
        "describe_jobs",
        {
            "jobs": [
                {
                    "jobId": PARENT,
                    "jobName": "sweep",
                    "jobQueue": "q",
                    "status": "FAILED",
                    "jobDefinition": "d",
                    "startedAt": 0,
                    "arrayProperties": {"size": size, "statusSummary": statuses},
                    "container": {"resourceRequirements": [{"type": "VCPU", "value": "2"}]},
                }
            ]
        },
        {"jobs": [PARENT]},
    )
    for status in ("SUCCEEDED", "FAILED"):
        indices = [i for i in range(size) if (i in failed) == (status == "FAILED")]
        if not indices:
            continue
        pages = [indices[i : i + 1000] for i in range(0, len(indices), 1000)]
        for number, page in enumerate(pages):
            expected = {"arrayJobId": PARENT, "jobStatus": status, "maxResults": 1000}
            if number:
                expected["nextToken"] = f"{status}-{number}"
            response: dict[str, Any] = {
                "jobSummaryList": [
                    child(
                        i,
                        status,
                        runtime_ms=(i + 1) * 1000,
                        **(
                            {
                                "statusReason": "Essential container in task exited",
                                "container": {"exitCode": 1},
                            }
                            if status == "FAILED"
                            else {}
                        ),
                    )
                    for i in page
                ]
            }
            if number + 1 < len(pages):
                response["nextToken"] = f"{status}-{number + 1}"
            stubber.add_response("list_jobs", response, expected)
    failed_ids = [f"{PARENT}:{i}" for i in sorted(failed)]
    for start in range(0, len(failed_ids), 100):
        batch_ids = failed_ids[start : start + 100]
        stubber.add_response(
            "describe_jobs",
            {
                "jobs": [
                    {
                        "jobId": job_id,
                        "jobName": "sweep",
                        "jobQueue": "q",
                        "status": "FAILED",
                        "jobDefinition": "d",
                        "startedAt": 0,
                        "attempts": [{"container": {"logStreamName": f"job/default/{job_id}"}}],
                        "container": {
                            "exitCode": 1,
                            "reason": "OutOfMemoryError: Container killed due to memory usage",
                        },
                    }
                    for job_id in batch_ids
                ]
            },
            {"jobs": batch_ids},
        )


@pytest.mark.parametrize("failed_count", [0, 1, 150, 2500])
def test_summary_of_2500_children_stays_within_the_call_budget(failed_count: int):
    client = boto3.client("batch", region_name=REGION)
    failed = {i * 2500 // failed_count for i in range(failed_count)}
    assert len(failed) == failed_count
    calls: Counter[str] = Counter()
    client.meta.events.register("before-parameter-build.*.*", lambda model, **_: calls.update([model.name]))
    with Stubber(client) as stubber:
        stub_array(stubber, 2500, failed)
        summary = summarize(client, [(PARENT, 0)], prices=stack_prices("on-demand"))
        stubber.assert_no_pending_responses()
    assert sum(calls.values()) <= 1 + 3 + 3 + math.ceil(failed_count / 100)
    assert calls["ListJobs"] == math.ceil((2500 - failed_count) / 1000) + math.ceil(failed_count / 1000)
    assert calls["DescribeJobs"] == 1 + math.ceil(failed_count / 100)
    assert summary.counts["SUCCEEDED"] == 2500 - failed_count
    assert summary.counts["FAILED"] == failed_count
    assert [f.index for f in summary.failures] == sorted(failed)
    if failed:
        first = summary.failures[0]
        assert first.reason == "OutOfMemoryError: Container killed due to memory usage"
        assert first.status_reason == "Essential container in task exited"
        assert first.exit_code == 1
        assert first.log_stream_name == f"job/default/{PARENT}:{first.index}"
    # Runtimes are 1..2500 s: nearest-rank percentiles over all children, 2 vCPUs each.
    assert summary.runtime.min == 1.0 and summary.runtime.max == 2500.0
    assert summary.runtime.p50 == 1250.0 and summary.runtime.p90 == 2250.0
    assert summary.vcpus == 2
    assert summary.vcpu_hours == pytest.approx(sum(range(1, 2501)) * 2 / 3600)
    assert summary.cost.estimated_usd == pytest.approx(summary.vcpu_hours * 0.0425)


def test_summary_round_trips_through_its_json():
    client = boto3.client("batch", region_name=REGION)
    with Stubber(client) as stubber:
        stub_array(stubber, 30, {2, 5})
        summary = summarize(client, [(PARENT, 0)], prices=stack_prices("spot"), run_id="20261124-000000-aaaa")
    assert Summary.from_json(summary.to_json()) == summary


def test_summary_of_a_single_failed_job_needs_one_call(tmp_path: Path):
    client = boto3.client("batch", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_jobs",
            {
                "jobs": [
                    {
                        "jobId": PARENT,
                        "jobName": "one",
                        "jobQueue": "q",
                        "status": "FAILED",
                        "jobDefinition": "d",
                        "startedAt": 1000,
                        "stoppedAt": 31_000,
                        "statusReason": "Essential container in task exited",
                        "container": {"exitCode": 3, "vcpus": 4},
                        "attempts": [{}, {}],
                    }
                ]
            },
            {"jobs": [PARENT]},
        )
        summary = summarize(client, [(PARENT, 0)], prices=stack_prices("spot"))
    assert summary.size == 1
    assert summary.counts["FAILED"] == 1
    (failure,) = summary.failures
    assert (failure.index, failure.exit_code, failure.attempts) == (
        0,
        3,
        2,
    )  # a single job is logical index 0
    assert summary.runtime.max == 30.0
    assert summary.vcpu_hours == pytest.approx(30 * 4 / 3600)
