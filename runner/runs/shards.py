"""Shards: how a run of any size becomes array jobs AWS accepts (at most 10,000 children each).

A run of N tasks is ceil(N / 10,000) shards with offsets 0, 10000, ...; a retry is one shard per
contiguous range of logical indices. A shard of one task is a plain job (AWS arrays start at 2).
Each shard carries ``RUNNER_INDEX_OFFSET`` and ``RUNNER_ARRAY_SIZE`` in its environment.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from infra.limits import MAX_ARRAY_SIZE, SUBMIT_JOB_PER_SECOND
from runner.indices import IndexRange

OFFSET_ENV = "RUNNER_INDEX_OFFSET"
SIZE_ENV = "RUNNER_ARRAY_SIZE"
SHARD_SIZE = MAX_ARRAY_SIZE  # tests that need many shards lower it rather than submit 10,000s


@dataclass(frozen=True)
class Shard:
    """One AWS job of a run: the logical indices ``offset .. offset+size-1``."""

    offset: int
    size: int
    job_name: str
    job_id: str | None = None

    @property
    def is_array(self) -> bool:
        return self.size > 1

    @property
    def stop(self) -> int:
        return self.offset + self.size

    def holds(self, index: int) -> bool:
        return self.offset <= index < self.stop

    def task_job_id(self, index: int) -> str:
        """The AWS id of logical task ``index``: an array child, or the plain job itself."""
        if self.job_id is None:
            raise ValueError("shard not submitted")
        return f"{self.job_id}:{index - self.offset}" if self.is_array else self.job_id

    def with_job_id(self, job_id: str) -> Shard:
        return Shard(self.offset, self.size, self.job_name, job_id)


def split_ranges(ranges: Iterable[IndexRange], limit: int | None = None) -> list[tuple[int, int]]:
    """(offset, size) pieces of at most ``limit`` (default ``SHARD_SIZE``) tasks per inclusive range."""
    limit = limit or SHARD_SIZE
    pieces = []
    for first, last in ranges:
        for offset in range(first, last + 1, limit):
            pieces.append((offset, min(limit, last + 1 - offset)))
    return pieces


def plan_shards(pieces: list[tuple[int, int]], base_name: str) -> list[Shard]:
    """Shards for (offset, size) pieces; a lone shard keeps the run's name, others are numbered."""
    if len(pieces) == 1:
        return [Shard(pieces[0][0], pieces[0][1], base_name)]
    width = len(str(len(pieces) - 1))
    return [Shard(offset, size, f"{base_name}-{n:0{width}d}") for n, (offset, size) in enumerate(pieces)]


def shard_request(request: dict[str, Any], shard: Shard, total_tasks: int) -> dict[str, Any]:
    """The SubmitJob parameters of one shard: the run's request, its name, size and offset."""
    params = copy.deepcopy(request)
    params["jobName"] = shard.job_name
    params.pop("arrayProperties", None)
    if shard.is_array:
        params["arrayProperties"] = {"size": shard.size}
    overrides = params.setdefault("containerOverrides", {})
    environment = [e for e in overrides.get("environment", []) if e["name"] not in (OFFSET_ENV, SIZE_ENV)]
    environment += [
        {"name": OFFSET_ENV, "value": str(shard.offset)},
        {"name": SIZE_ENV, "value": str(total_tasks)},
    ]
    overrides["environment"] = environment
    return params


class RateLimiter:
    """At most ``rate`` calls a second (SubmitJob's account-wide limit), by sleeping between them."""

    def __init__(
        self,
        rate: float = SUBMIT_JOB_PER_SECOND,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.clock, self.sleep = clock, sleep
        self._next = 0.0

    def wait(self) -> None:
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval
