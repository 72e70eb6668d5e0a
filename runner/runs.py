"""Run records: every submission is written down before anything is printed.

One JSON file per run under ``$XDG_STATE_HOME/batch-stacks/runs/``. A record is saved before
SubmitJob is called (state ``submitting``) and again with the job id, so a crash in between
still leaves a record the runner can find the job from (by its unique job name).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from runner.errors import RunNotFoundError

RunState = Literal["submitting", "submitted", "submit-failed"]
_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")


def is_run_id(text: str) -> bool:
    return bool(_RUN_ID.match(text))


def state_dir() -> Path:
    """``$XDG_STATE_HOME/batch-stacks``, defaulting to ``~/.local/state/batch-stacks``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "batch-stacks"


def new_run_id(now: datetime) -> str:
    """Sortable and short: ``YYYYMMDD-HHMMSS-xxxx``."""
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class RunRecord:
    run_id: str
    stack: str
    created_at: str
    job_name: str
    request: dict[str, Any]
    outputs: dict[str, Any]
    state: RunState = "submitting"
    job_ids: list[str] = field(default_factory=list)
    endpoint_url: str | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None

    @property
    def job_id(self) -> str | None:
        return self.job_ids[0] if self.job_ids else None

    @property
    def array_size(self) -> int | None:
        return self.request.get("arrayProperties", {}).get("size")

    def submitted_json(self) -> dict[str, Any]:
        """The ``runner submit --json`` shape."""
        return {
            "runId": self.run_id,
            "jobId": self.job_id,
            "jobIds": list(self.job_ids),
            "jobName": self.job_name,
            "stack": self.stack,
            "arraySize": self.array_size,
            "jobQueue": self.outputs["jobQueueName"],
            "jobDefinition": self.outputs["jobDefinitionArn"],
        }

    def to_json(self) -> dict[str, Any]:
        """The ``runner runs --json`` shape of one run."""
        return {
            "runId": self.run_id,
            "stack": self.stack,
            "createdAt": self.created_at,
            "state": self.state,
            "jobId": self.job_id,
            "jobIds": list(self.job_ids),
            "arraySize": self.array_size,
            "local": self.endpoint_url is not None,
            "error": self.error,
            "counts": self.summary["counts"] if self.summary else None,
        }


class RunStore:
    """Reads and writes run records atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root / "runs"

    def path(self, run_id: str) -> Path:
        return self.root / f"{run_id}.json"

    def save(self, record: RunRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a record is never half-written.
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".run-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(asdict(record), out, indent=2, sort_keys=True)
        os.replace(temporary, self.path(record.run_id))

    def load(self, run_id: str) -> RunRecord:
        try:
            data = json.loads(self.path(run_id).read_text())
        except FileNotFoundError:
            raise RunNotFoundError(f"no run {run_id}; list runs with `runner runs`") from None
        return RunRecord(**data)

    def all(self) -> list[RunRecord]:
        """Every record, newest first."""
        if not self.root.is_dir():
            return []
        records = []
        for path in self.root.glob("*.json"):
            try:
                records.append(RunRecord(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # an unreadable file is not a run; never let it hide the others
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def find(self, run_or_job_id: str) -> RunRecord | None:
        """The record for a run id, or for an AWS job id (or array child ``<jobId>:<i>``)."""
        if is_run_id(run_or_job_id) and self.path(run_or_job_id).is_file():
            return self.load(run_or_job_id)
        job_id = run_or_job_id.split(":")[0]
        for record in self.all():
            if job_id in record.job_ids:
                return record
        return None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
