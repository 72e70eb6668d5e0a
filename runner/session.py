"""What a command works against: stack outputs, AWS target, run records. Resolved lazily."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from infra.limits import MAX_DEPENDS_ON
from runner.analysis.cost import reprice, stack_prices
from runner.analysis.lineage import RetryOutcome, fold_retries
from runner.analysis.summary import EVERY_ATTEMPT_BASIS, Failure, Summary, counts_line, summarize
from runner.analysis.timeline import TaskTimes
from runner.aws.batch_jobs import JobsForgottenError, describe_all
from runner.aws.clients import AwsTarget
from runner.aws.job_logs import stream_tail, task_job_id
from runner.aws.stack_outputs import (
    StackOutputs,
    find_project_dir,
    outputs_from_file,
    outputs_from_pulumi,
    selected_stack,
)
from runner.errors import AwsError, InvalidInputError, RunnerError, RunNotFoundError
from runner.local.server import running_server
from runner.local.state import LocalState
from runner.runs.indices import format_ranges
from runner.runs.records import RunRecord, RunStore, is_run_id, state_dir, utc_now
from runner.runs.submit import recover_shards

DEFAULT_LOCAL_STACK = "dev"
# Lines of a failed task's log a report shows.
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class JobRef:
    """What to act on: a whole run's shards, one shard, one task, or an unrecorded AWS job.

    ``shards`` are (AWS job id, logical offset of its first task) pairs.
    """

    job_id: str
    outputs: dict[str, Any]
    target: AwsTarget
    record: RunRecord | None = None
    shards: tuple[tuple[str, int], ...] = ()

    @property
    def run_id(self) -> str | None:
        return self.record.run_id if self.record else None

    @property
    def job_ids(self) -> list[str]:
        return [job_id for job_id, _ in self.shards] or [self.job_id]

    @property
    def whole_run(self) -> bool:
        return (
            self.record is not None
            and len(self.shards) == len(self.record.job_ids)
            and (self.job_id == self.record.job_id)
        )


@dataclass
class Session:
    stack_option: str | None = None
    outputs_file: Path | None = None
    local: bool = False
    root: Path = field(default_factory=state_dir)
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run
    now: Callable[[], datetime] = utc_now
    _outputs: StackOutputs | None = None

    @property
    def store(self) -> RunStore:
        return RunStore(self.root)

    @property
    def local_state(self) -> LocalState:
        return LocalState(self.root)

    def stack(self) -> str:
        if self.stack_option:
            return self.stack_option
        if self.local:
            deployed = self.local_state.deployed_stacks()
            return deployed[0] if len(deployed) == 1 else DEFAULT_LOCAL_STACK
        if self.outputs_file is not None:
            return self.outputs_file.stem
        return selected_stack(find_project_dir(), self.run)

    def outputs(self) -> StackOutputs:
        if self._outputs is None:
            stack = self.stack()
            if self.local:
                self.endpoint_url()  # a stopped emulator is the cause to report, not missing outputs
                self._outputs = self.local_state.outputs(stack)
            elif self.outputs_file is not None:
                self._outputs = outputs_from_file(self.outputs_file, stack)
            else:
                self._outputs = outputs_from_pulumi(stack, find_project_dir(), self.run)
        return self._outputs

    def endpoint_url(self) -> str | None:
        if not self.local:
            return None
        server = running_server(self.local_state)
        if server is None:
            raise RunnerError("the local emulator is not running; start it with `runner local up`")
        return server.endpoint_url

    def emulator_endpoint(self) -> str | None:
        """Where the local emulator answers now, or None when it is not running."""
        server = running_server(self.local_state)
        return server.endpoint_url if server else None

    def target(self) -> AwsTarget:
        return self.target_for(self.outputs().region, self.endpoint_url())

    def target_for(self, region: str, endpoint_url: str | None) -> AwsTarget:
        """Real AWS, or the emulator signed with its own keys."""
        credentials = self.local_state.credentials() if endpoint_url else None
        return AwsTarget(region, endpoint_url, credentials)

    def resolve(self, run_or_job_id: str) -> JobRef:
        """A run id, AWS job id or task id to what it names (the run's own record first)."""
        record = self.store.find(run_or_job_id)
        if record is None:
            if is_run_id(run_or_job_id):
                raise RunNotFoundError(f"no run {run_or_job_id}; list runs with `runner runs`")
            outputs = self.outputs()
            return JobRef(run_or_job_id, outputs.to_contract(), self.target(), None, ((run_or_job_id, 0),))
        if record.endpoint_url and not record.summary:
            self.require_emulator(record)
        target = self.target_for(record.outputs["region"], record.endpoint_url)
        # An interrupted submit: shards AWS has but the record lacks are found by name.
        interrupted = record.missing_shards and record.state == "submitting"
        if interrupted and recover_shards(target.client("batch"), record):
            self.store.save(record)
        if not record.job_ids:
            raise RunNotFoundError(
                f"run {record.run_id} was never submitted ({record.error or record.state}); "
                f"`runner submit --resume {record.run_id}` submits it"
            )
        shards = tuple((s.job_id, s.offset) for s in record.shards if s.job_id)
        if is_run_id(run_or_job_id):
            return JobRef(record.job_id or "", record.outputs, target, record, shards)
        parent = run_or_job_id.split(":")[0]
        offset = next(offset for job_id, offset in shards if job_id == parent)
        return JobRef(run_or_job_id, record.outputs, target, record, ((run_or_job_id, offset),))

    def task(self, ref: JobRef, index: int | None) -> tuple[AwsTarget, str, dict[str, Any]]:
        """Where logical task ``index`` of a run ran last (retries first), as (target, job id, outputs).

        Without a whole run (a job id, or a task's own id) the index is the array index.
        """
        record = ref.record
        if record is None or not ref.whole_run:
            known = (
                None
                if record is None
                else next((s.size for s in record.shards if s.job_id == ref.job_id and s.is_array), None)
            )
            return ref.target, task_job_id(ref.target.client("batch"), ref.job_id, index, known), ref.outputs
        if index is None:
            if record.tasks == 1:
                return ref.target, ref.job_id, ref.outputs
            raise InvalidInputError(
                f"run {record.run_id} has {record.total_tasks:,} tasks; "
                f"pass --index 0..{record.total_tasks - 1}"
            )
        if not 0 <= index < record.total_tasks:
            raise InvalidInputError(f"--index {index} is out of range; use 0..{record.total_tasks - 1}")
        for run in reversed([record, *self.store.lineage(record)]):
            shard = next((s for s in run.shards if s.job_id and s.holds(index)), None)
            if shard is not None:
                return (
                    self.target_for(run.outputs["region"], run.endpoint_url),
                    shard.task_job_id(index),
                    run.outputs,
                )
        ran = format_ranges(i for s in record.shards for i in range(s.offset, s.stop))
        raise InvalidInputError(f"run {record.run_id} did not run index {index} (it ran {ran})")

    def task_memory(self, ref: JobRef) -> int | None:
        """MiB each task of the run had (its override, else the stack's), for an OOM hint."""
        request = ref.record.request if ref.record else {}
        for requirement in (request.get("containerOverrides") or {}).get("resourceRequirements") or []:
            if requirement.get("type") == "MEMORY":
                return int(requirement["value"])
        memory = ref.outputs.get("jobMemoryMiB")
        return int(memory) if memory else None

    def require_emulator(self, record: RunRecord) -> None:
        """A local run's jobs live in the emulator that ran them: say so at once if it is gone."""
        server = running_server(self.local_state)
        if server is None or server.endpoint_url != record.endpoint_url:
            raise RunnerError(
                f"run {record.run_id} ran on the local emulator at {record.endpoint_url}, which is no "
                "longer running, and its jobs went with it; `runner runs --prune` forgets such runs"
            )

    def depends_on_jobs(self, run_or_job_id: str) -> list[str]:
        """The AWS jobs (a run's shards) a new run should wait for, checked where it will go."""
        ref = self.resolve(run_or_job_id)
        if ref.target != self.target():
            raise InvalidInputError(
                f"--depends-on {run_or_job_id} is in another region or emulator than stack "
                f"'{self.stack()}'; a job can only wait for jobs in its own queue's region"
            )
        if len(ref.job_ids) > MAX_DEPENDS_ON:
            raise InvalidInputError(
                f"--depends-on {run_or_job_id}: a job can wait for at most {MAX_DEPENDS_ON} jobs and "
                f"that run has {len(ref.job_ids)} shards; wait for it with `runner watch` before submitting"
            )
        try:
            jobs = describe_all(ref.target.client("batch"), ref.job_ids)
        except JobsForgottenError as err:
            raise InvalidInputError(
                f"--depends-on {run_or_job_id}: AWS has no job {err.missing[0]}; "
                "check the id with `runner runs`"
            ) from None
        failed = [job["jobId"] for job in jobs if job.get("status") == "FAILED"]
        if failed:
            raise InvalidInputError(
                f"--depends-on {run_or_job_id}: job {failed[0]} has FAILED, so this run would fail at once"
            )
        return ref.job_ids

    def summary(
        self, ref: JobRef, *, price: float | None = None, refresh: bool = False, all_attempts: bool = False
    ) -> Summary:
        """How a run (or job) went, with its retries folded in.

        A complete run's summary is cached in its record, so it needs no AWS call and outlives
        AWS's memory of the jobs; ``all_attempts`` is paid for once and cached the same way.
        """
        parts = self.lineage(ref, refresh=refresh, all_attempts=all_attempts)
        return self.fold(ref, parts, price)

    def lineage(
        self, ref: JobRef, *, refresh: bool = False, all_attempts: bool = False, with_times: bool = False
    ) -> list[RetryOutcome]:
        """The run's own summary, then each retry run's (oldest first), as (run id, pieces, summary).

        ``with_times`` also gives each summary its task times (cached beside a complete run's
        record; a run whose jobs AWS forgot before they were cached comes without).
        """
        own = self._own_summary(ref, refresh=refresh, all_attempts=all_attempts, with_times=with_times)
        parts = [RetryOutcome(ref.run_id or ref.job_id, [(0, own.size)], own)]
        if ref.whole_run and ref.record is not None and ref.record.retry_run_ids:
            parts.extend(
                RetryOutcome(
                    retry.run_id,
                    [(s.offset, s.size) for s in retry.shards],
                    self._own_summary(
                        self.resolve(retry.run_id),
                        refresh=refresh,
                        all_attempts=all_attempts,
                        with_times=with_times,
                    ),
                )
                for retry in self.store.lineage(ref.record)
                if retry.job_ids
            )
        return parts

    def fold(self, ref: JobRef, parts: list[RetryOutcome], price: float | None = None) -> Summary:
        """Each index's latest outcome over the lineage, repriced with ``--vcpu-hour-price``."""
        summary = fold_retries(parts[0].summary, parts[1:])
        if price is not None and summary.cost is not None:
            wasted = summary.spot.vcpu_hours if summary.spot else 0.0
            summary = replace(summary, cost=reprice(summary.cost, stack_prices(ref.outputs, price), wasted))
        return summary

    def log_tails(
        self, ref: JobRef, failures: Sequence[Failure], *, complete: bool, lines: int = LOG_TAIL_LINES
    ) -> dict[str, tuple[list[str], str | None]]:
        """The last lines of each failure's log (one call each), or why they cannot be read.

        A complete run's tails are cached beside its record, so its report outlives the logs.
        Once the endpoint cannot be reached, the others are not tried.
        """
        run_id = ref.run_id if ref.whole_run else None
        cached = self.store.load_cache(run_id, "logs") if run_id else {}
        tails: dict[str, tuple[list[str], str | None]] = {}
        fresh: dict[str, Any] = {}
        unreachable: str | None = None
        for failure in failures:
            hit = cached.get(failure.job_id)
            if isinstance(hit, list) and all(isinstance(line, str) for line in hit):
                tails[failure.job_id] = (hit, None)
                continue
            if isinstance(hit, dict) and isinstance(hit.get("error"), str):
                tails[failure.job_id] = ([], hit["error"])  # no stream, known since the run completed
                continue
            if unreachable or not failure.log_stream_name:
                tails[failure.job_id] = ([], f"log not read: {unreachable or 'the task has no log stream'}")
                continue
            try:
                tail = stream_tail(
                    ref.target.client("logs"), ref.outputs["logGroupName"], failure.log_stream_name, lines
                )
            except AwsError as err:  # the network or AWS: worth trying again next time
                unreachable = str(err)
                tails[failure.job_id] = ([], f"log not read: {err}")
            except RunnerError as err:  # no such stream: a fact once the run is complete
                tails[failure.job_id] = ([], str(err))
                fresh[failure.job_id] = {"error": str(err)}
            else:
                tails[failure.job_id] = (tail, None)
                fresh[failure.job_id] = tail
        if run_id and complete and fresh:
            self.store.save_cache(run_id, "logs", {**cached, **fresh})
        return tails

    def _cached_times(self, run_id: str, basis: str) -> TaskTimes | None:
        cached = self.store.load_cache(run_id, "times")
        if cached.get("basis") != basis or not isinstance(cached.get("times"), dict):
            return None
        try:
            return TaskTimes.from_json(cached["times"])
        except (KeyError, TypeError, ValueError):
            return None  # a damaged cache: ask AWS again

    def _own_summary(
        self, ref: JobRef, *, refresh: bool, all_attempts: bool, with_times: bool = False
    ) -> Summary:
        record = ref.record if ref.whole_run else None
        cached = Summary.from_json(record.summary) if record is not None and record.summary else None
        basis_ok = cached is not None and (
            not all_attempts or (cached.spot is not None and cached.spot.basis == EVERY_ATTEMPT_BASIS)
        )
        if cached is not None and cached.complete and basis_ok and not refresh:
            if not with_times:
                return cached
            times = self._cached_times(cached.run_id or "", cached.basis)
            if times is not None:
                return replace(cached, times=times)
        # Task times for a cached complete summary are fetched on the summary's own basis, once.
        keep_basis = (
            with_times and cached is not None and cached.complete and cached.basis == EVERY_ATTEMPT_BASIS
        )
        try:
            summary = summarize(
                ref.target.client("batch"),
                ref.shards,
                default_vcpus=int(ref.outputs["jobVcpus"]),
                run_id=ref.run_id,
                all_attempts=all_attempts or keep_basis,
                prices=stack_prices(ref.outputs),
            )
        except JobsForgottenError:
            if record is None:
                raise
            if cached is not None and cached.complete:
                return cached  # without task times: the report says so
            seen = f"; when last seen: {counts_line(cached)} of {cached.size}" if cached else ""
            raise RunNotFoundError(
                f"AWS no longer has the jobs of run {record.run_id} (it keeps finished jobs for at "
                f"least 7 days) and the run was not complete when last summarized, so its outcome "
                f"is unknown{seen}"
            ) from None
        if record is not None:
            summary = replace(summary, job_name=record.job_name)  # the run's name, not its first shard's
        if record is not None and (summary.complete or not cached or not cached.complete):
            record.summary = summary.to_json()
            self.store.save(record)
            if summary.complete and summary.times is not None:
                self.store.save_cache(
                    record.run_id, "times", {"basis": summary.basis, "times": summary.times.to_json()}
                )
        return summary
