"""A sweep over data: a table's rows as tasks, run by the launcher, outputs gathered per row.

Row ``r`` is logical row ``r``; with ``per_task`` K, task ``i`` runs rows ``iK`` to ``iK+K-1``, so a
run of N rows has ceil(N/K) tasks and everything that speaks in logical indices (shards, failure
classes, ``retry --indices``, ``logs --index``, the report) speaks in tasks, which name their rows.
The table goes to the stack's data bucket in pieces of at most 1,000 rows, each a whole number of
tasks, so a task reads one small object, never the whole table.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.aws.data_store import put_pieces
from runner.aws.stack_outputs import DataLocation, StackOutputs
from runner.errors import InvalidInputError
from runner.runs.inputs import check_inputs, staged_inputs
from runner.runs.launch import IMAGE_PYTHON, plan_launch
from runner.runs.local_inputs import LocalInput, find_local_inputs, upload_inputs, with_addresses
from runner.runs.rows import OUTPUTS_FOLDER, ROWS_FOLDER, TABLE_FOLDER
from runner.runs.shards import RateLimiter
from runner.runs.store import RunRecord, RunStore, new_run_id
from runner.runs.submit import SubmitOptions, definition_command, prepare_run, submit_shards
from runner.runs.table import TaskTable

MAX_PIECE_ROWS = 1_000
MAX_PER_TASK = MAX_PIECE_ROWS
TASKS_URI_ENV = "RUNNER_TASKS_URI"
OUTPUT_URI_ENV = "RUNNER_OUTPUT_URI"
ROWS_ENV = "RUNNER_ROWS"
PER_TASK_ENV = "RUNNER_PER_TASK"
PIECE_ROWS_ENV = "RUNNER_PIECE_ROWS"
SKIP_EXISTING_ENV = "RUNNER_SKIP_EXISTING"
ROWS_URI_ENV = "RUNNER_ROWS_URI"
KEY_COLUMN_ENV = "RUNNER_KEY_COLUMN"
INPUTS_ENV = "RUNNER_INPUTS"


@dataclass(frozen=True)
class Sweep:
    """Where a sweep's table and outputs live, and how its rows map to tasks."""

    data: DataLocation
    run_id: str
    rows: int
    per_task: int
    columns: tuple[str, ...]
    key: str = ""  # the column that names rows (``--key``; the first column by default)
    inputs: tuple[str, ...] = ()  # columns whose s3:// values the launcher stages (``--input``)

    @property
    def key_column(self) -> str:
        return self.key or self.columns[0]

    @property
    def tasks(self) -> int:
        return math.ceil(self.rows / self.per_task)

    @property
    def piece_rows(self) -> int:
        return self.per_task * max(1, MAX_PIECE_ROWS // self.per_task)

    @property
    def tasks_key(self) -> str:
        return self.data.key(self.run_id, "/" + TABLE_FOLDER)

    @property
    def outputs_key(self) -> str:
        return self.data.key(self.run_id, "/" + OUTPUTS_FOLDER)

    @property
    def rows_key(self) -> str:
        return self.data.key(self.run_id, "/" + ROWS_FOLDER)

    @property
    def tasks_uri(self) -> str:
        return self.data.uri(self.run_id, "/" + TABLE_FOLDER)

    @property
    def outputs_uri(self) -> str:
        return self.data.uri(self.run_id, "/" + OUTPUTS_FOLDER)

    @property
    def rows_uri(self) -> str:
        return self.data.uri(self.run_id, "/" + ROWS_FOLDER)

    def task_of(self, row: int) -> int:
        return row // self.per_task

    def task_rows(self, task: int) -> range:
        return range(task * self.per_task, min((task + 1) * self.per_task, self.rows))

    def rows_of(self, tasks: Iterable[int]) -> list[int]:
        """The rows these tasks hold, in order."""
        return [row for task in sorted(set(tasks)) for row in self.task_rows(task)]

    def environment(self) -> dict[str, str]:
        """What the launcher reads of the rows, set on every task of the run (and its retries)."""
        staged = {INPUTS_ENV: json.dumps(list(self.inputs))} if self.inputs else {}
        return {
            **staged,
            TASKS_URI_ENV: self.tasks_uri,
            OUTPUT_URI_ENV: self.outputs_uri,
            ROWS_URI_ENV: self.rows_uri,
            KEY_COLUMN_ENV: self.key_column,
            ROWS_ENV: str(self.rows),
            PER_TASK_ENV: str(self.per_task),
            PIECE_ROWS_ENV: str(self.piece_rows),
        }

    def to_json(self) -> dict[str, Any]:
        """What the run record keeps, so results, collect and retry find the rows again."""
        return {
            "bucket": self.data.bucket,
            "prefix": self.data.prefix,
            "access": self.data.access,
            "runId": self.run_id,
            "rows": self.rows,
            "perTask": self.per_task,
            "pieceRows": self.piece_rows,
            "columns": list(self.columns),
            "key": self.key_column,
            "inputs": list(self.inputs),
            "tasksUri": self.tasks_uri,
            "outputsUri": self.outputs_uri,
            "rowsUri": self.rows_uri,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sweep:
        location = DataLocation(data["bucket"], data["prefix"], data["access"])
        columns = tuple(data["columns"])
        return cls(
            location,
            data["runId"],
            int(data["rows"]),
            int(data["perTask"]),
            columns,
            data.get("key", ""),
            tuple(data.get("inputs") or ()),
        )


def plan_sweep(
    table: TaskTable,
    outputs: StackOutputs,
    run_id: str,
    per_task: int,
    key: str | None = None,
    inputs: Sequence[str] = (),
) -> Sweep:
    """Check the stack can take the sweep, before anything is uploaded or submitted."""
    if not 1 <= per_task <= MAX_PER_TASK:
        raise InvalidInputError(f"--per-task {per_task} is out of range; use 1 to {MAX_PER_TASK:,}")
    if outputs.data is None:
        raise InvalidInputError(
            f"stack '{outputs.stack}' has no data bucket for the table and outputs; set "
            f"batch-stacks:data.bucket in Pulumi.{outputs.stack}.yaml and run `pulumi up`"
        )
    if not outputs.data.writable:
        raise InvalidInputError(
            f"stack '{outputs.stack}' may only read its data bucket (data.access: read), so tasks "
            "could not upload their outputs; use a stack with data.access: read-write"
        )
    key_column = table.key_column(key)
    return Sweep(outputs.data, run_id, len(table), per_task, table.columns, key_column, tuple(inputs))


def pieces(table: TaskTable, sweep: Sweep) -> list[bytes]:
    """The table as JSON Lines, ``sweep.piece_rows`` rows a piece."""
    size = sweep.piece_rows
    return [
        "".join(
            json.dumps(row, ensure_ascii=False) + "\n" for row in table.rows[start : start + size]
        ).encode()
        for start in range(0, len(table), size)
    ]


def upload_table(s3: Any, table: TaskTable, sweep: Sweep) -> int:
    """Put the table's pieces in the data bucket; returns how many (one PutObject each)."""
    return len(put_pieces(s3, sweep.data.bucket, sweep.tasks_key, pieces(table, sweep)))


def submit_sweep(
    batch: Any,
    s3: Any,
    store: RunStore,
    options: SubmitOptions,
    table: TaskTable,
    outputs: StackOutputs,
    *,
    per_task: int,
    now: datetime,
    key: str | None = None,
    code: Path | None = None,
    inputs: Sequence[str] = (),
    check_inputs_exist: bool = True,
    python: str = IMAGE_PYTHON,
    depends_on_job_ids: Sequence[str] = (),
    endpoint_url: str | None = None,
    emulator: str | None = None,
    limiter: RateLimiter | None = None,
    input_base: Path | None = None,
    uploads: Callable[[list[LocalInput]], list[LocalInput]] | None = None,
) -> RunRecord:
    """Check everything, upload the package and the table, record the run, then submit its tasks.

    The command runs once per row: ``--command`` when given, else the job definition's; the
    container runs the launcher (shipped in the run's package, with ``--code`` if given), which
    reads its rows, stages their inputs and runs it. Every mistake that can be seen here is one
    line before anything is uploaded or submitted.
    """
    run_id = new_run_id(now)
    sweep = plan_sweep(table, outputs, run_id, per_task, key, inputs)
    if options.array_size is not None and options.array_size != sweep.tasks:
        raise InvalidInputError(
            f"--array {options.array_size} disagrees with --tasks: {len(table):,} rows at --per-task "
            f"{per_task} make {sweep.tasks:,} tasks; drop --array"
        )
    # Local files and folders named by the input columns: found and hashed now, sent below.
    local = find_local_inputs(table, inputs, input_base or Path.cwd(), sweep.key_column) if inputs else {}
    table = with_addresses(table, inputs, local, sweep.data)
    staged = staged_inputs(table, inputs, sweep.data, sweep.key_column) if inputs else []
    row_command = shlex.split(options.command) if options.command else definition_command(batch, outputs)
    if not row_command:
        raise InvalidInputError("the job definition has no command to run per row; pass --command")
    launch = plan_launch(outputs, code, python)
    asked = replace(options, array_size=sweep.tasks if sweep.tasks > 1 else None)
    record = prepare_run(
        batch,
        asked,
        outputs,
        now=now,
        run_id=run_id,
        depends_on_job_ids=depends_on_job_ids,
        endpoint_url=endpoint_url,
        emulator=emulator,
        container_command=launch.command(),
        system_env={**sweep.environment(), **launch.environment(row_command)},
    )
    uploaded_uris = {item.uri(sweep.data) for item in local.values()}
    if staged and check_inputs_exist:
        check_inputs(s3, [item for item in staged if item.uri not in uploaded_uris])
    if local:
        send = uploads or (lambda items: upload_inputs(s3, sweep.data, items))
        send(list(local.values()))
    uploaded = launch.upload(s3)
    upload_table(s3, table, sweep)
    record.sweep = sweep.to_json()
    record.code = launch.record(uploaded)
    store.save(record)
    return submit_shards(batch, store, record, limiter or RateLimiter())
