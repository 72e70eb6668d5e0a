"""Run records and what is cached beside them: every submission is written down before anything
is printed, and what a finished run's summary and report need outlives AWS's memory of its jobs.

One JSON file per run under ``$XDG_STATE_HOME/batch-stacks/runs/``. A record is saved before
SubmitJob is called (state ``submitting``) and again with the job id, so a crash in between
still leaves a record the runner can find the job from (by its unique job name).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from runner.analysis.timeline import TaskTimes
from runner.aws.job_logs import LogTail
from runner.aws.run_records import RUN_ID_PATTERN, NewerRecordError, RecordConflict, RunRecords
from runner.aws.stack_outputs import StackOutputs, parse_outputs
from runner.errors import RunnerError, RunNotFoundError, RunRecordError
from runner.json_files import JsonFileError, read_gzip_json, read_json, type_name, write_gzip_json, write_json
from runner.runs.shards import Shard

RunState = Literal["submitting", "submitted", "submit-failed"]
RUN_STATES: tuple[RunState, ...] = get_args(RunState)
# Beside each record, what a report needs beyond the summary: ``<run id>.<cache>.json.gz``.
Cache = Literal["times", "logs"]
CACHES: tuple[Cache, ...] = get_args(Cache)
CACHE_SUFFIX = ".json.gz"
_RUN_ID = re.compile(RUN_ID_PATTERN)


def is_run_id(text: str) -> bool:
    return bool(_RUN_ID.fullmatch(text))


def state_dir() -> Path:
    """``$XDG_STATE_HOME/batch-stacks``, defaulting to ``~/.local/state/batch-stacks``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "batch-stacks"


def new_run_id(now: datetime) -> str:
    """Sortable and unique: ``YYYYMMDD-HHMMSS-xxxxxxxx``."""
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


@dataclass
class RunRecord:
    """One run: what was asked, where, and the shards (AWS jobs) it became.

    ``request`` is the SubmitJob request every shard starts from; ``total_tasks`` is the size of
    the run's logical index space (for a retry: its parent's), ``array`` whether it was asked as
    an array. A retry names its ``parent_run_id``; a parent lists its ``retry_run_ids``.
    """

    run_id: str
    stack: str
    created_at: str
    job_name: str
    request: dict[str, Any]
    outputs: dict[str, Any]
    state: RunState = "submitting"
    shards: list[Shard] = field(default_factory=list)
    total_tasks: int = 1
    array: bool = False
    endpoint_url: str | None = None  # a local run: where its emulator answered when it was submitted
    # A local run: which local stack ran it (its identity), found again wherever it answers now.
    emulator: str | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None
    parent_run_id: str | None = None
    retry_run_ids: list[str] = field(default_factory=list)
    # A sweep over a table (``submit --tasks``): where its rows and outputs are (Sweep.to_json).
    sweep: dict[str, Any] | None = None
    # When `runner cancel` stopped it (ISO time): it shows as cancelled, not running.
    cancelled_at: str | None = None
    # The code it shipped (``--code``): digest, files, bytes, source, git commit and dirty flag, package.
    code: dict[str, Any] | None = None
    # A retry's changes to what runs: {"code": [before, after], "command": [...], "env": {K: [...]}}.
    changes: dict[str, Any] | None = None
    # Who submitted it (a retry: who retried): {"arn": the caller identity's ARN, "user": a short name}.
    submitted_by: dict[str, str] | None = None

    @property
    def user(self) -> str:
        return (self.submitted_by or {}).get("user") or "unknown"

    @property
    def job_ids(self) -> list[str]:
        return [shard.job_id for shard in self.shards if shard.job_id]

    @property
    def job_id(self) -> str | None:
        return self.job_ids[0] if self.job_ids else None

    @property
    def array_size(self) -> int | None:
        """Tasks in the run when it was asked as an array; None for a single job."""
        return self.total_tasks if self.array else None

    @property
    def tasks(self) -> int:
        """Tasks this run submits (a retry: fewer than its index space)."""
        return sum(shard.size for shard in self.shards)

    @property
    def missing_shards(self) -> list[Shard]:
        return [shard for shard in self.shards if shard.job_id is None]

    def submitted_json(self) -> dict[str, Any]:
        """The ``runner submit --json`` shape."""
        return {
            "runId": self.run_id,
            "jobId": self.job_id,
            "jobIds": list(self.job_ids),
            "jobName": self.job_name,
            "stack": self.stack,
            "arraySize": self.array_size,
            "tasks": self.tasks,
            "shards": [{"offset": s.offset, "size": s.size, "jobId": s.job_id} for s in self.shards],
            "parentRunId": self.parent_run_id,
            "jobQueue": self.stack_outputs.job_queue_name,
            "jobDefinition": self.stack_outputs.job_definition_arn,
            "code": self.code,
            "changes": self.changes,
        }

    @property
    def stack_outputs(self) -> StackOutputs:
        """The outputs of the stack the run went to, as they were when it was submitted."""
        return parse_outputs(self.stack, self.outputs, f"run {self.run_id}'s record")

    @property
    def finished(self) -> bool:
        """Nothing more will happen: its summary is complete, or it never reached AWS."""
        if self.state == "submit-failed" and not self.job_ids:
            return True
        return self.state == "submitted" and bool(self.summary and self.summary.get("complete"))

    @property
    def outcome(self) -> str:
        """What ``runner runs`` shows: running, succeeded, failed, cancelled or incomplete.

        Incomplete means not all of the run reached AWS (``runner submit`` was interrupted or
        refused; ``runner submit --resume`` completes it); a run is running until a summary found
        every task finished, or until ``runner cancel`` stopped it.
        """
        if self.state != "submitted" or self.missing_shards:
            return "incomplete"
        failed = bool((self.summary or {}).get("counts", {}).get("FAILED"))
        if self.cancelled_at and (failed or not self.finished):  # a cancel that stopped something
            return "cancelled"
        if not self.finished:
            return "running"
        return "failed" if failed else "succeeded"

    def to_json(self) -> dict[str, Any]:
        """The ``runner runs --json`` shape of one run."""
        return {
            "runId": self.run_id,
            "stack": self.stack,
            "createdAt": self.created_at,
            "state": self.outcome,
            "jobId": self.job_id,
            "jobIds": list(self.job_ids),
            "arraySize": self.array_size,
            "tasks": self.tasks,
            "shards": len(self.shards),
            "shardsSubmitted": len(self.job_ids),
            "parentRunId": self.parent_run_id,
            "retryRunIds": list(self.retry_run_ids),
            "local": self.endpoint_url is not None,
            "error": self.error,
            "cancelledAt": self.cancelled_at,
            "counts": self.summary["counts"] if self.summary else None,
            "code": self.code,
            "changes": self.changes,
            "submittedBy": self.submitted_by,
        }


def _record_problem(data: Any) -> str | None:
    """What makes ``data`` unusable as a run record, or None. Unknown keys are fine."""
    if not isinstance(data, dict):
        return f"it holds {type_name(data)}, not a run record"
    for key, kind, label in _REQUIRED:
        if key not in data:
            return f"it lacks '{key}'"
        if not isinstance(data[key], kind):
            return f"'{key}' should be {label}, got {type_name(data[key])}"
    for key, kind, label in _OPTIONAL:
        if data.get(key) is not None and not isinstance(data[key], kind):
            return f"'{key}' should be {label}, got {type_name(data[key])}"
    linked = [data.get("parent_run_id") or "", *(data.get("retry_run_ids") or [])]
    if not all(isinstance(run, str) and (run == "" or is_run_id(run)) for run in linked):
        return "'parent_run_id' and 'retry_run_ids' should be run ids"
    if not all(isinstance(job_id, str) for job_id in data.get("job_ids") or []):
        return "'job_ids' should be a list of job ids"
    for shard in data.get("shards") or []:
        if (
            not isinstance(shard, dict)
            or not all(
                isinstance(shard.get(key), int) and not isinstance(shard.get(key), bool)
                for key in ("offset", "size")
            )
            or not isinstance(shard.get("job_name"), str)
            or not isinstance(shard.get("job_id"), (str, type(None)))
        ):
            return "'shards' should be a list of {offset, size, job_name, job_id}"
    if "region" not in data["outputs"]:
        return "its stack outputs lack 'region'"
    return None


_REQUIRED = (
    ("run_id", str, "a run id"),
    ("stack", str, "a stack name"),
    ("created_at", str, "a timestamp"),
    ("job_name", str, "a job name"),
    ("request", dict, "an object"),
    ("outputs", dict, "an object"),
)
_OPTIONAL = (
    ("state", str, "a string"),
    ("job_ids", list, "a list"),
    ("shards", list, "a list"),
    ("total_tasks", int, "a number"),
    ("array", bool, "true or false"),
    ("parent_run_id", str, "a run id"),
    ("retry_run_ids", list, "a list"),
    ("endpoint_url", str, "a URL"),
    ("emulator", str, "a local stack's identity"),
    ("error", str, "a string"),
    ("summary", dict, "an object"),
    ("sweep", dict, "an object"),
    ("cancelled_at", str, "a timestamp"),
    ("code", dict, "an object"),
    ("changes", dict, "an object"),
    ("submitted_by", dict, "an object"),
)
_FIELDS = frozenset(f.name for f in fields(RunRecord))


def record_from_json(data: Any, path: Path | str, run_id: str | None = None) -> RunRecord:
    """A record from its file's JSON, written by this version or another one. ``run_id``: the id
    its file or S3 key names, which the record's own ``run_id`` must equal (a record never chooses
    where it is written).

    Keys a newer version added are ignored; keys an older one lacked take their defaults.
    """
    problem = _record_problem(data)
    if problem is None and not is_run_id(data["run_id"]):
        problem = f"its run_id {data['run_id'][:40]!r} is not a run id"
    if problem is None and run_id is not None and data["run_id"] != run_id:
        problem = f"it names run {data['run_id'][:40]!r}, not {run_id}"
    if problem:
        raise RunRecordError(
            f"run record {path} cannot be read: {problem}; "
            "remove it (`runner runs --prune` removes unreadable records)",
            path if isinstance(path, Path) else None,
        )
    values = {key: value for key, value in data.items() if key in _FIELDS}
    values["shards"] = [
        Shard(s["offset"], s["size"], s["job_name"], s.get("job_id")) for s in data.get("shards") or []
    ]
    if "shards" not in data:  # written before runs had shards: one job, its size in the request
        size = (data["request"].get("arrayProperties") or {}).get("size")
        job_ids = data.get("job_ids") or [None]
        values.update(
            shards=[Shard(0, size or 1, data["job_name"], job_ids[0])],
            total_tasks=size or 1,
            array=size is not None,
        )
    record = RunRecord(**values)
    if data.get("state") not in RUN_STATES:
        record.state = "submitted" if record.job_ids else "submitting"
    return record


class Shared(Protocol):
    """Where run records are shared: a stack's data bucket (``runner.aws.run_records``)."""

    def records_for(self, record: RunRecord) -> RunRecords | None:
        """The records of the stack a run went to; None when it has no data bucket."""

    def home(self) -> RunRecords | None:
        """The records of the stack the command works on, for a run not known on this machine."""

    def who(self, record: RunRecord) -> dict[str, str] | None:
        """Who is submitting ``record``: {"arn", "user"} of the caller identity, or None."""


MAX_UPDATE_TRIES = 5


class RunStore:
    """Run records: in the stack's data bucket when it has one (the source of truth, shared by
    everyone with access), with a local copy as the cache; local only otherwise.

    Every local write is atomic and an unreadable record never hides the others. A shared record
    is created with If-None-Match and changed with If-Match on the ETag it was read at. A store
    serves one command: a shared record is read once by it (``update`` reads afresh), and the local
    copy holds what was last read or written.
    """

    def __init__(self, root: Path, shared: Shared | None = None) -> None:
        self.root = root / "runs"
        self.shared = shared
        self._etags: dict[str, str] = {}  # the shared record's ETag, as last read or written

    def path(self, run_id: str) -> Path:
        """The local copy's file; a name that is not a run id (``../../x`` from a forged record's
        ``retry_run_ids``) never becomes a path."""
        if not is_run_id(run_id):
            raise RunRecordError(
                f"{run_id[:60]!r} is not a run id; a record naming it is not trustworthy", None
            )
        return self.root / f"{run_id}.json"

    def save(self, record: RunRecord) -> None:
        """Write the record here and, for a stack with a data bucket, there: a new one with
        If-None-Match, one read from there with If-Match (RecordConflict when it changed since)."""
        records = self.shared.records_for(record) if self.shared else None
        if records is not None:
            data = asdict(record)
            etag = self._etags.get(record.run_id)
            if etag is None:
                if record.submitted_by is None and self.shared is not None:
                    record.submitted_by = self.shared.who(record)
                    data = asdict(record)
                etag = records.create(record.run_id, data, record.user)
            else:
                etag = records.replace(record.run_id, data, etag)
            self._etags[record.run_id] = etag
        write_json(self.path(record.run_id), asdict(record))

    def commit(self, record: RunRecord, change: Callable[[RunRecord], None]) -> RunRecord:
        """Apply ``change`` to ``record`` and save it; when someone else wrote the shared record
        meanwhile (a watch, a summary, a cancel in another terminal), read theirs and apply the
        change to it instead, so neither write is lost. Returns the record as saved.

        A change that cannot be saved is still kept in the local copy before the error is raised:
        a submitted job id is never left unrecorded here."""
        change(record)
        try:
            self.save(record)
            return record
        except RecordConflict:
            pass
        try:
            return self.update(record.run_id, change)
        except RunnerError:
            write_json(self.path(record.run_id), asdict(record))
            raise

    def update(self, run_id: str, change: Callable[[RunRecord], None]) -> RunRecord:
        """Read the record afresh, change it, write it back; when someone else wrote it in
        between, read it again and apply the change again. ``change`` may raise to stop."""
        for _ in range(MAX_UPDATE_TRIES):
            record = self.load(run_id, fresh=True)
            change(record)
            try:
                self.save(record)
            except RecordConflict:
                continue
            return record
        raise RunnerError(f"run {run_id}'s record keeps changing under this command; run it again")

    def _shared_copy(self, run_id: str, local: RunRecord | None) -> RunRecord | None:
        """The shared record (cached here, its ETag kept), or None when there is none to read."""
        if self.shared is None:
            return None
        records = self.shared.records_for(local) if local is not None else self.shared.home()
        if records is None:
            return None
        found = records.read_raw(run_id)
        if found is None:
            return None
        body, etag = found
        try:
            record = record_from_json(records.parse(run_id, body), records.uri(run_id), run_id)
        except NewerRecordError:
            raise
        except RunRecordError:
            if local is None:
                raise
            # Damaged in the bucket, good here: work from this copy; the next save repairs theirs.
            self._etags[run_id] = etag
            return local
        self._etags[run_id] = etag
        write_json(self.path(run_id), asdict(record))
        return record

    def read(self, path: Path) -> RunRecord:
        fix = "remove it (`runner runs --prune` removes unreadable records)"
        try:
            return record_from_json(read_json(path, fix), path, path.name.removesuffix(".json"))
        except JsonFileError as err:
            raise RunRecordError(f"run record {err}", path) from None

    def load(self, run_id: str, *, fresh: bool = False) -> RunRecord:
        """The run's record: the shared one when its stack has a data bucket (and the local copy
        refreshed), else the local one. A shared record already read or written by this store is
        its local copy, unless ``fresh``."""
        damaged: RunRecordError | None = None
        try:
            local: RunRecord | None = self.read(self.path(run_id))
        except FileNotFoundError:
            local = None
        except RunRecordError as err:  # a damaged copy here: the shared one, if any, replaces it
            local, damaged = None, err
        if local is not None and run_id in self._etags and not fresh:
            return local
        shared = self._shared_copy(run_id, local)
        if shared is not None:
            return shared
        if damaged is not None:
            raise damaged
        if local is None:
            raise RunNotFoundError(
                f"no run {run_id} here or in the stack's run records; list runs with `runner runs`"
            )
        if self.shared is not None and self.shared.records_for(local) is not None:
            self._etags.pop(run_id, None)  # not shared yet: the next save uploads it
        return local

    def scan(self) -> tuple[list[RunRecord], list[RunRecordError]]:
        """Every readable record, newest first, and one error for each unreadable file."""
        if not self.root.is_dir():
            return [], []
        records, problems = [], []
        for path in sorted(self.root.glob("*.json")):
            try:
                records.append(self.read(path))
            except FileNotFoundError:
                continue  # removed while we looked
            except RunRecordError as err:
                problems.append(err)
        return sorted(records, key=lambda r: r.created_at, reverse=True), problems

    def all(self) -> list[RunRecord]:
        """Every readable record, newest first."""
        return self.scan()[0]

    def find(self, run_or_job_id: str) -> RunRecord | None:
        """The record for a run id, or for an AWS job id (or array child ``<jobId>:<i>``)."""
        if is_run_id(run_or_job_id):
            try:
                return self.load(run_or_job_id)
            except RunNotFoundError:
                return None
        job_id = run_or_job_id.split(":")[0]
        for record in self.all():
            if job_id in record.job_ids:
                return record
        return None

    def lineage(self, record: RunRecord) -> list[RunRecord]:
        """The retry runs of ``record``, and theirs, in the order they were made."""
        found: list[RunRecord] = []
        pending = list(record.retry_run_ids)
        while pending:
            run_id = pending.pop(0)
            try:
                retry = self.load(run_id)
            except (RunNotFoundError, RunRecordError):
                continue  # a pruned or broken retry record: fold in what is left
            found.append(retry)
            pending.extend(retry.retry_run_ids)
        return sorted(found, key=lambda r: r.created_at)

    def remove(self, run_id: str) -> None:
        self.path(run_id).unlink(missing_ok=True)
        for cache in CACHES:
            self.cache_path(run_id, cache).unlink(missing_ok=True)

    def cache_path(self, run_id: str, cache: Cache) -> Path:
        return self.root / f"{run_id}.{cache}{CACHE_SUFFIX}"

    def save_cache(self, run_id: str, cache: Cache, data: dict[str, Any]) -> None:
        """Keep what a report needs beyond the summary beside the record, one file per kind, so
        caching a few log tails never rewrites a million task times."""
        write_gzip_json(self.cache_path(run_id, cache), data)

    def load_cache(self, run_id: str, cache: Cache) -> dict[str, Any]:
        """The cached data, or ``{}`` when there is none or it is broken (it is only a cache)."""
        try:
            data = read_gzip_json(self.cache_path(run_id, cache))
        except (OSError, EOFError, ValueError):  # FileNotFoundError included
            return {}
        return data if isinstance(data, dict) else {}

    def cached_times(self, run_id: str, basis: str) -> TaskTimes | None:
        """A complete run's task times on ``basis``, or None (none cached, another basis, damaged)."""
        cached = self.load_cache(run_id, "times")
        if cached.get("basis") != basis or not isinstance(cached.get("times"), dict):
            return None
        try:
            return TaskTimes.from_json(cached["times"])
        except (KeyError, TypeError, ValueError):
            return None  # a damaged cache: ask AWS again

    def save_times(self, run_id: str, basis: str, times: TaskTimes) -> None:
        self.save_cache(run_id, "times", {"basis": basis, "times": times.to_json()})

    def cached_log_tails(self, run_id: str) -> dict[str, LogTail]:
        """Each cached failure's log tail by job id: its last lines, or why it has none."""
        tails: dict[str, LogTail] = {}
        for job_id, hit in self.load_cache(run_id, "logs").items():
            if isinstance(hit, list) and all(isinstance(line, str) for line in hit):
                tails[job_id] = LogTail(hit, None)
            elif isinstance(hit, dict) and isinstance(hit.get("error"), str):
                tails[job_id] = LogTail([], hit["error"])  # no stream, known since the run completed
        return tails

    def save_log_tails(self, run_id: str, tails: dict[str, LogTail]) -> None:
        self.save_cache(
            run_id,
            "logs",
            {
                job_id: tail.lines if tail.error is None else {"error": tail.error}
                for job_id, tail in tails.items()
            },
        )

    def orphaned_caches(self) -> list[Path]:
        """Caches whose run record is gone."""
        if not self.root.is_dir():
            return []
        return [
            path
            for path in self.root.glob(f"*{CACHE_SUFFIX}")
            if not self.path(path.name.split(".", 1)[0]).exists()
        ]


@dataclass(frozen=True)
class Pruned:
    """A record ``runner runs --prune`` removed, and why."""

    name: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"run": self.name, "reason": self.reason}


def prune_runs(
    store: RunStore, now: datetime, older_than_days: int, gone: Callable[[RunRecord], str | None]
) -> list[Pruned]:
    """Remove unreadable records, local runs whose local stack is gone (``gone`` says why), and
    old finished runs.

    A run that may still be going on AWS is never removed: its record is how it is found.
    """
    records, unreadable = store.scan()
    pruned = [Pruned(error.path.name, f"unreadable: {error}") for error in unreadable]
    for error in unreadable:
        error.path.unlink(missing_ok=True)
    for path in store.orphaned_caches():
        path.unlink(missing_ok=True)
    cutoff = now - timedelta(days=older_than_days)
    for record in records:
        reason = gone(record)
        if reason is None and record.finished and _created(record) <= cutoff:
            reason = f"{record.outcome}, created {record.created_at[:10]}"
        if reason is None:
            continue
        store.remove(record.run_id)
        pruned.append(Pruned(record.run_id, reason))
    return pruned


def prune_shared(store: RunStore, records: RunRecords) -> list[Pruned]:
    """The stack's records in its bucket that no one can read: each is repaired from this
    machine's copy where there is a good one, else removed with its index marker (a record no
    runner can read finds no job and blocks its run for everyone). One listing per 1,000 runs and
    one read per record."""
    pruned = []
    for entry in records.index():
        found = records.read_raw(entry.run_id)
        if found is None:
            continue
        body, etag = found
        try:
            record_from_json(records.parse(entry.run_id, body), records.uri(entry.run_id), entry.run_id)
            continue
        except NewerRecordError:
            continue  # a newer runner's: readable by it
        except RunRecordError as err:
            problem = str(err)
        try:
            local = store.read(store.path(entry.run_id))
        except (FileNotFoundError, RunRecordError):
            local = None
        if local is not None:
            records.replace(entry.run_id, asdict(local), etag)
            pruned.append(
                Pruned(entry.run_id, f"repaired in the bucket from this machine's copy ({problem})")
            )
        else:
            records.remove(entry)
            pruned.append(Pruned(entry.run_id, f"removed from the bucket: {problem}"))
    return pruned


def _created(record: RunRecord) -> datetime:
    try:
        created = datetime.fromisoformat(record.created_at)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)  # an unparsable date counts as old
    return created if created.tzinfo else created.replace(tzinfo=timezone.utc)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
