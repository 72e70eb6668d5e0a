"""What the commands ask of runs: resolve an id, summarize with retries folded in, find a task, read
failure logs. It takes where to reach AWS explicitly and knows nothing of the CLI.

Reads never write, except where writing is the stated job: a summary of a run is saved in its
record (so it outlives AWS's memory of the jobs), and a complete run's task times and log tails
are cached beside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from infra.limits import MAX_DEPENDS_ON
from runner.analysis.cost import reprice, stack_prices
from runner.analysis.lineage import RunPart, fold_retries
from runner.analysis.summary import EVERY_ATTEMPT_BASIS, Failure, Summary, counts_line, summarize
from runner.aws.batch_jobs import JobsForgottenError, describe_all
from runner.aws.clients import AwsTarget
from runner.aws.job_logs import LogTail, read_log, stream_tail, task_job_id
from runner.aws.stack_outputs import StackOutputs
from runner.errors import AwsError, InvalidInputError, RunnerError, RunNotFoundError
from runner.indices import format_ranges
from runner.runs.results import SHOWN_ROWS, RowResults, list_latest, sweep_results
from runner.runs.rows import NOT_FINISHED, RowState, job_of_attempt, row_lines
from runner.runs.store import RunRecord, RunStore, is_run_id
from runner.runs.submit import recover_shards
from runner.runs.sweep import Sweep

# Lines of a failed task's log a report shows.
LOG_TAIL_LINES = 20
# Lines of a task's log read to find one row's.
ROW_LOG_LIMIT = 100_000


@dataclass(frozen=True)
class RowLog:
    """A row's lines, and which task attempt's log they come from."""

    row: int
    job_id: str
    attempt: int | None  # None: the task's latest
    stream: str
    lines: list[str]

    def to_json(self) -> dict[str, object]:
        return {
            "row": self.row,
            "jobId": self.job_id,
            "attempt": self.attempt,
            "logStreamName": self.stream,
            "lines": self.lines,
        }


@dataclass(frozen=True)
class StackTarget:
    """A deployed stack's outputs and where its AWS API answers."""

    outputs: StackOutputs
    target: AwsTarget


@dataclass(frozen=True)
class JobRef:
    """What to act on: a whole run's shards, one shard, one task, or an unrecorded AWS job.

    ``shards`` are (AWS job id, logical offset of its first task) pairs.
    """

    job_id: str
    outputs: StackOutputs
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
        record = self.record
        return record is not None and len(self.shards) == len(record.job_ids) and self.job_id == record.job_id

    @property
    def sweep(self) -> Sweep | None:
        """The sweep a whole run was submitted as (``submit --tasks``), if any."""
        record = self.record
        return Sweep.from_json(record.sweep) if record and record.sweep and self.whole_run else None

    @property
    def memory_mib(self) -> int:
        """MiB each task had (the run's override, else the stack's), for an OOM hint."""
        request = self.record.request if self.record else {}
        for requirement in (request.get("containerOverrides") or {}).get("resourceRequirements") or []:
            if requirement.get("type") == "MEMORY":
                return int(requirement["value"])
        return self.outputs.job_memory_mib


def keep_summary(current: RunRecord, summarized: RunRecord) -> None:
    """Write a summary into the record as it is now, with the shards the summary found by name
    (an interrupted submit's) if the record still lacks their ids."""
    current.summary = summarized.summary
    if len(current.shards) == len(summarized.shards):
        current.shards = [
            mine if mine.job_id else found
            for mine, found in zip(current.shards, summarized.shards, strict=True)
        ]
        if summarized.state == "submitted" and not current.missing_shards:
            current.state, current.error = "submitted", None


@dataclass(frozen=True)
class RunService:
    """Runs as the commands see them.

    ``target_for(region, endpoint_url)`` says how to reach where a run went (AWS, or the emulator
    with its own keys); ``locate(record)`` where the local stack that ran a local run answers now
    (this state folder's on whatever port it runs, or a teammate's), raising a one-line error when
    it answers nowhere; ``home()`` the stack a bare AWS job id (one with no run record) is looked
    up on.
    """

    store: RunStore
    target_for: Callable[[str, str | None], AwsTarget]
    locate: Callable[[RunRecord], str]
    home: Callable[[], StackTarget]

    def target_of(self, record: RunRecord) -> AwsTarget:
        """Where a run went (a record always names its region, whatever else its outputs lack);
        for a local run, where its emulator answers now."""
        endpoint = record.endpoint_url
        if endpoint is not None:
            with contextlib.suppress(RunnerError):  # answers nowhere: a call says it cannot be reached
                endpoint = self.locate(record)
        return self.target_for(record.outputs["region"], endpoint)

    def require_emulator(self, record: RunRecord) -> None:
        """A local run's jobs live in the local stack that ran them: say so at once if it is not running."""
        if record.endpoint_url:
            self.locate(record)

    def resolve(self, run_or_job_id: str) -> JobRef:
        """A run id, AWS job id or task id to what it names (the run's own record first).

        An interrupted submit's shards that AWS has but the record lacks are found by name; they
        are written down with the run's next summary (or by ``submit --resume``), not here.
        """
        record = self.store.find(run_or_job_id)
        if record is None:
            if is_run_id(run_or_job_id):
                raise RunNotFoundError(f"no run {run_or_job_id}; list runs with `runner runs`")
            home = self.home()
            return JobRef(run_or_job_id, home.outputs, home.target, None, ((run_or_job_id, 0),))
        if not record.summary:
            self.require_emulator(record)
        target = self.target_of(record)
        if record.missing_shards and record.state == "submitting":
            recover_shards(target.client("batch"), record)
        if not record.job_ids:
            raise RunNotFoundError(
                f"run {record.run_id} was never submitted ({record.error or record.state}); "
                f"`runner submit --resume {record.run_id}` submits it"
            )
        shards = tuple((s.job_id, s.offset) for s in record.shards if s.job_id)
        outputs = record.stack_outputs
        if is_run_id(run_or_job_id):
            return JobRef(record.job_id or "", outputs, target, record, shards)
        parent = run_or_job_id.split(":")[0]
        offset = next(offset for job_id, offset in shards if job_id == parent)
        return JobRef(run_or_job_id, outputs, target, record, ((run_or_job_id, offset),))

    def task(self, ref: JobRef, index: int | None) -> tuple[AwsTarget, str, StackOutputs]:
        """Where logical task ``index`` of a run ran last (retries first), as (target, job id, outputs).

        Without a whole run (a job id, or a task's own id) the index is the array index.
        """
        record = ref.record
        if record is None or not ref.whole_run:
            known = None
            if record is not None:
                known = next((s.size for s in record.shards if s.job_id == ref.job_id and s.is_array), None)
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
                return self.target_of(run), shard.task_job_id(index), run.stack_outputs
        ran = format_ranges(i for s in record.shards for i in range(s.offset, s.stop))
        raise InvalidInputError(f"run {record.run_id} did not run index {index} (it ran {ran})")

    def depends_on_jobs(self, run_or_job_id: str, home: StackTarget) -> list[str]:
        """The AWS jobs (a run's shards) a new run on ``home`` should wait for, checked there."""
        ref = self.resolve(run_or_job_id)
        if ref.target != home.target:
            raise InvalidInputError(
                f"--depends-on {run_or_job_id} is in another region or emulator than stack "
                f"'{home.outputs.stack}'; a job can only wait for jobs in its own queue's region"
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
        return self.fold(ref, self.summary_lineage(ref, refresh=refresh, all_attempts=all_attempts), price)

    def summary_lineage(
        self, ref: JobRef, *, refresh: bool = False, all_attempts: bool = False
    ) -> list[RunPart]:
        """The lineage a summary folds, with task times (cached beside complete runs) where they
        shape it: a retried run's runtimes are its latest attempts', a sweep's rows are read from
        how each task ended. A sweep's ``results`` can take these parts as they are."""
        record = ref.record if ref.whole_run else None
        with_times = record is not None and (bool(record.retry_run_ids) or record.sweep is not None)
        return self.lineage(ref, refresh=refresh, all_attempts=all_attempts, with_times=with_times)

    def lineage(
        self, ref: JobRef, *, refresh: bool = False, all_attempts: bool = False, with_times: bool = False
    ) -> list[RunPart]:
        """The run's own part, then each retry run's (oldest first).

        ``with_times`` also gives each summary its task times (cached beside a complete run's
        record; a run whose jobs AWS forgot before they were cached comes without).
        """
        options = {"refresh": refresh, "all_attempts": all_attempts, "with_times": with_times}
        own = self._own_summary(ref, **options)
        created = ref.record.created_at if ref.record else ""
        parts = [RunPart(ref.run_id or ref.job_id, ((0, own.size),), own, created)]
        if ref.whole_run and ref.record is not None:
            for retry in self.store.lineage(ref.record):
                if retry.job_ids:
                    pieces = tuple((s.offset, s.size) for s in retry.shards)
                    summary = self._own_summary(self.resolve(retry.run_id), **options)
                    parts.append(RunPart(retry.run_id, pieces, summary, retry.created_at))
        return parts

    def fold(self, ref: JobRef, parts: list[RunPart], price: float | None = None) -> Summary:
        """Each index's latest outcome over the lineage, repriced with ``--vcpu-hour-price``."""
        summary = fold_retries(parts[0].summary, parts[1:])
        if price is not None and summary.cost is not None:
            wasted = summary.spot.vcpu_hours if summary.spot else 0.0
            prices = stack_prices(ref.outputs.purchase_model, ref.outputs.cost_model, price)
            summary = replace(summary, cost=reprice(summary.cost, prices, wasted))
        return summary

    def log_tails(
        self, ref: JobRef, failures: Sequence[Failure], *, complete: bool, lines: int = LOG_TAIL_LINES
    ) -> dict[str, LogTail]:
        """The last lines of each failure's log (one call each), or why they cannot be read.

        A complete run's tails are cached beside its record, so its report outlives the logs.
        Once the endpoint cannot be reached, the others are not tried.
        """
        run_id = ref.run_id if ref.whole_run else None
        cached = self.store.cached_log_tails(run_id) if run_id else {}
        tails: dict[str, LogTail] = {}
        fresh: dict[str, LogTail] = {}
        unreachable: str | None = None
        for failure in failures:
            if failure.job_id in cached:
                tails[failure.job_id] = cached[failure.job_id]
                continue
            if unreachable or not failure.log_stream_name:
                reason = unreachable or "the task has no log stream"
                tails[failure.job_id] = LogTail([], f"log not read: {reason}")
                continue
            logs = ref.target.client("logs")
            try:
                tail = stream_tail(logs, ref.outputs.log_group_name, failure.log_stream_name, lines)
            except AwsError as err:  # the network or AWS: worth trying again next time
                unreachable = str(err)
                tails[failure.job_id] = LogTail([], f"log not read: {err}")
            except RunnerError as err:  # no such stream: a fact once the run is complete
                tails[failure.job_id] = fresh[failure.job_id] = LogTail([], str(err))
            else:
                tails[failure.job_id] = fresh[failure.job_id] = LogTail(tail)
        if run_id and complete and fresh:
            self.store.save_log_tails(run_id, {**cached, **fresh})
        return tails

    def root(self, ref: JobRef) -> JobRef:
        """The run a lineage started from: ``ref`` itself, or the run a retry was made from."""
        record = ref.record
        seen: set[str] = set()
        while record is not None and record.parent_run_id and record.run_id not in seen and ref.whole_run:
            seen.add(record.run_id)
            ref = self.resolve(record.parent_run_id)
            record = ref.record
        return ref

    def sweep(self, ref: JobRef) -> Sweep:
        """The sweep a run was submitted as (``submit --tasks``), or one line saying it was not."""
        sweep = ref.sweep
        if sweep is None:
            raise InvalidInputError(
                f"{ref.run_id or ref.job_id} is not a run submitted with --tasks; `runner results`, "
                "`runner collect` and `--row` read a table's rows"
            )
        return sweep

    def results(
        self,
        ref: JobRef,
        *,
        shown: int | None = SHOWN_ROWS,
        state: RowState | None = None,
        every_key: bool = False,
        parts: list[RunPart] | None = None,
    ) -> RowResults:
        """Every row's latest fate over the lineage (a retry's id reads its whole lineage).

        ``parts``: the lineage of ``ref`` with task times, when the caller has it already (a
        summary, a report); otherwise it is read. Calls: the summaries' (none for complete, cached
        runs), one ListObjectsV2 per 1,000 row records, and one read per row shown in detail.
        """
        root = self.root(ref)
        sweep = self.sweep(root)
        if parts is None or root is not ref:
            parts = self.lineage(root, with_times=True)
        return sweep_results(
            root.target.client("s3"),
            sweep,
            parts,
            shown=shown,
            state=state,
            every_key=every_key,
            code_of_job={
                job: (step.code or {}).get("digest")
                for step in self.code_lineage(root)
                for job in step.job_ids
            },
        )

    def code_lineage(self, ref: JobRef) -> list[RunRecord]:
        """The run's record, then its retries' (oldest first): what code each ran, what each changed."""
        if ref.record is None:
            return []
        return [ref.record, *self.store.lineage(ref.record)]

    def tasks_not_done(self, ref: JobRef) -> str:
        """The tasks (as ranges) that ``retry --skip-existing`` runs: those holding a sweep's rows
        not done, and those that failed after their last row (a host lost between the last upload
        and the exit): rerun, they skip every row and end the lineage's failure."""
        root = self.root(ref)
        parts = self.lineage(root, with_times=True)
        found = self.results(root, shown=0, parts=parts)
        failed = {f.index for f in self.fold(root, parts).failures if f.index is not None}
        tasks = sorted({found.sweep.task_of(fate.row) for fate in found.not_done} | failed)
        if not tasks:
            raise RunnerError(f"every row of run {found.run_id} is done; there is nothing to retry")
        if any(fate.reason == NOT_FINISHED for fate in found.not_done):
            raise RunnerError(
                f"run {found.run_id} is still going; wait for it (`runner watch {found.run_id}`) "
                "or name --indices"
            )
        return format_ranges(tasks)

    def row_log(self, ref: JobRef, row: int) -> RowLog:
        """A row's lines from the attempt that ran it last.

        That is its task's latest attempt when that attempt ran the row; otherwise (it skipped
        the row, or never reached it) the attempt its latest record names.
        """
        root = self.root(ref)
        sweep = self.sweep(root)
        if not 0 <= row < sweep.rows:
            raise InvalidInputError(f"--row {row} is out of range; use 0..{sweep.rows - 1}")
        target, job_id, outputs = self.task(root, sweep.task_of(row))
        candidates: list[tuple[AwsTarget, str, int | None]] = [(target, job_id, None)]
        record = list_latest(root.target.client("s3"), sweep, row).get(row)
        if record is not None:
            recorded_job, attempt = job_of_attempt(record.attempt)
            candidates.append((target, recorded_job, attempt))
            if root.target != target:
                candidates.append((root.target, recorded_job, attempt))
        problems = []
        for where, job, attempt in candidates:
            try:
                log = read_log(
                    where.client("batch"),
                    where.client("logs"),
                    job,
                    limit=ROW_LOG_LIMIT,
                    known_groups={outputs.job_definition_name: outputs.log_group_name},
                    attempt=attempt,
                )
            except RunnerError as err:
                problems.append(str(err))
                continue
            lines = row_lines((event.message for event in log.events), row)
            if lines is not None:
                return RowLog(row, log.job_id, attempt, log.stream, lines)
        said = f" ({problems[0]})" if problems else ""
        raise RunnerError(f"no log holds row {row} of run {sweep.run_id}: it has not run yet{said}")

    def _own_summary(self, ref: JobRef, *, refresh: bool, all_attempts: bool, with_times: bool) -> Summary:
        record = ref.record if ref.whole_run else None
        cached = Summary.from_json(record.summary) if record is not None and record.summary else None
        on_basis = cached is not None and (not all_attempts or cached.basis == EVERY_ATTEMPT_BASIS)
        if cached is not None and cached.complete and on_basis and not refresh:
            if not with_times:
                return cached
            times = self.store.cached_times(cached.run_id or "", cached.basis)
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
                stack_prices(ref.outputs.purchase_model, ref.outputs.cost_model),
                default_vcpus=ref.outputs.job_vcpus,
                run_id=ref.run_id,
                all_attempts=all_attempts or keep_basis,
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
            # Only a cache: a user who may read the run but not write its record still reads it.
            with contextlib.suppress(RunnerError):
                self.store.update(record.run_id, lambda current: keep_summary(current, record))
            if summary.complete and summary.times is not None:
                self.store.save_times(record.run_id, summary.basis, summary.times)
        return summary
