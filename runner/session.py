"""What a command works against: stack outputs, AWS target, run records. Resolved lazily."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.analysis.summary import Summary, cost_estimate, summarize
from runner.aws.clients import AwsTarget
from runner.aws.stack_outputs import (
    StackOutputs,
    find_project_dir,
    outputs_from_file,
    outputs_from_pulumi,
    selected_stack,
)
from runner.errors import InvalidInputError, RunnerError, RunNotFoundError
from runner.local.server import running_server
from runner.local.state import LocalState
from runner.runs.records import RunRecord, RunStore, is_run_id, state_dir, utc_now
from runner.runs.submit import recover_job_id
from runner.runs.watch import describe_job

DEFAULT_LOCAL_STACK = "dev"


@dataclass(frozen=True)
class JobRef:
    """A job to act on, with the stack outputs and AWS target it belongs to."""

    job_id: str
    outputs: dict[str, Any]
    target: AwsTarget
    record: RunRecord | None = None

    @property
    def run_id(self) -> str | None:
        return self.record.run_id if self.record else None


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
        return AwsTarget(self.outputs().region, self.endpoint_url())

    def resolve(self, run_or_job_id: str) -> JobRef:
        """A run id or AWS job id to the job and where it lives (the run's own record first)."""
        record = self.store.find(run_or_job_id)
        if record is not None:
            if record.endpoint_url and not record.summary:
                self.require_emulator(record)
            target = AwsTarget(record.outputs["region"], record.endpoint_url)
            job_id = record.job_id
            if job_id is None:
                job_id = recover_job_id(target.client("batch"), record)
                if job_id is None:
                    raise RunNotFoundError(
                        f"run {record.run_id} was never submitted ({record.error or record.state})"
                    )
                record.state, record.job_ids = "submitted", [job_id]
                self.store.save(record)
            if ":" in run_or_job_id and not is_run_id(run_or_job_id):
                job_id = run_or_job_id  # an array child asked for by its own id
            return JobRef(job_id, record.outputs, target, record)
        if is_run_id(run_or_job_id):
            raise RunNotFoundError(f"no run {run_or_job_id}; list runs with `runner runs`")
        outputs = self.outputs()
        return JobRef(run_or_job_id, outputs.to_contract(), self.target())

    def require_emulator(self, record: RunRecord) -> None:
        """A local run's jobs live in the emulator that ran them: say so at once if it is gone."""
        server = running_server(self.local_state)
        if server is None or server.endpoint_url != record.endpoint_url:
            raise RunnerError(
                f"run {record.run_id} ran on the local emulator at {record.endpoint_url}, which is no "
                "longer running, and its jobs went with it; `runner runs --prune` forgets such runs"
            )

    def depends_on_job(self, run_or_job_id: str) -> str:
        """The AWS job a new run should wait for, checked to exist where the run will go."""
        ref = self.resolve(run_or_job_id)
        if ref.target != self.target():
            raise InvalidInputError(
                f"--depends-on {run_or_job_id} is in another region or emulator than stack "
                f"'{self.stack()}'; a job can only wait for jobs in its own queue's region"
            )
        try:
            job = describe_job(ref.target.client("batch"), ref.job_id)
        except RunNotFoundError:
            raise InvalidInputError(
                f"--depends-on {run_or_job_id}: AWS has no job {ref.job_id}; check the id with `runner runs`"
            ) from None
        if job.get("status") == "FAILED":
            raise InvalidInputError(
                f"--depends-on {run_or_job_id}: job {ref.job_id} has FAILED, so this run would fail at once"
            )
        return ref.job_id

    def summary(self, ref: JobRef, *, price: float | None = None, refresh: bool = False) -> Summary:
        """The summary cached in a finished run's record, else one from the API (cached once done).

        A cached summary needs no AWS call, so it outlives AWS's memory of the job.
        """
        record = ref.record
        whole_run = record is not None and ref.job_id == record.job_id
        if whole_run and record.summary and not refresh:
            summary = Summary.from_json(record.summary)
            if price is None:
                return summary
            return replace(
                summary, cost=cost_estimate(summary.vcpu_hours, ref.outputs["purchaseModel"], price)
            )
        summary = summarize(
            ref.target.client("batch"),
            ref.job_id,
            purchase_model=ref.outputs["purchaseModel"],
            default_vcpus=int(ref.outputs["jobVcpus"]),
            usd_per_vcpu_hour=price,
            run_id=ref.run_id,
        )
        if whole_run and summary.complete:
            record.summary = summary.to_json()
            self.store.save(record)
        return summary
