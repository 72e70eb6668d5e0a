"""What a run report shows, computed from summaries and task times: no AWS call, no drawing.

Every series is bounded whatever the run's size: concurrency is exact for small runs and a
time-weighted mean over fixed bins for large ones, the runtime histogram and the outcome strip
have a fixed number of bins, so a report of 1,000,000 tasks is as small as one of 100.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from runner.analysis.failure_classes import CLASSES, hint
from runner.analysis.lineage import RunPart, latest_attempts, latest_runtime_stats
from runner.analysis.summary import EVERY_ATTEMPT_BASIS, Failure, RuntimeStats, Summary
from runner.analysis.timeline import EARLIER_RECLAIMED, RECLAIMED, SUCCEEDED
from runner.aws.job_logs import LogTail
from runner.indices import format_ranges
from runner.runs.code_package import describe_code, short
from runner.runs.results import RowResults
from runner.runs.retry import describe_changes
from runner.runs.rows import DONE_STATES, job_of_attempt
from runner.runs.store import RunRecord

# Up to this many attempt starts and stops, the concurrency curve has every step; beyond, it is
# a time-weighted mean over intervals (at most TIME_BINS, about 4 events each) so that the gaps of
# milliseconds between one task and the next do not draw as a comb.
EXACT_EVENTS = 40
TIME_BINS = 400
INTERRUPTION_BINS = 120
RUNTIME_BINS = 40
OUTCOME_BINS = 200
SLOWEST_SHOWN = 10
LOGS_PER_CLASS, LOGS_SHOWN = 2, 6

# Latest outcome of a logical index across a run and its retries.
NOT_FINISHED, FIRST_TIME, ON_RETRY, STILL_FAILED = 0, 1, 2, 3
OUTCOME_NAMES = ("not finished", "succeeded", "succeeded on retry", "failed")


@dataclass(frozen=True)
class Concurrency:
    """Tasks running over time: ``running[i]`` from ``seconds[i]`` to ``seconds[i + 1]``."""

    seconds: np.ndarray
    running: np.ndarray
    exact: bool
    peak: int
    interruptions: np.ndarray  # seconds (since the first start) at which Spot reclaimed an attempt
    run_starts: list[tuple[str, float]]  # (run id, its first start) of each retry run


@dataclass(frozen=True)
class Slowest:
    index: int
    seconds: float
    outcome: str
    run_id: str


@dataclass(frozen=True)
class FailureClass:
    """Tasks that failed with a class in any run of the lineage: still failed, or recovered."""

    name: str
    failed: int
    still_failed: int
    ranges: str  # the indices that failed with this class, recovered ones included
    hint: str

    @property
    def recovered(self) -> int:
        return self.failed - self.still_failed


@dataclass(frozen=True)
class FailureLog:
    """A failure shown with the last lines of its log (or why they could not be read)."""

    failure: Failure
    tail: LogTail


@dataclass(frozen=True)
class Report:
    """Everything the report's template and charts need."""

    title: str
    run_id: str
    job_name: str
    stack: str
    where: str
    summary: Summary  # retries folded in: each index's latest outcome
    wall_seconds: float | None
    started_ms: int | None
    concurrency: Concurrency | None
    runtimes: np.ndarray  # seconds of each logical index's latest attempt
    runtime: RuntimeStats | None
    slowest: list[Slowest]
    failure_classes: list[FailureClass]
    log_tails: list[FailureLog]
    outcomes: np.ndarray | None  # per logical index, one of the outcome codes; None without times
    parts: list[RunPart]  # the run, then its retry runs
    notes: list[str] = field(default_factory=list)
    rows: RowResults | None = None  # a sweep's rows: the outcome strip is then per row
    outcome_unit: str = "logical index"
    code: list[CodeStep] = field(default_factory=list)  # what each run of the lineage ran

    def done_by_code(self) -> list[tuple[str, int, str]]:
        """(short code digest, rows, row ranges): which code made the done rows."""
        if self.rows is None:
            return []
        found = self.rows.done_by_code()
        return [(short(code), len(rows), format_ranges(rows, limit=12)) for code, rows in found.items()]

    @property
    def has_retries(self) -> bool:
        return len(self.parts) > 1

    def outcome_ranges(self) -> list[tuple[str, int, str]]:
        """(outcome, tasks, index ranges) for each outcome some index has."""
        if self.outcomes is None:
            return []
        rows = []
        for code, name in enumerate(OUTCOME_NAMES):
            indices = np.flatnonzero(self.outcomes == code)
            if len(indices):
                rows.append((name, len(indices), format_ranges(indices.tolist(), limit=12)))
        return rows


@dataclass(frozen=True)
class CodeStep:
    """A run of the lineage: the code it ran (``--code``: digest, files, commit) and what it changed."""

    run_id: str
    retry: bool
    code: str
    changes: list[str]


def code_steps(lineage: Sequence[RunRecord]) -> list[CodeStep]:
    """Each run's code and changes; empty when no run of the lineage shipped code or changed any."""
    if not any(record.code or record.changes for record in lineage):
        return []
    return [
        CodeStep(r.run_id, r.parent_run_id is not None, describe_code(r.code), describe_changes(r.changes))
        for r in lineage
    ]


def concurrency(parts: Sequence[RunPart]) -> Concurrency | None:
    """How many attempts were running at each moment, over every run of the lineage."""
    with_times = [p for p in parts if p.times is not None and len(p.times)]
    if not with_times:
        return None
    started = np.concatenate([np.asarray(p.times.started, dtype=np.int64) for p in with_times])  # type: ignore[union-attr]
    stopped = np.concatenate([np.asarray(p.times.stopped, dtype=np.int64) for p in with_times])  # type: ignore[union-attr]
    kinds = "".join("".join(p.times.kind) for p in with_times)  # type: ignore[union-attr]
    origin = int(started.min())
    times = np.concatenate([started, stopped]) - origin
    steps = np.concatenate([np.ones(len(started), dtype=np.int64), -np.ones(len(stopped), dtype=np.int64)])
    order = np.lexsort((steps, times))  # at equal times, stops before starts: no false peak
    times, steps = times[order] / 1000.0, steps[order]
    level = np.cumsum(steps)
    peak = int(level.max())
    end = float(times[-1])
    if len(times) <= EXACT_EVENTS or end == 0:
        seconds = np.concatenate([[0.0], times])
        running = np.concatenate([[0], level]).astype(float)
        exact = True
    else:
        # Time-weighted mean per bin: the area under the step curve is piecewise linear.
        widths = np.diff(times)
        area = np.concatenate([[0.0], np.cumsum(level[:-1] * widths)])
        seconds = np.linspace(0.0, end, min(TIME_BINS, len(times) // 4) + 1)
        running = np.diff(np.interp(seconds, times, area)) / np.diff(seconds)
        running = np.concatenate([running, [0.0]])
        exact = False
    reclaimed = np.frombuffer(kinds.encode(), dtype=np.uint8)
    marks = np.isin(reclaimed, np.frombuffer((RECLAIMED + EARLIER_RECLAIMED).encode(), dtype=np.uint8))
    interruptions = (stopped[marks] - origin) / 1000.0
    run_starts = [(p.run_id, (min(p.times.started) - origin) / 1000.0) for p in with_times[1:]]  # type: ignore[union-attr]
    return Concurrency(seconds, running, exact, peak, interruptions, run_starts)


def outcomes(latest: Mapping[int, tuple[float, str, str]], first_run_id: str, size: int) -> np.ndarray:
    """Per logical index, from each index's last attempt: succeeded (in the run itself),
    succeeded on a retry, failed, or not finished."""
    result = np.full(size, NOT_FINISHED, dtype=np.int8)
    for index, (_, kind, run_id) in latest.items():
        if 0 <= index < size:
            succeeded = FIRST_TIME if run_id == first_run_id else ON_RETRY
            result[index] = succeeded if kind == SUCCEEDED else STILL_FAILED
    return result


def row_outcomes(rows: RowResults, first_job_ids: Sequence[str]) -> np.ndarray:
    """Per row of a sweep, from its fate: done (by the run itself or a retry), not done, or not run."""
    first = {job_id.split(":")[0] for job_id in first_job_ids}
    result = np.full(rows.sweep.rows, NOT_FINISHED, dtype=np.int8)
    for fate in rows.fates:
        if fate.state in DONE_STATES and fate.record is not None:
            job = job_of_attempt(fate.record.attempt)[0].split(":")[0]
            result[fate.row] = FIRST_TIME if job in first else ON_RETRY
        elif fate.state in ("failed", "killed"):
            result[fate.row] = STILL_FAILED
    return result


def all_failures(parts: Sequence[RunPart], folded: Summary) -> list[Failure]:
    """Failures still standing first, then those of each run a retry made up for (by job id)."""
    seen: dict[str, Failure] = {f.job_id: f for f in folded.failures}
    for part in parts:
        for failure in part.summary.failures:
            seen.setdefault(failure.job_id, failure)
    return list(seen.values())


def failure_classes(
    parts: Sequence[RunPart], folded: Summary, run: str, memory_mib: int | None
) -> list[FailureClass]:
    """Per class, the indices that failed with it in any run, and how many still stand."""
    ever: dict[str, set[int]] = {}
    for failure in all_failures(parts, folded):
        ever.setdefault(failure.failure_class, set()).add(failure.index or 0)
    standing = folded.failure_classes
    rows = []
    for name in CLASSES:
        if name not in ever:
            continue
        still = standing.get(name, [])
        advice = (
            hint(name, run, first_index=still[0], memory_mib=memory_mib)
            if still
            else "every one succeeded on a retry: nothing to do"
        )
        rows.append(
            FailureClass(name, len(ever[name]), len(still), format_ranges(ever[name], limit=20), advice)
        )
    return rows


def failures_to_read(parts: Sequence[RunPart], folded: Summary) -> list[Failure]:
    """The first failures of each class whose log a report shows: a few, whatever the run's size."""
    chosen: list[Failure] = []
    per_class: dict[str, int] = {}
    for failure in all_failures(parts, folded):
        if failure.log_stream_name is None or per_class.get(failure.failure_class, 0) >= LOGS_PER_CLASS:
            continue
        per_class[failure.failure_class] = per_class.get(failure.failure_class, 0) + 1
        chosen.append(failure)
        if len(chosen) == LOGS_SHOWN:
            break
    return chosen


def build_report(
    parts: Sequence[RunPart],
    folded: Summary,
    *,
    stack: str,
    where: str,
    log_tails: Mapping[str, LogTail],
    memory_mib: int | None = None,
    rows: RowResults | None = None,
    first_job_ids: Sequence[str] = (),
    lineage: Sequence[RunRecord] = (),
) -> Report:
    """The report of a run (``parts[0]``) and its retry runs, from their summaries and times; a
    sweep's ``rows`` make its outcome strip one of rows."""
    root = parts[0]
    curve = concurrency(parts)
    latest = latest_attempts(parts)
    runtimes = np.fromiter((seconds for seconds, _, _ in latest.values()), dtype=float, count=len(latest))
    stats = latest_runtime_stats(parts) or folded.runtime
    top = sorted(latest.items(), key=lambda item: item[1][0], reverse=True)[:SLOWEST_SHOWN]
    slowest = [
        Slowest(index, seconds, "succeeded" if kind == SUCCEEDED else "failed", run_id)
        for index, (seconds, kind, run_id) in top
    ]
    starts = [min(p.times.started) for p in parts if p.times and len(p.times)]
    stops = [max(p.times.stopped) for p in parts if p.times and len(p.times)]
    notes = []
    if any(p.times is None for p in parts):
        missing = ", ".join(p.run_id for p in parts if p.times is None)
        notes.append(
            f"Task times of {missing} are not available (AWS no longer has the jobs and they were "
            "not cached): the charts leave them out."
        )
    if not folded.complete:
        notes.append("The run is still in progress: the report shows the tasks finished so far.")
    if folded.spot and folded.spot.basis != EVERY_ATTEMPT_BASIS:
        notes.append(
            "Spot interruptions are counted over the attempts of failed tasks; "
            "`runner report --attempts` counts every attempt of every task."
        )
    return Report(
        title=f"Run {root.run_id}",
        run_id=root.run_id,
        job_name=folded.job_name,
        stack=stack,
        where=where,
        summary=folded,
        wall_seconds=(max(stops) - min(starts)) / 1000.0 if starts else None,
        started_ms=min(starts) if starts else None,
        concurrency=curve,
        runtimes=runtimes,
        runtime=stats,
        slowest=slowest,
        failure_classes=failure_classes(parts, folded, root.run_id, memory_mib),
        log_tails=[
            FailureLog(f, log_tails[f.job_id])
            for f in failures_to_read(parts, folded)
            if f.job_id in log_tails
        ],
        outcomes=(
            row_outcomes(rows, first_job_ids)
            if rows is not None
            else None
            if root.times is None
            else outcomes(latest, root.run_id, folded.size)
        ),
        parts=list(parts),
        notes=notes,
        rows=rows,
        outcome_unit="row" if rows is not None else "logical index",
        code=code_steps(lineage),
    )
