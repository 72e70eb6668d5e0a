"""When each task ran: the start and stop of every attempt the summary saw, by logical index.

The latest attempt of every finished task comes from the ListJobs pages the summary already reads
(they carry ``startedAt`` and ``stoppedAt``); earlier attempts come from the tasks DescribeJobs
described (failed ones, or every task with ``--attempts``). Nothing here makes a call.

Stored column-wise so a run of 1,000,000 tasks stays a few lists of integers, and cached next to
the run record so a run's report outlives AWS's memory of its jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.analysis.failure_classes import is_spot_interruption

# What each attempt was. Upper case: the task's latest attempt; lower case: an earlier one.
SUCCEEDED, FAILED, RECLAIMED = "S", "F", "R"
EARLIER_FAILED, EARLIER_RECLAIMED = "f", "r"
KINDS = SUCCEEDED + FAILED + RECLAIMED + EARLIER_FAILED + EARLIER_RECLAIMED


@dataclass
class TaskTimes:
    """Attempts as parallel columns: logical index, start and stop (epoch ms), and kind."""

    index: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)

    def add(self, index: int, started: int, stopped: int, kind: str) -> None:
        self.index.append(index)
        self.started.append(started)
        self.stopped.append(max(started, stopped))
        self.kind.append(kind)

    def add_latest(
        self, offset: int, jobs: Iterable[Mapping[str, Any]], index_of: Callable[..., int | None]
    ) -> None:
        """The latest attempt of each listed (or described) task that started and stopped, at
        logical index ``offset + index_of(job)``. The summary's hot loop over every task: kept lean."""
        index, started_at, stopped_at, kinds = (
            self.index.append,
            self.started.append,
            self.stopped.append,
            self.kind.append,
        )
        for job in jobs:
            started, stopped = job.get("startedAt"), job.get("stoppedAt")
            if started is None or stopped is None:
                continue
            if job.get("status") == "SUCCEEDED":
                kind = SUCCEEDED
            else:
                kind = RECLAIMED if is_spot_interruption(job.get("statusReason")) else FAILED
            index(offset + (index_of(job) or 0))
            started_at(int(started))
            stopped_at(max(int(started), int(stopped)))
            kinds(kind)

    def add_earlier(self, index: int, job: Mapping[str, Any]) -> None:
        """A described task's attempts before its latest (the latest is already in)."""
        for attempt in (job.get("attempts") or [])[:-1]:
            started, stopped = attempt.get("startedAt"), attempt.get("stoppedAt")
            if started is None or stopped is None:
                continue
            reclaimed = is_spot_interruption(attempt.get("statusReason"))
            self.add(index, int(started), int(stopped), EARLIER_RECLAIMED if reclaimed else EARLIER_FAILED)

    def extend(self, other: TaskTimes) -> None:
        for name in ("index", "started", "stopped", "kind"):
            getattr(self, name).extend(getattr(other, name))

    def latest(self) -> Iterable[tuple[int, int, int, str]]:
        """(index, started, stopped, kind) of each task's latest attempt."""
        for row in zip(self.index, self.started, self.stopped, self.kind, strict=True):
            if row[3].isupper():
                yield row

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "started": self.started,
            "stopped": self.stopped,
            "kind": "".join(self.kind),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskTimes:
        """Rebuild cached times; a malformed cache is a ValueError (the caller asks AWS again)."""
        columns = [list(data["index"]), list(data["started"]), list(data["stopped"])]
        kind = str(data["kind"])
        lengths = {len(c) for c in columns} | {len(kind)}
        if len(lengths) != 1 or set(kind) - set(KINDS):
            raise ValueError("task times columns differ in length or hold an unknown kind")
        if not all(isinstance(v, int) for column in columns for v in column):
            raise ValueError("task times hold a value that is not an integer")
        return cls(columns[0], columns[1], columns[2], list(kind))
