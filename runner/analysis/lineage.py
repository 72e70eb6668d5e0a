"""The latest outcome of each logical index after retries: a parent run's summary folded with
the summaries of the retry runs made from it, oldest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from runner.analysis.cost import add as add_costs
from runner.analysis.summary import RuntimeStats, SpotInterruptions, Summary, runtime_stats
from runner.analysis.timeline import TaskTimes
from runner.aws.job_status import STATUSES
from runner.indices import format_pieces


@dataclass(frozen=True)
class RunPart:
    """One run of a lineage (the run itself, then each retry run, oldest first): the logical
    indices it ran, as (offset, size) pieces, and how it went on its own."""

    run_id: str
    pieces: Sequence[tuple[int, int]]
    summary: Summary
    created_at: str = ""

    @property
    def times(self) -> TaskTimes | None:
        return self.summary.times

    @property
    def indices(self) -> str:
        """The logical indices it ran, as ranges."""
        return format_pieces(self.pieces)


def fold_retries(parent: Summary, retries: Sequence[RunPart]) -> Summary:
    """Each index takes the outcome of the latest run that ran it.

    Counts stay over the parent's index space; vCPU-hours, cost and Spot interruptions add up
    over every run (each was paid for). Runtimes are each index's latest attempt's
    (``latest_runtime_stats``), as the report's, when every run's task times are at hand.
    """
    if not retries:
        return parent
    runtime = parent.runtime
    if parent.times is not None and all(retry.times is not None for retry in retries):
        own = RunPart(parent.run_id or parent.job_id, (), parent)
        runtime = latest_runtime_stats([own, *retries]) or parent.runtime
    failures = {f.index: f for f in parent.failures}
    counts = dict(parent.counts)
    vcpu_hours = parent.vcpu_hours
    cost = parent.cost
    spot = parent.spot
    for retry in retries:
        covered = {index for offset, size in retry.pieces for index in range(offset, offset + size)}
        was_failed = covered & failures.keys()
        counts["FAILED"] -= len(was_failed)
        counts["SUCCEEDED"] = max(0, counts["SUCCEEDED"] - (len(covered) - len(was_failed)))
        for index in was_failed:
            del failures[index]
        for name in STATUSES:
            counts[name] += retry.summary.counts.get(name, 0)
        failures.update((f.index, f) for f in retry.summary.failures)
        vcpu_hours += retry.summary.vcpu_hours
        if cost and retry.summary.cost:
            cost = add_costs(cost, retry.summary.cost)
        if spot and retry.summary.spot:
            spot = SpotInterruptions(
                spot.attempts + retry.summary.spot.attempts,
                spot.vcpu_hours + retry.summary.spot.vcpu_hours,
                spot.basis,
            )
    finished = counts["SUCCEEDED"] + counts["FAILED"]
    status = ("FAILED" if counts["FAILED"] else "SUCCEEDED") if finished >= parent.size else "RUNNING"
    return replace(
        parent,
        status=status,
        counts=counts,
        failures=sorted(failures.values(), key=lambda f: f.index or 0),
        vcpu_hours=vcpu_hours,
        cost=cost,
        spot=spot,
        runtime=runtime,
        folded_run_ids=[retry.run_id for retry in retries],
    )


def latest_runtime_stats(parts: Sequence[RunPart]) -> RuntimeStats | None:
    """Runtime percentiles over each logical index's latest attempt: the one rule for a lineage's
    runtimes, in its summary and its report alike."""
    return runtime_stats([seconds for seconds, _, _ in latest_attempts(parts).values()])


def latest_attempts(parts: Sequence[RunPart]) -> dict[int, tuple[float, str, str]]:
    """Each logical index's last attempt: (seconds, kind, run id); later runs win."""
    latest: dict[int, tuple[float, str, str]] = {}
    for part in parts:
        if part.times is None:
            continue
        for index, started, stopped, kind in part.times.latest():
            latest[index] = ((stopped - started) / 1000.0, kind, part.run_id)
    return latest
