"""The team's runs on a stack: who ran what, and who spent what, from the records in its bucket.

``runner runs`` lists the stack's index (1,000 runs a listing call; run ids begin with their UTC
time, so the newest are the last names and ``--since`` starts the listing at that moment), then
reads only the records it shows. ``runner runs --by user`` (or ``--by day``) reads every record in
the period, 8 at a time, and adds up what their summaries already know: vCPU-hours and the
estimated cost, each run (and each retry run: each was paid for) counted once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from runner.aws.run_records import Indexed, RunRecords, user_key
from runner.errors import InvalidInputError, RunnerError
from runner.runs.store import RunRecord, record_from_json

Grouping = Literal["user", "day"]
GROUPINGS: tuple[Grouping, ...] = ("user", "day")
READERS = 8
_SINCE = re.compile(r"^(?P<n>\d+)(?P<unit>[dh])$")


def since_run_id(text: str, now: datetime) -> str:
    """``7d``, ``12h`` or ``2026-11-25`` as the smallest run id of the period (run ids sort by time)."""
    match = _SINCE.match(text.strip())
    if match:
        hours = int(match["n"]) * (24 if match["unit"] == "d" else 1)
        start = now - timedelta(hours=hours)
    else:
        try:
            start = datetime.strptime(text.strip(), "%Y-%m-%d")
        except ValueError:
            raise InvalidInputError(
                f"--since takes a period such as 7d or 12h, or a date such as 2026-11-25; got {text!r}"
            ) from None
    return f"{start:%Y%m%d-%H%M%S}"


def chosen(index: Iterable[Indexed], user: str | None) -> list[Indexed]:
    """The index entries of ``user`` (all without one), newest first."""
    wanted = user_key(user) if user else None
    return sorted(
        (e for e in index if wanted is None or e.user == wanted), key=lambda e: e.run_id, reverse=True
    )


@dataclass(frozen=True)
class TeamRuns:
    """Records read from a stack's bucket, and a line for each that could not be read."""

    records: list[RunRecord]
    problems: list[str]
    listed: int  # runs the index named in the period (for the user asked)


def read_records(records: RunRecords, entries: Sequence[Indexed]) -> tuple[list[RunRecord], list[str]]:
    """The records of ``entries``, READERS at a time, in their order; a bad one is a line, the
    others are still read."""

    def one(entry: Indexed) -> RunRecord | str:
        try:
            found = records.read(entry.run_id)
            if found is None:
                return f"run {entry.run_id} is in the index but its record {records.uri(entry.run_id)} is missing"
            return record_from_json(found[0], records.uri(entry.run_id), entry.run_id)
        except RunnerError as err:
            return str(err)

    with ThreadPoolExecutor(max_workers=READERS) as pool:
        results = list(pool.map(one, entries))
    return [r for r in results if isinstance(r, RunRecord)], [r for r in results if isinstance(r, str)]


def team_runs(
    records: RunRecords, *, limit: int | None, user: str | None = None, since: str = ""
) -> TeamRuns:
    """The newest ``limit`` runs (every run with None) of the period, ``user``'s only if given."""
    entries = chosen(records.index(since), user)
    shown = entries if limit is None else entries[:limit]
    found, problems = read_records(records, shown)
    return TeamRuns(found, problems, len(entries))


@dataclass(frozen=True)
class Total:
    """What one user (or day) spent: runs, vCPU-hours and estimated cost, from the summaries."""

    key: str
    runs: int
    vcpu_hours: float
    cost_usd: float
    unsummarized: int  # runs without a summary yet (still running, or never looked at)

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "runs": self.runs,
            "vcpuHours": round(self.vcpu_hours, 6),
            "estimatedUsd": round(self.cost_usd, 6),
            "unsummarized": self.unsummarized,
        }


def group_of(record: RunRecord, by: Grouping) -> str:
    """Who submitted the run, or the UTC day its id begins with."""
    return record.user if by == "user" else f"{record.run_id[:4]}-{record.run_id[4:6]}-{record.run_id[6:8]}"


def totals(found: Iterable[RunRecord], by: Grouping) -> list[Total]:
    """vCPU-hours and estimated cost by user or by day (UTC, from the run id), largest cost first."""
    groups: dict[str, list[RunRecord]] = {}
    for record in found:
        groups.setdefault(group_of(record, by), []).append(record)
    result = []
    for key, members in groups.items():
        summaries = [m.summary for m in members if m.summary]
        result.append(
            Total(
                key,
                len(members),
                sum(float(s.get("vcpuHours") or 0) for s in summaries),
                sum(float((s.get("cost") or {}).get("estimatedUsd") or 0) for s in summaries),
                len(members) - len(summaries),
            )
        )
    return sorted(result, key=lambda t: (-t.cost_usd, -t.vcpu_hours, t.key))
