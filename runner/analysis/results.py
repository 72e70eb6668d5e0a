"""A sweep's results row by row: whether each row's task succeeded, and what it left in S3.

Rows fall in four groups: succeeded with outputs, succeeded without outputs, failed, and not run
(yet). A row's outcome is its task's latest attempt over the run and its retries; its outputs are
whatever is under its folder, whichever attempt wrote them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.analysis.lineage import RunPart, latest_attempts
from runner.analysis.timeline import SUCCEEDED
from runner.indices import format_ranges

GROUPS = ("succeeded with outputs", "succeeded without outputs", "failed", "not run")


@dataclass(frozen=True)
class RowResults:
    """Each group's rows, and the outputs found."""

    run_id: str
    rows: int
    per_task: int
    groups: dict[str, list[int]]
    output_files: int
    output_bytes: int
    outputs_uri: str
    failed_with_outputs: int = 0  # rows of failed tasks that succeeded before the task failed

    @property
    def complete(self) -> bool:
        return not self.groups["failed"] and not self.groups["not run"]

    def to_json(self) -> dict[str, Any]:
        """The ``runner results --json`` shape."""
        return {
            "runId": self.run_id,
            "rows": self.rows,
            "perTask": self.per_task,
            "outputsUri": self.outputs_uri,
            "outputFiles": self.output_files,
            "outputBytes": self.output_bytes,
            "failedWithOutputs": self.failed_with_outputs,
            "groups": {
                name: {"rows": len(rows), "ranges": format_ranges(rows)} for name, rows in self.groups.items()
            },
        }


def task_outcomes(parts: Sequence[RunPart]) -> dict[int, bool]:
    """Each finished task's latest outcome over the lineage (later runs win): True when it succeeded.

    From each run's task times; a complete run whose times are gone (AWS forgot its jobs before
    they were cached) counts every task it ran as succeeded but its failures.
    """
    outcomes: dict[int, bool] = {}
    for part in parts:
        if part.times is not None:
            outcomes.update(
                (index, kind == SUCCEEDED) for index, (_, kind, _) in latest_attempts([part]).items()
            )
        elif part.summary.complete:
            failed = {failure.index for failure in part.summary.failures}
            for offset, size in part.pieces:
                outcomes.update((index, index not in failed) for index in range(offset, offset + size))
    return outcomes


def row_results(
    run_id: str,
    rows: int,
    per_task: int,
    outputs_uri: str,
    outcomes: Mapping[int, bool],
    outputs: Mapping[int, tuple[int, int]],
) -> RowResults:
    """Rows by group, from task outcomes (by task index) and outputs (files, bytes) by row."""
    groups: dict[str, list[int]] = {name: [] for name in GROUPS}
    with_outputs, without, failed, not_run = (groups[name] for name in GROUPS)
    for row in range(rows):
        outcome = outcomes.get(row // per_task)
        if outcome is None:
            not_run.append(row)
        elif not outcome:
            failed.append(row)
        elif row in outputs:
            with_outputs.append(row)
        else:
            without.append(row)
    files = sum(count for count, _ in outputs.values())
    size = sum(total for _, total in outputs.values())
    failed_with = sum(1 for row in failed if row in outputs)
    return RowResults(run_id, rows, per_task, groups, files, size, outputs_uri, failed_with)
