"""A sweep's row, from the table to its manifest: where each row's fate is written, how it is named,
and how every row's state is read back, by name, without a call per row.

Under ``s3://<bucket>/<prefix><root run id>/``:

- ``tasks/piece-NNNNN.jsonl``: the table, at most 1,000 rows a piece.
- ``out/<row>/<attempt>/<path>``: what one attempt of a row wrote. Each attempt has a folder of its
  own, so what a killed attempt left never mixes with a later attempt's files.
- ``rows/<row>/<stamp>-<attempt>.<state>.json``: one record per attempt of a row that ended, written
  last (``stamp``: milliseconds since the epoch when written). A row's **latest record** (largest
  stamp) is its fate. ``succeeded`` and ``no-outputs`` records are the row's **manifest**: every
  output with its size and SHA-256, written only after every output is uploaded. A row is done only
  when its latest record is a manifest.

The launcher (``runner/task/launcher.py``, which imports nothing of the project) writes these names;
it mirrors ``record_name`` and ``latest_record`` and a test holds the two to one contract.

What a record cannot say is inferred from how the row's task ended: a task killed (Spot, out of
memory, timeout, terminate) by SIGKILL leaves no record for the row it was running. In a task whose
latest attempt failed, the first row with no record since that attempt started is ``killed`` (when
the task was killed) and the rows after it are ``not-run``. Listing ``rows/`` (1,000 keys a call)
gives every row's state; only the rows shown in detail are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

RowState = Literal["succeeded", "no-outputs", "failed", "killed", "not-run"]
ROW_STATES: tuple[RowState, ...] = get_args(RowState)
RecordedState = Literal["succeeded", "no-outputs", "failed", "killed"]
RECORDED_STATES: tuple[RecordedState, ...] = get_args(RecordedState)
DONE_STATES: tuple[RowState, ...] = ("succeeded", "no-outputs")
STATE_TITLES: dict[RowState, str] = {
    "succeeded": "succeeded with outputs",
    "no-outputs": "succeeded without outputs",
    "failed": "failed",
    "killed": "killed",
    "not-run": "not run",
}
RECORD_VERSION = 1
ROWS_FOLDER = "rows/"
OUTPUTS_FOLDER = "out/"
TABLE_FOLDER = "tasks/"
# What a record keeps of its output: its last lines, bounded both ways (the launcher mirrors it).
TAIL_LINES, TAIL_BYTES = 20, 4096
NOT_FINISHED = "its task has not finished"

_RECORD = re.compile(
    r"^(?P<row>\d+)/(?P<stamp>\d{13})-(?P<attempt>[A-Za-z0-9._-]+)\.(?P<state>"
    + "|".join(re.escape(s) for s in RECORDED_STATES)
    + r")\.json$"
)


@dataclass(frozen=True)
class RecordKey:
    """One record of a row, as its key names it (no read needed)."""

    row: int
    stamp: int  # ms since the epoch when it was written
    attempt: str  # which attempt of which task: <job id>-a<attempt> (':' as '_')
    state: RecordedState

    @property
    def name(self) -> str:
        return record_name(self.row, self.stamp, self.attempt, self.state)

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES


def attempt_name(job_id: str, attempt: int | str) -> str:
    """How an attempt of a task is named in keys: S3-safe and unique per task attempt."""
    return f"{job_id.replace(':', '_')}-a{attempt}"


def job_of_attempt(name: str) -> tuple[str, int]:
    """The job id and attempt number an attempt's name holds (``attempt_name`` read back)."""
    job, _, attempt = name.rpartition("-a")
    return job.replace("_", ":"), int(attempt) if attempt.isdigit() else 1


def record_name(row: int, stamp: int, attempt: str, state: str) -> str:
    """A record's key relative to ``rows/``."""
    return f"{row}/{stamp:013d}-{attempt}.{state}.json"


def parse_record(relative: str) -> RecordKey | None:
    """The record a key (relative to ``rows/``) names, or None for anything else."""
    found = _RECORD.match(relative)
    if found is None:
        return None
    return RecordKey(
        int(found["row"]),
        int(found["stamp"]),
        found["attempt"],
        found["state"],  # type: ignore[arg-type]  # the pattern admits only recorded states
    )


def latest_records(keys: Iterable[RecordKey]) -> dict[int, RecordKey]:
    """Each row's latest record: the largest stamp wins; at equal stamps, not done wins."""
    latest: dict[int, RecordKey] = {}
    for key in keys:
        seen = latest.get(key.row)
        if seen is None or (key.stamp, not key.done) > (seen.stamp, not seen.done):
            latest[key.row] = key
    return latest


@dataclass(frozen=True)
class TaskEnd:
    """How a task's latest attempt ended, as far as its rows are concerned."""

    succeeded: bool
    started_ms: int | None  # when that attempt started; None if it never did (or is not known)
    reason: str = ""  # why it failed, in words
    killed: bool = False  # stopped from outside (Spot, out of memory, timeout, terminate)


@dataclass(frozen=True)
class RowFate:
    """A row's state and, where it did not succeed, why (what the listing alone can tell)."""

    row: int
    state: RowState
    record: RecordKey | None = None  # its latest record, if it has one
    reason: str = ""  # why, in words, when the listing tells (a killed row: its task's reason)
    inferred: bool = False  # from how its task ended, not from a record of this attempt


@dataclass(frozen=True)
class RowDetail:
    """A row's fate with what its record says: the row shown in ``results``."""

    row: int
    state: RowState
    key: str
    exit_code: int | None
    reason: str
    last_line: str
    seconds: float | None = None
    run_id: str | None = None
    job_id: str | None = None
    attempt: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "key": self.key,
            "state": self.state,
            "exitCode": self.exit_code,
            "reason": self.reason,
            "lastLine": self.last_line,
            "seconds": self.seconds,
            "runId": self.run_id,
            "jobId": self.job_id,
            "attempt": self.attempt,
        }


def row_fates(
    rows: int, per_task: int, latest: Mapping[int, RecordKey], tasks: Mapping[int, TaskEnd]
) -> list[RowFate]:
    """Every row's fate, in row order, from its latest record and how its task ended.

    A row whose latest record is older than its task's latest attempt and not a manifest was not
    settled by that attempt: in a failed attempt the first such row was running when the task
    ended (``killed`` if the task was killed) and the rest never ran. A done row stays done: its
    manifest names complete outputs, whichever attempt wrote them.
    """
    fates: list[RowFate] = []
    for task in range(-(-rows // per_task)):
        end = tasks.get(task)
        started = end.started_ms if end is not None and end.started_ms is not None else -1
        stopped_here = False
        for row in range(task * per_task, min((task + 1) * per_task, rows)):
            record = latest.get(row)
            if record is not None and (record.done or record.stamp >= started):
                killed_by = record.state == "killed" and end is not None and end.killed
                fates.append(RowFate(row, record.state, record, f"killed: {end.reason}" if killed_by else ""))
                stopped_here = stopped_here or record.state == "killed"
                continue
            if end is None:
                reason = NOT_FINISHED
            elif end.succeeded:
                reason = "its task ended without a record of it"
            elif end.killed and end.started_ms is not None and not stopped_here:
                fates.append(RowFate(row, "killed", record, f"killed: {end.reason}", inferred=True))
                stopped_here = True
                continue
            else:
                reason = f"its task stopped before it ran ({end.reason})"
            fates.append(RowFate(row, "not-run", record, reason, inferred=True))
    return fates


LOG_MARK = "[batch-stacks] row "


def row_lines(messages: Iterable[str], row: int) -> list[str] | None:
    """A row's lines in its task's log: from its "running" line to its fate's line (or the log's
    end, for a row killed with its task); None when that log never ran the row."""
    start, mine = f"{LOG_MARK}{row}: running", f"{LOG_MARK}{row}: "
    found: list[str] | None = None
    reading: list[str] | None = None
    for message in messages:
        if message.startswith(start):
            found = reading = [message]  # a later run of the row in the same log wins
        elif reading is not None:
            if not message.startswith("[batch-stacks] "):
                reading.append(message)
                continue
            if message.startswith(mine):
                reading.append(message)
            reading = None
    return found


def exit_reason(code: int) -> str:
    """An exit code in words, as a shell and Docker report them."""
    if code == 0:
        return "exited 0"
    if code == 126:
        return "exit code 126: the command is not executable"
    if code == 127:
        return "exit code 127: command not found"
    if code > 128:
        return f"exit code {code}: killed by signal {code - 128}"
    return f"exit code {code}"


def detail(fate: RowFate, record: Mapping[str, Any] | None, key: str) -> RowDetail:
    """A row's fate with its record's content (``record``: the parsed JSON, None if not read)."""
    data = (record or {}) if not fate.inferred else {}
    tail = data.get("tail") or []
    said = str(data.get("reason") or "")
    reason = fate.reason or said
    if fate.state == "killed":  # the task's reason, and when the row was stopped if it said
        reason = "; ".join(filter(None, (fate.reason or "killed", said)))
    return RowDetail(
        row=fate.row,
        state=fate.state,
        key=str(data.get("key", key)),
        exit_code=data.get("exitCode"),
        reason=reason,
        last_line=str(tail[-1]) if tail else "",
        seconds=data.get("seconds"),
        run_id=data.get("runId"),
        job_id=data.get("jobId"),
        attempt=data.get("attempt"),
    )
