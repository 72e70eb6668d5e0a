"""``runner results``: every row of a sweep by its fate over the whole lineage, the rows that did not
succeed by name and reason.

Calls: one ListObjectsV2 per 1,000 row records, then one read per row shown in detail (its record,
or the table's piece that names a row without one), on top of the lineage's summaries (none for a
complete run whose summary is cached).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.analysis.failure_classes import KILL_CLASSES, KILLED_AS
from runner.analysis.lineage import RunPart
from runner.analysis.summary import Failure
from runner.analysis.timeline import SUCCEEDED
from runner.aws.data_store import PIECE_NAME, list_keys, read_json, read_json_lines
from runner.indices import format_ranges
from runner.runs.rows import (
    DONE_STATES,
    ROW_STATES,
    RecordKey,
    RowDetail,
    RowFate,
    RowState,
    TaskEnd,
    detail,
    job_of_attempt,
    latest_records,
    parse_record,
    row_fates,
)
from runner.runs.sweep import Sweep
from runner.runs.table import env_text

# Rows `results` shows in detail unless asked for more (each is one read).
SHOWN_ROWS = 50


def task_reason(failure: Failure) -> str:
    """Why a task's latest attempt failed, in words."""
    said = failure.reason or failure.status_reason or ""
    named = KILLED_AS.get(failure.failure_class)
    if named:
        return f"{named} ({said})" if said else named
    code = f"exit code {failure.exit_code}" if failure.exit_code is not None else ""
    return ", ".join(filter(None, (failure.status_reason, failure.reason, code))) or "no reason reported"


def task_ends(parts: Sequence[RunPart]) -> dict[int, TaskEnd]:
    """How each task's latest attempt over the lineage ended; a task still going has none.

    A run that covers a task takes over from the runs before it, finished or not.
    """
    ends: dict[int, TaskEnd] = {}
    for part in parts:
        failures = {failure.index or 0: failure for failure in part.summary.failures}
        for offset, size in part.pieces:
            for index in range(offset, offset + size):
                ends.pop(index, None)
        started: dict[int, tuple[int, bool]] = {}
        if part.times is not None:
            started = {index: (start, kind == SUCCEEDED) for index, start, _, kind in part.times.latest()}
        elif part.summary.complete:  # AWS forgot its jobs before their times were cached
            started = {i: (-1, i not in failures) for o, n in part.pieces for i in range(o, o + n)}
        for index, (start, succeeded) in started.items():
            failure = failures.get(index)
            if succeeded or failure is None:
                ends[index] = TaskEnd(True, start if start >= 0 else None)
            else:
                ends[index] = _failed(failure, start if start >= 0 else None)
        for index, failure in failures.items():  # failed without ever starting (cancelled, dependency)
            if index not in started:
                ends[index] = _failed(failure, None)
    return ends


def _failed(failure: Failure, started: int | None) -> TaskEnd:
    killed = failure.failure_class in KILL_CLASSES or (failure.exit_code or 0) > 128
    return TaskEnd(False, started, task_reason(failure), killed)


@dataclass(frozen=True)
class RowResults:
    """Every row's fate, with the rows that did not succeed read in detail (up to a limit)."""

    sweep: Sweep
    fates: list[RowFate]
    details: list[RowDetail]  # of the rows not done, in row order, as many as were asked for
    keys: dict[int, str] = field(default_factory=dict)  # row names read for --state and --json
    # The code digest each job of the lineage ran (None: the image's), to tell which code made a row.
    code_of_job: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.sweep.run_id

    @property
    def counts(self) -> dict[RowState, int]:
        found: dict[RowState, int] = dict.fromkeys(ROW_STATES, 0)
        for fate in self.fates:
            found[fate.state] += 1
        return found

    @property
    def not_done(self) -> list[RowFate]:
        return [fate for fate in self.fates if fate.state not in DONE_STATES]

    @property
    def complete(self) -> bool:
        """Every row succeeded (with or without outputs)."""
        return not self.not_done

    def done_by_code(self) -> dict[str | None, list[int]]:
        """The done rows by the code digest of the run that made them (None: the image's); empty
        when no run of the lineage shipped code."""
        if not any(self.code_of_job.values()):
            return {}
        found: dict[str | None, list[int]] = {}
        for fate in self.fates:
            if fate.record is not None and fate.state in DONE_STATES:
                job = job_of_attempt(fate.record.attempt)[0].split(":")[0]
                found.setdefault(self.code_of_job.get(job), []).append(fate.row)
        return found

    def done_by_code_json(self) -> dict[str, str]:
        return {code or "image": format_ranges(rows) for code, rows in self.done_by_code().items()}

    def rows_in(self, state: RowState) -> list[int]:
        return [fate.row for fate in self.fates if fate.state == state]

    def counts_json(self) -> dict[str, Any]:
        return {
            state: {"rows": len(rows), "ranges": format_ranges(rows)}
            for state in ROW_STATES
            for rows in [self.rows_in(state)]
        }

    def to_json(self) -> dict[str, Any]:
        """The ``runner results --json`` shape: counts, then every row's entry."""
        shown = {item.row: item for item in self.details}
        entries = []
        for fate in self.fates:
            item = shown.get(fate.row)
            if item is not None:
                entries.append(item.to_json())
                continue
            entry: dict[str, Any] = {"row": fate.row, "key": self.keys.get(fate.row), "state": fate.state}
            if fate.record is not None and fate.state in DONE_STATES:
                entry["manifest"] = f"{self.sweep.rows_uri}{fate.record.name}"
            entries.append(entry)
        return {
            "runId": self.run_id,
            "rows": self.sweep.rows,
            "perTask": self.sweep.per_task,
            "keyColumn": self.sweep.key_column,
            "rowsUri": self.sweep.rows_uri,
            "outputsUri": self.sweep.outputs_uri,
            "complete": self.complete,
            "counts": self.counts_json(),
            "doneByCode": {
                code or "image": format_ranges(rows) for code, rows in self.done_by_code().items()
            },
            "entries": entries,
        }


def list_latest(s3: Any, sweep: Sweep, row: int | None = None) -> dict[int, RecordKey]:
    """Each row's latest record (of ``row`` only, when given), from one listing, 1,000 keys a call."""
    under = "" if row is None else f"{row}/"
    listed = list_keys(s3, sweep.data.bucket, sweep.rows_key + under)
    records = (parse_record(under + relative) for relative, _ in listed)
    return latest_records(record for record in records if record is not None)


def list_fates(s3: Any, sweep: Sweep, tasks: Mapping[int, TaskEnd]) -> list[RowFate]:
    """Every row's fate: one listing of the row records and how each task ended."""
    return row_fates(sweep.rows, sweep.per_task, list_latest(s3, sweep), tasks)


def row_keys(s3: Any, sweep: Sweep, rows: Iterable[int]) -> dict[int, str]:
    """Each row's name (its key column's value), reading each table piece that holds one once."""
    wanted = sorted(set(rows))
    names: dict[int, str] = {}
    piece_rows = sweep.piece_rows
    for piece in sorted({row // piece_rows for row in wanted}):
        lines = read_json_lines(s3, sweep.data.bucket, sweep.tasks_key + PIECE_NAME.format(piece))
        for row in wanted:
            if row // piece_rows == piece and row - piece * piece_rows < len(lines):
                names[row] = env_text(lines[row - piece * piece_rows].get(sweep.key_column, ""))
    return names


def read_record(s3: Any, sweep: Sweep, record: RecordKey) -> dict[str, Any]:
    """A row's record (a manifest, or a failed or killed row's fate)."""
    data = read_json(s3, sweep.data.bucket, sweep.rows_key + record.name)
    return data if isinstance(data, dict) else {}


def read_details(
    s3: Any, sweep: Sweep, fates: Sequence[RowFate], known: Mapping[int, str] | None = None
) -> list[RowDetail]:
    """The rows' fates with what their records say; a row without a record is named from the table
    (``known`` names already read)."""
    from_records = {f.row: read_record(s3, sweep, f.record) for f in fates if f.record and not f.inferred}
    names = dict(known or {})
    names.update(
        row_keys(s3, sweep, (f.row for f in fates if f.row not in from_records and f.row not in names))
    )
    return [detail(f, from_records.get(f.row), names.get(f.row, "")) for f in fates]


def sweep_results(
    s3: Any,
    sweep: Sweep,
    parts: Sequence[RunPart],
    *,
    shown: int | None = SHOWN_ROWS,
    state: RowState | None = None,
    every_key: bool = False,
    code_of_job: Mapping[str, str | None] | None = None,
) -> RowResults:
    """Every row's fate over the lineage ``parts``, and the first ``shown`` rows not done in detail.

    ``state`` names that state's rows (reading the pieces that hold them); ``every_key`` names
    every row (each piece once) and reads every row not done.
    """
    fates = list_fates(s3, sweep, task_ends(parts))
    not_done = [fate for fate in fates if fate.state not in DONE_STATES]
    if state is not None:
        keys = row_keys(s3, sweep, (fate.row for fate in fates if fate.state == state))
        return RowResults(sweep, fates, [], keys, code_of_job or {})
    chosen = not_done if every_key or shown is None else not_done[:shown]
    keys = row_keys(s3, sweep, range(sweep.rows)) if every_key else {}
    return RowResults(sweep, fates, read_details(s3, sweep, chosen, keys), keys, code_of_job or {})
