"""Failure classes from the reason strings AWS Batch really reports."""

from __future__ import annotations

import pytest

from runner.analysis.failure_classes import CLASSES, classify, hint


def task(status_reason=None, exit_code=None, container_reason=None, attempts=None):
    job = {"jobId": "j:1", "status": "FAILED", "statusReason": status_reason, "container": {}}
    if exit_code is not None:
        job["container"]["exitCode"] = exit_code
    if container_reason is not None:
        job["container"]["reason"] = container_reason
    job["attempts"] = attempts if attempts is not None else [{"container": dict(job["container"])}]
    return job


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (task("Host EC2 (instance i-0a1b2c3d4e5f) terminated."), "spot"),
        (
            task(
                "Essential container in task exited",
                attempts=[{"statusReason": "Host EC2 (instance i-0a1b) terminated.", "container": {}}],
            ),
            "spot",
        ),
        (task("Your Spot Task was interrupted."), "spot"),
        (
            task(
                "Essential container in task exited",
                137,
                "OutOfMemoryError: Container killed due to memory usage",
            ),
            "oom",
        ),
        (task("Job attempt duration exceeded timeout", 137), "timeout"),  # 137 alone is not OOM
        (task("Essential container in task exited", 137), "app"),
        (
            task(
                "Task failed to start",
                None,
                "CannotPullContainerError: pull image manifest has been retried 5 "
                "time(s): failed to resolve ref docker.io/library/app:v9: not found",
            ),
            "config",
        ),
        (
            task(
                "Task failed to start",
                None,
                "CannotPullContainerError: Error response from daemon: pull access "
                "denied for 1234.dkr.ecr.us-east-1.amazonaws.com/app, repository does not exist",
            ),
            "config",
        ),
        (
            task(
                "Task failed to start",
                None,
                "CannotPullContainerError: failed to copy: httpReadSeeker: failed "
                "open: unexpected status code https://registry: 503 Service Unavailable",
            ),
            "infra",
        ),
        (
            task(
                "Task failed to start",
                None,
                "CannotStartContainerError: Error response from daemon: OCI runtime create failed",
            ),
            "infra",
        ),
        (
            task(
                "Task failed to start",
                None,
                "ResourceInitializationError: unable to pull secrets or registry "
                "auth: execution resource retrieval failed",
            ),
            "infra",
        ),
        (
            task(
                "Task failed to start",
                None,
                "DockerTimeoutError: Could not transition to started; timed out after waiting 4m0s",
            ),
            "infra",
        ),
        (task("Cancelled by runner: cancelled with runner cancel", attempts=[]), "cancelled"),
        (
            task(
                "Cancelled by runner: wrong inputs",
                143,
                attempts=[
                    {"statusReason": "Cancelled by runner: wrong inputs", "container": {"exitCode": 143}}
                ],
            ),
            "cancelled",
        ),
        (task("Terminated by the operator", attempts=[]), "cancelled"),
        (task("Dependent Job failed", attempts=[]), "dependency"),
        (
            task(
                "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) is "
                "higher than that can be met by the CE(s) attached to the job queue.",
                attempts=[],
            ),
            "config",
        ),
        (
            task(
                "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested",
                attempts=[],
            ),
            "infra",
        ),
        (task("Essential container in task exited", 1), "app"),
        (task("Essential container in task exited", 0), "unknown"),
    ],
)
def test_each_failure_lands_in_the_class_that_says_what_to_do(job, expected):
    assert classify(job) == expected


@pytest.mark.parametrize("failure_class", CLASSES)
def test_every_class_has_a_one_line_hint_naming_the_run(failure_class):
    line = hint(failure_class, "20261125-000000-abcd", first_index=7, memory_mib=2048)
    assert "\n" not in line
    assert "20261125-000000-abcd" in line or failure_class == "dependency"
