"""Read a job's (or array child's) CloudWatch log stream, bounded."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from runner.aws.batch_jobs import describe_job
from runner.aws.clients import aws_errors
from runner.errors import RunnerError

DEFAULT_LIMIT = 1000
# Where Batch writes a container's log when its definition names no awslogs group.
BATCH_LOG_GROUP = "/aws/batch/job"


@dataclass(frozen=True)
class LogEvent:
    timestamp: int
    message: str


@dataclass(frozen=True)
class LogTail:
    """The last lines of a task's log, or why they could not be read."""

    lines: list[str]
    error: str | None = None


@dataclass(frozen=True)
class LogStream:
    job_id: str
    group: str
    stream: str
    events: list[LogEvent]
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "logGroupName": self.group,
            "logStreamName": self.stream,
            "truncated": self.truncated,
            "events": [{"timestamp": e.timestamp, "message": e.message} for e in self.events],
        }


def _index_needed(job_id: str, size: int) -> RunnerError:
    return RunnerError(f"job {job_id} is an array of {size}; pass --index 0..{size - 1}")


def child_job_id(job_id: str, index: int | None, size: int | None) -> str:
    """The id of array child ``index`` (``<jobId>:<index>``), checked against the array size."""
    if index is None:
        if size:
            raise _index_needed(job_id, size)
        return job_id
    if not size:
        raise RunnerError(f"job {job_id} is not an array job; drop --index")
    if not 0 <= index < size:
        raise RunnerError(f"--index {index} is out of range; use 0..{size - 1}")
    return f"{job_id}:{index}"


def task_job_id(batch: Any, job_id: str, index: int | None, known_size: int | None) -> str:
    """The job whose log to read: ``job_id`` itself, or its array child ``index``.

    ``known_size`` comes from the run record; without it the parent is described (one call).
    """
    if ":" in job_id:
        if index is not None:
            raise RunnerError(f"{job_id} is already an array child; drop --index")
        return job_id
    size = known_size
    if size is None and index is not None:
        described = describe_job(batch, job_id).get("arrayProperties") or {}
        size = described.get("size")
    return child_job_id(job_id, index, size)


def definition_name(job: dict[str, Any]) -> str:
    """A described job's definition name (``...:job-definition/<name>:<revision>``)."""
    return str(job.get("jobDefinition") or "").rsplit("/", 1)[-1].rsplit(":", 1)[0]


def log_location(
    job: dict[str, Any], attempt: int | None = None, known_groups: Mapping[str, str] | None = None
) -> tuple[str, str | None]:
    """The log group and the stream of a described job's latest attempt (or attempt ``attempt``,
    from 1). The group is the one its logConfiguration names; when DescribeJobs does not say, the
    one ``known_groups`` gives for its definition (the stack's), else Batch's default: any job's
    log is found, the stack's or not."""
    container = job.get("container") or {}
    options = (container.get("logConfiguration") or {}).get("options") or {}
    group = options.get("awslogs-group") or (known_groups or {}).get(definition_name(job), BATCH_LOG_GROUP)
    attempts = job.get("attempts") or []
    stream = container.get("logStreamName")
    if attempt is not None and 1 <= attempt <= len(attempts):
        return group, (attempts[attempt - 1].get("container") or {}).get("logStreamName")
    if attempts and attempts[-1].get("container", {}).get("logStreamName"):
        stream = attempts[-1]["container"]["logStreamName"]
    return group, stream


def _events_from_head(logs: Any, group: str, stream: str) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        page = logs.get_log_events(**kwargs)
        yield from page.get("events", [])
        next_token = page.get("nextForwardToken")
        # The API signals the end by returning the token it was given.
        if not page.get("events") or next_token == token:
            return
        token = next_token


def read_log(
    batch: Any,
    logs: Any,
    job_id: str,
    *,
    tail: int | None = None,
    limit: int = DEFAULT_LIMIT,
    attempt: int | None = None,
    known_groups: Mapping[str, str] | None = None,
) -> LogStream:
    """The latest attempt's log (or attempt ``attempt``'s): the last ``tail`` lines, or up to
    ``limit`` from the head."""
    job = describe_job(batch, job_id)
    size = (job.get("arrayProperties") or {}).get("size")
    if size:
        raise _index_needed(job_id, size)
    group, stream = log_location(job, attempt, known_groups)
    if not stream:
        raise RunnerError(
            f"job {job_id} has no log stream yet (status {job.get('status')}); "
            "it gets one once a container starts"
        )
    raw: list[dict[str, Any]] = []
    truncated = False
    if tail is not None:
        raw = _tail_events(logs, group, stream, tail)
    else:
        with aws_errors(), _stream_missing(group, stream):
            for event in _events_from_head(logs, group, stream):
                if len(raw) == limit:
                    truncated = True
                    break
                raw.append(event)
    events = [LogEvent(int(e.get("timestamp", 0)), str(e.get("message", ""))) for e in raw]
    return LogStream(job_id, group, stream, events, truncated)


def stream_tail(logs: Any, group: str, stream: str, lines: int) -> list[str]:
    """The last ``lines`` messages of a log stream, in one GetLogEvents call."""
    return [str(event.get("message", "")).rstrip("\n") for event in _tail_events(logs, group, stream, lines)]


def _tail_events(logs: Any, group: str, stream: str, lines: int) -> list[dict[str, Any]]:
    """The last ``lines`` events come in one call when reading backwards."""
    with aws_errors(), _stream_missing(group, stream):
        return logs.get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=False, limit=lines
        ).get("events", [])


@contextmanager
def _stream_missing(group: str, stream: str) -> Iterator[None]:
    """A stream CloudWatch does not have is the user's line to read; other errors pass on."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        raise RunnerError(f"log stream {stream} is not in {group} (not written yet, or expired)") from None
