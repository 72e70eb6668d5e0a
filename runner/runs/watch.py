"""Watch a run: one DescribeJobs call per poll for up to 100 shards (a million tasks)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from runner.aws.batch_jobs import describe_all
from runner.aws.job_status import Progress, combine, progress_of
from runner.errors import AwsError

DEFAULT_INTERVAL = 10.0
MAX_INTERVAL = 60.0
BACKOFF = 1.5
# A watch survives this long of failed polls in a row (a network blip, an AWS brown-out).
MAX_OUTAGE = 30 * 60.0
# Tasks RUNNABLE this long with none finishing: worth asking `runner why`.
STUCK_AFTER = 10 * 60.0


def poll(batch: Any, job_ids: str | Sequence[str]) -> Progress:
    """Where a job or a run's shards stand: one DescribeJobs call per 100 shards."""
    ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
    return combine([progress_of(job) for job in describe_all(batch, ids)])


def watch(
    batch: Any,
    job_id: str | Sequence[str],
    *,
    interval: float = DEFAULT_INTERVAL,
    on_progress: Callable[[Progress], None] = lambda _: None,
    on_retry: Callable[[AwsError, float], None] = lambda _error, _delay: None,
    sleep: Callable[[float], None] = time.sleep,
    max_outage: float = MAX_OUTAGE,
    on_stuck: Callable[[Progress], None] = lambda _: None,
    stuck_after: float = STUCK_AFTER,
) -> Progress:
    """Poll until every child is SUCCEEDED or FAILED; return the last progress.

    Polls every ``interval`` seconds while things move, backing off gently (x1.5) while nothing
    changes, never beyond ``MAX_INTERVAL`` (or ``interval`` if that is larger).
    ``on_progress`` is called with every poll's result. A poll that fails for a reason that may
    pass (network, throttling, a 5xx) is retried with backoff after ``on_retry(error, delay)``;
    only ``max_outage`` seconds of failures in a row, or a lasting error, end the watch.
    ``on_stuck`` is called once when tasks have waited RUNNABLE for ``stuck_after`` seconds
    while none finished (the moment to ask ``runner why``).
    """
    ceiling = max(MAX_INTERVAL, interval)
    delay = interval
    last: Progress | None = None
    outage = 0.0
    waited = 0.0  # seconds with RUNNABLE tasks and nothing finishing
    told = False
    while True:
        try:
            progress = poll(batch, job_id)
        except AwsError as err:
            if not err.transient or outage >= max_outage:
                raise
            delay = min(max(delay, interval) * BACKOFF, ceiling)
            on_retry(err, delay)
            outage += delay
            sleep(delay)
            continue
        outage = 0.0
        on_progress(progress)
        if progress.done:
            return progress
        if last is not None and progress.counts == last.counts:
            delay = min(delay * BACKOFF, ceiling)
        else:
            delay = interval
        stalled = progress.counts.get("RUNNABLE", 0) and (last is None or progress.finished == last.finished)
        waited = waited + delay if stalled else 0.0
        if waited >= stuck_after and not told:
            on_stuck(progress)
            told = True
        last = progress
        sleep(delay)
