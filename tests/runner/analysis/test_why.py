"""`runner why` verdicts that need AWS's own capacity signals, against a stubbed client."""

from __future__ import annotations

from typing import Any

import pytest

from runner.analysis.why import diagnose

NOW = 1_800_000_000.0
QUEUE = "arn:aws:batch:us-east-1:1:job-queue/q"
CE = "arn:aws:batch:us-east-1:1:compute-environment/ce"


class StubBatch:
    """A run of one array shard; children and queue state as each scenario needs."""

    def __init__(
        self,
        children: list[dict[str, Any]],
        *,
        depends_on: list[str] = (),
        snapshot=None,
        dependency_status: str = "RUNNING",
    ) -> None:
        self.children = children
        self.depends_on = list(depends_on)
        self.snapshot = snapshot
        self.dependency_status = dependency_status

    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        found = []
        for job_id in jobs:
            if job_id == "run":
                summary: dict[str, int] = {}
                for child in self.children:
                    summary[child["status"]] = summary.get(child["status"], 0) + 1
                found.append(
                    {
                        "jobId": "run",
                        "status": "PENDING",
                        "arrayProperties": {"size": len(self.children), "statusSummary": summary},
                    }
                )
            elif job_id.startswith("run:"):
                child = next(c for c in self.children if c["jobId"] == job_id)
                found.append(
                    {
                        **child,
                        "dependsOn": [{"jobId": d} for d in self.depends_on],
                        "container": {"resourceRequirements": [{"type": "VCPU", "value": "1"}]},
                    }
                )
            else:
                found.append({"jobId": job_id, "status": self.dependency_status})
        return {"jobs": found}

    def get_paginator(self, _name: str) -> Any:
        children = self.children

        class Paginator:
            def paginate(self, arrayJobId: str, jobStatus: str, PaginationConfig: dict) -> Any:
                yield {"jobSummaryList": [c for c in children if c["status"] == jobStatus]}

        return Paginator()

    def describe_job_queues(self, jobQueues: list[str]) -> dict[str, Any]:
        return {
            "jobQueues": [
                {
                    "jobQueueName": "q",
                    "state": "ENABLED",
                    "status": "VALID",
                    "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": CE}],
                }
            ]
        }

    def describe_compute_environments(self, computeEnvironments: list[str]) -> dict[str, Any]:
        return {
            "computeEnvironments": [
                {
                    "computeEnvironmentName": "ce",
                    "state": "ENABLED",
                    "status": "VALID",
                    "computeResources": {"desiredvCpus": 4, "maxvCpus": 32},
                }
            ]
        }

    def get_job_queue_snapshot(self, jobQueue: str) -> dict[str, Any]:
        if self.snapshot is None:
            raise AttributeError("no snapshot")
        return {"frontOfQueue": {"jobs": [{"jobArn": f"arn:job/{j}"} for j in self.snapshot]}}


def task(
    index: int, status: str = "RUNNABLE", reason: str | None = None, started: float | None = None
) -> dict:
    job: dict[str, Any] = {"jobId": f"run:{index}", "status": status}
    if reason:
        job["statusReason"] = reason
    if started:
        job["startedAt"] = started
    return job


@pytest.mark.parametrize(
    ("children", "cause", "start"),
    [
        (
            [
                task(
                    0,
                    reason="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested",
                )
            ],
            "capacity",
            "AWS has no capacity for the allowed instance types right now",
        ),
        (
            [
                task(
                    0,
                    reason="MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS - Batch service role has a permission issue",
                )
            ],
            "service-role",
            "Batch's service role lacks permissions",
        ),
        (
            [
                task(
                    0,
                    reason="MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated with the job queue "
                    "cannot meet the CPU requirement of the job.",
                )
            ],
            "max-resource",
            "the compute environment is at its maxVcpus",
        ),
        (
            [
                task(0),
                task(1, "RUNNING", started=(NOW - 60) * 1000),
                task(2, "RUNNING", started=(NOW - 90) * 1000),
            ],
            "scaling",
            "no problem found: capacity is scaling up; 2 task(s) started in the last 10 minutes",
        ),
        ([task(0)], "starting", "no problem found yet"),
        ([task(0, "SUCCEEDED")], "none-waiting", "no task is waiting"),
    ],
)
def test_each_cause_is_one_verdict_with_its_fix(children, cause, start):
    verdict = diagnose(StubBatch(children), ["run"], QUEUE, now=lambda: NOW)
    assert verdict.cause == cause and verdict.line.startswith(start)


def test_dependencies_not_finished_or_failed_are_named():
    waiting = StubBatch([task(0, "PENDING")], depends_on=["other-job"])
    assert diagnose(waiting, ["run"], QUEUE, now=lambda: NOW).line.startswith(
        "waiting for 1 job(s) they depend on (other-job)"
    )
    failed = StubBatch([task(0, "PENDING")], depends_on=["other-job"], dependency_status="FAILED")
    assert diagnose(failed, ["run"], QUEUE, now=lambda: NOW).cause == "dependency-failed"


def test_the_place_in_the_queue_is_evidence_when_the_api_offers_it():
    batch = StubBatch([task(0)], snapshot=["someone-else", "another", "run:0"])
    verdict = diagnose(batch, ["run"], QUEUE, now=lambda: NOW)
    assert "behind 2 job(s) in the queue" in verdict.evidence
    assert "queue q: ENABLED, VALID" in verdict.evidence
    assert "compute environment ce: ENABLED, VALID, 4 of 32 vCPUs" in verdict.evidence
