"""moto's Batch backend with submitted jobs handed to the executor instead of finished at once.

As moto's own ``batch_simple`` does, it wraps the stock backend and replaces only what happens to a
submitted job; everything else (queues, compute environments, definitions) is moto's.
"""

from __future__ import annotations

import re
from typing import Any

from moto.batch.exceptions import ClientException
from moto.batch.models import BatchBackend, Job, batch_backends

from runner.emulator.executor import Compute, Executor, Task

# SubmitJob's documented constraints (moto checks the name only loosely and the size not at all).
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
MIN_ARRAY_SIZE, MAX_ARRAY_SIZE = 2, 10_000


class LocalJob(Job):
    """moto's Job, described as AWS describes it.

    With its effective resourceRequirements (and vcpus and memory to match); the definition's
    image, roles, user and logConfiguration; the final exit code and reason on ``container`` as
    well as in ``attempts``; an array child's ``arrayProperties.index``; no ``startedAt`` for a
    job that never started; and a description that does not change the job (moto's appends
    ``AWS_BATCH_JOB_ID`` to the overrides' environment on every DescribeJobs).
    """

    # The retryStrategy SubmitJob was given (moto keeps none): a restarted emulator applies it again.
    submitted_retry_strategy: dict[str, Any] | None = None

    def _get_container_property(self, p: str, default: Any) -> Any:
        if p != "environment":
            return super()._get_container_property(p, default)
        properties = self.job_definition.container_properties or {}
        merged = {e["name"]: e["value"] for e in properties.get("environment") or []}
        merged.update({e["name"]: e["value"] for e in self.container_overrides.get("environment") or []})
        merged["AWS_BATCH_JOB_ID"] = self.job_id
        return [{"name": name, "value": value} for name, value in merged.items()]

    def _container_details(self) -> dict[str, Any]:
        details = super()._container_details()
        properties = self.job_definition.container_properties or {}
        merged = {r["type"]: r["value"] for r in properties.get("resourceRequirements", [])}
        merged.update(
            {r["type"]: r["value"] for r in self.container_overrides.get("resourceRequirements", [])}
        )
        details["resourceRequirements"] = [{"type": k, "value": v} for k, v in sorted(merged.items())]
        # What was enforced, in the legacy fields too (moto shows the definition's).
        details["vcpus"] = _requirement(self, "VCPU", int(details.get("vcpus") or 1))
        details["memory"] = _requirement(self, "MEMORY", int(details.get("memory") or 2048))
        for key in ("image", "jobRoleArn", "executionRoleArn", "logConfiguration", "user"):
            if properties.get(key):
                details[key] = properties[key]
        last = (self.attempts or [{}])[-1].get("container") or {}
        for key in ("exitCode", "reason", "taskArn"):
            if key in last:
                details[key] = last[key]
        return details

    def describe_short(self) -> dict[str, Any]:
        result = super().describe_short()
        if not self.attempts and self.status not in ("STARTING", "RUNNING"):
            result.pop("startedAt", None)  # never started: AWS omits the field
        return result

    def describe(self) -> dict[str, Any]:
        result = super().describe()  # built on describe_short above, so startedAt is right already
        index = (self.array_properties or {}).get("index")
        if index is not None and not self._child_jobs:
            result["arrayProperties"] = {"index": index}
        return result


def unsupported(job: Job) -> str | None:
    """Why the emulator cannot run this job (it runs container jobs as local processes), or None."""
    definition = job.job_definition
    if definition.type == "multinode" or definition.node_properties:
        what = "multi-node parallel jobs (nodeProperties)"
    elif definition.eks_properties is not None or job.eks_properties_override:
        what = "EKS jobs (eksProperties)"
    elif definition.container_properties is None:
        what = "jobs without containerProperties (ecsProperties)"
    else:
        return None
    return f"{what} are not supported by the emulator, which runs container jobs as local processes"


def _requirement(job: Job, kind: str, default: int) -> int:
    overrides = {r["type"]: r["value"] for r in job.container_overrides.get("resourceRequirements", [])}
    properties = job.job_definition.container_properties or {}
    defined = {r["type"]: r["value"] for r in properties.get("resourceRequirements", [])}
    value = overrides.get(kind, defined.get(kind, default))
    return max(1, int(float(value)))


class LocalBatchBackend(BatchBackend):
    """moto's Batch backend with submitted jobs handed to the Executor instead of finished at once."""

    executor: Executor | None = None  # set once by the emulator's entry point

    @property
    def backend(self) -> BatchBackend:
        return batch_backends[self.account_id][self.region_name]

    def __getattribute__(self, name: str) -> Any:
        if name in (
            "backend",
            "account_id",
            "region_name",
            "urls",
            "_url_module",
            "__class__",
            "url_bases",
            "submit_job",
            "cancel_job",
            "terminate_job",
            "executor",
            "_compute_of",
            "_task",
            "_job_to_stop",
            "unfinished",
        ):
            return object.__getattribute__(self, name)
        return object.__getattribute__(self.backend, name)

    def _compute_of(self, queue: Any) -> Compute:
        """The queue's first compute environment: its name, maxvCpus and Spot-ness."""
        order = sorted(queue.env_order_json, key=lambda o: o["order"])
        environment = self.backend.get_compute_environment(order[0]["computeEnvironment"])
        resources = environment.compute_resources or {}
        kind = str(resources.get("type", "EC2")).upper()
        max_vcpus = int(resources.get("maxvCpus", 256))
        return Compute(
            name=environment.name,
            max_vcpus=max_vcpus,
            spot=kind in ("SPOT", "FARGATE_SPOT"),
            fargate=kind.startswith("FARGATE"),
            environment=environment,
        )

    def _task(self, job: Job, compute: Compute, retry: dict[str, Any] | None) -> Task:
        strategy = retry or job.job_definition.retry_strategy or {}
        timeout = job._get_attempt_duration()
        return Task(
            job,
            compute,
            _requirement(job, "VCPU", 1),
            _requirement(job, "MEMORY", 2048),
            int(strategy.get("attempts", 1)),
            list(strategy.get("evaluateOnExit") or []),
            timeout,
            unsupported=unsupported(job),
        )

    def submit_job(
        self,
        job_name: str,
        job_def_id: str,
        job_queue: str,
        array_properties: dict[str, Any],
        depends_on: list[dict[str, str]] | None = None,
        container_overrides: dict[str, Any] | None = None,
        eks_properties_override: dict[str, Any] | None = None,
        timeout: dict[str, int] | None = None,
        parameters: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        retry_strategy: dict[str, Any] | None = None,
    ) -> tuple[str, str, str]:
        executor = LocalBatchBackend.executor
        assert executor is not None
        backend = self.backend
        if not JOB_NAME.match(job_name or ""):
            raise ClientException(
                "jobName must be 1 to 128 letters, numbers, hyphens and underscores, starting with a "
                f"letter or number; got {job_name!r}"
            )
        size = (array_properties or {}).get("size")
        if size is not None and not MIN_ARRAY_SIZE <= int(size) <= MAX_ARRAY_SIZE:
            raise ClientException(
                f"arrayProperties.size must be between {MIN_ARRAY_SIZE} and {MAX_ARRAY_SIZE}; got {size}"
            )
        job_def = backend.get_job_definition(job_def_id)
        if job_def is None:
            raise ClientException(f"Job definition {job_def_id} does not exist")
        queue = backend.get_job_queue(job_queue)
        if queue is None:
            raise ClientException(f"Job queue {job_queue} does not exist")
        seconds = (timeout or {}).get("attemptDurationSeconds")
        if seconds is not None and int(seconds) < executor.settings.min_timeout_seconds:
            raise ClientException(
                f"attemptDurationSeconds must be at least {executor.settings.min_timeout_seconds} seconds"
            )
        compute = self._compute_of(queue)

        def make(provided_id: str | None, properties: dict[str, Any]) -> Job:
            job = LocalJob(
                job_name,
                job_def,
                queue,
                backend,
                log_backend=backend.logs_backend,
                container_overrides=container_overrides,
                eks_properties_override=eks_properties_override,
                depends_on=depends_on,
                all_jobs=backend._jobs,
                timeout=timeout,
                array_properties=properties,
                provided_job_id=provided_id,
                parameters=parameters,
                tags=tags if provided_id is None else None,
            )
            job.status = "SUBMITTED"
            job.submitted_retry_strategy = retry_strategy  # a restarted emulator applies it again
            backend._jobs[job.job_id] = job
            return job

        with executor.lock:
            job = make(None, array_properties)
            if "size" in array_properties:
                job._child_jobs = [
                    make(f"{job.job_id}:{i}", {"statusSummary": {}, "index": i})
                    for i in range(int(array_properties["size"]))
                ]
                for child in job._child_jobs:
                    executor.add(self._task(child, compute, retry_strategy))
                executor.add_parent(job)
            else:
                executor.add(self._task(job, compute, retry_strategy))
        return job_name, job.job_id, job.arn

    def unfinished(self) -> tuple[list[Task], list[Job]]:
        """What a restored emulator must carry on with: the tasks (jobs and array children) that
        had not finished, and the array parents waiting on them."""
        tasks, parents = [], []
        for job in self.backend._jobs.values():
            if job.status in ("SUCCEEDED", "FAILED"):
                continue
            if job._child_jobs:
                parents.append(job)
                continue
            retry = getattr(job, "submitted_retry_strategy", None)
            tasks.append(self._task(job, self._compute_of(job.job_queue), retry))
        return tasks, parents

    def cancel_job(self, job_id: str, reason: str) -> None:
        job = self._job_to_stop(job_id, reason)
        if job is not None and LocalBatchBackend.executor is not None:
            LocalBatchBackend.executor.cancel(job, reason)

    def terminate_job(self, job_id: str, reason: str) -> None:
        job = self._job_to_stop(job_id, reason)
        if job is not None and LocalBatchBackend.executor is not None:
            LocalBatchBackend.executor.terminate(job, reason)

    def _job_to_stop(self, job_id: str, reason: str) -> Job | None:
        """CancelJob's and TerminateJob's arguments checked as AWS does; an unknown id is a no-op."""
        for name, value in (("jobId", job_id), ("reason", reason)):
            if not value:
                raise ClientException(f"'{name}' is a required field (cannot be an empty string)")
        return self.backend.get_job_by_id(job_id)
