"""Staged inputs (``--input COLUMN``): a column of ``s3://`` addresses the launcher downloads into each
row's folder before its command runs.

Before anything is submitted every address is checked: well formed, inside what the stack's job
role may read, and present. Presence is checked by listing the folders the addresses share (1,000
names a call, from the first needed name to the last), never one call per object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner.aws.data_store import list_folder
from runner.aws.stack_outputs import DataLocation
from runner.errors import InvalidInputError, RunnerError
from runner.runs.table import TaskTable

SHOWN_MISSING = 5


@dataclass(frozen=True)
class StagedInput:
    row: int
    key: str  # the row's name (its key column's value)
    column: str
    uri: str

    @property
    def bucket(self) -> str:
        return self.uri[len("s3://") :].split("/", 1)[0]

    @property
    def object_key(self) -> str:
        rest = self.uri[len("s3://") :].split("/", 1)
        return rest[1] if len(rest) > 1 else ""

    @property
    def folder(self) -> str:
        """The folder whose listing shows this input: its parent (a folder input shows as a sub-folder)."""
        name = self.object_key.rstrip("/")
        return name.rsplit("/", 1)[0] + "/" if "/" in name else ""


def staged_inputs(
    table: TaskTable, columns: Sequence[str], data: DataLocation, key_column: str
) -> list[StagedInput]:
    """Every row's staged addresses, checked for form and for the job role's reach."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InvalidInputError(
            f"--input {missing[0]} is not a column of the table; its columns: {', '.join(table.columns)}"
        )
    if len(set(columns)) != len(columns):
        raise InvalidInputError("--input names a column twice; name each once")
    readable = data.readable
    staged = []
    for row, values in enumerate(table.rows):
        for column in columns:
            value = values.get(column)
            name = str(values.get(key_column, row))
            if not isinstance(value, str) or not value.startswith("s3://") or not value[5:].partition("/")[2]:
                raise InvalidInputError(
                    f"--input {column}: row {row} ({key_column} {name}) holds {value!r}, not an "
                    "s3://bucket/key address (or s3://bucket/folder/ for a folder), nor a local file or folder"
                )
            if not any(value.startswith(place) for place in readable):
                raise InvalidInputError(
                    f"--input {column}: row {row} ({key_column} {name}) reads {value}, which the stack's "
                    f"job role may not read (it reads {', '.join(readable)}); copy it there or add its "
                    "location to batch-stacks:data.inputs and run `pulumi up`"
                )
            staged.append(StagedInput(row, name, column, value))
    return staged


def missing_inputs(s3: Any, staged: Sequence[StagedInput]) -> list[StagedInput]:
    """The inputs S3 does not have, in row order: one listing per shared folder (1,000 names a call)."""
    by_folder: dict[tuple[str, str], list[StagedInput]] = defaultdict(list)
    for item in staged:
        by_folder[(item.bucket, item.folder)].append(item)
    absent = []
    for (bucket, folder), items in sorted(by_folder.items()):
        wanted = sorted({item.object_key for item in items})
        try:
            present = list_folder(s3, bucket, folder, wanted[0], wanted[-1])
        except RunnerError as err:
            raise RunnerError(
                f"the inputs in s3://{bucket}/{folder} cannot be checked: {err} "
                "(or skip the check with --no-input-check)"
            ) from None
        absent += [item for item in items if item.object_key not in present]
    return sorted(absent, key=lambda item: (item.row, item.column))


def check_inputs(s3: Any, staged: Sequence[StagedInput]) -> None:
    """One line naming the first rows whose inputs are missing; nothing is submitted."""
    absent = missing_inputs(s3, staged)
    if not absent:
        return
    shown = "; ".join(
        f"row {item.row} ({item.key}) {item.column} {item.uri}" for item in absent[:SHOWN_MISSING]
    )
    more = f" and {len(absent) - SHOWN_MISSING} more" if len(absent) > SHOWN_MISSING else ""
    raise InvalidInputError(
        f"{len(absent)} staged input{'s are' if len(absent) != 1 else ' is'} missing: {shown}{more}; "
        "fix the table (nothing was submitted)"
    )
