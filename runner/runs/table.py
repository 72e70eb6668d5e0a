"""A sweep's table: one row per task (or per item of a chunked task), read and checked whole.

CSV and TSV take their column names from the header line; JSON Lines from each object's keys.
Values are kept as they were (CSV: strings; JSON Lines: any JSON value), so ``RUNNER_ROW_FILE``
holds objects as objects; each reaches the task's environment as a string: JSON strings as they
are, other JSON values as their JSON text. Every mistake is one line naming the file, the line and
the rule, before anything is uploaded or submitted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, get_args

from runner.aws.data_store import read_object
from runner.errors import InvalidInputError
from runner.runs.variables import column_problem

TableFormat = Literal["csv", "tsv", "jsonl"]
FORMATS: tuple[TableFormat, ...] = get_args(TableFormat)
EXTENSIONS: dict[str, TableFormat] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
MAX_ROWS = 1_000_000
# Linux's limit on one environment variable (MAX_ARG_STRLEN): a longer value could never reach
# the task's command, so it is refused here rather than failing its row.
MAX_VALUE_BYTES = 128 * 1024
# What the CSV reader accepts in one field before the size check names the real limit.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024

Row = dict[str, Any]


@dataclass(frozen=True)
class TaskTable:
    """The rows of a sweep, in file order: row ``r`` is logical row ``r``."""

    source: str
    columns: tuple[str, ...]  # CSV/TSV header, or every key seen in JSON Lines, first seen first
    rows: list[Row]

    def __len__(self) -> int:
        return len(self.rows)

    def key_column(self, given: str | None) -> str:
        """The column that names rows: ``--key``, checked, else the first column."""
        if given is None:
            return self.columns[0]
        if given not in self.columns:
            raise InvalidInputError(
                f"--key {given}: {self.source} has no such column; use one of {', '.join(self.columns)}"
            )
        return given


def table_format(source: str, given: str | None) -> TableFormat:
    """The format from ``--format``, else from the file's extension."""
    if given is not None:
        return given  # type: ignore[return-value]  # click's Choice already checked it
    for extension, kind in EXTENSIONS.items():
        if source.lower().endswith(extension):
            return kind
    raise InvalidInputError(
        f"--tasks {source}: cannot tell the format from the name; name it .csv, .tsv or .jsonl, "
        "or pass --format csv|tsv|jsonl"
    )


def _text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InvalidInputError(
            f"--tasks {source}: line {line} is not UTF-8 text (byte {err.start}); save the table as UTF-8"
        ) from None


def _check_names(names: list[str], source: str, where: str) -> None:
    seen: set[str] = set()
    for name in names:
        problem = column_problem(name)
        if problem:
            raise InvalidInputError(f"--tasks {source}: {where} {name[:40]!r} {problem}")
        if name in seen:
            raise InvalidInputError(f"--tasks {source}: {where} {name!r} appears twice; names must be unique")
        seen.add(name)


def env_text(value: object) -> str:
    """A value as its row's environment variable holds it: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _check_sizes(row: Row, source: str, line: int) -> None:
    for name, value in row.items():
        size = len(env_text(value).encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise InvalidInputError(
                f"--tasks {source}: line {line}: the value of {name} is {size:,} bytes, over the "
                f"{MAX_VALUE_BYTES:,} bytes one environment variable can hold; put large data in a file "
                "(e.g. on S3) and give its address in the table"
            )


def _too_many(source: str) -> InvalidInputError:
    return InvalidInputError(
        f"--tasks {source}: more than {MAX_ROWS:,} rows; split the table into several runs"
    )


def _delimited(text: str, source: str, delimiter: str) -> TaskTable:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or header == []:
            raise InvalidInputError(f"--tasks {source} is empty; give a header line and one row per task")
        header = [name.strip() for name in header]
        _check_names(header, source, "column")
        rows: list[Row] = []
        line = reader.line_num + 1
        for fields in reader:
            if fields == []:  # a blank line
                line = reader.line_num + 1
                continue
            if len(fields) != len(header):
                raise InvalidInputError(
                    f"--tasks {source}: line {line} has {len(fields)} field(s); the header has "
                    f"{len(header)} (quote values that hold the delimiter)"
                )
            rows.append(dict(zip(header, fields, strict=True)))
            _check_sizes(rows[-1], source, line)
            if len(rows) > MAX_ROWS:
                raise _too_many(source)
            line = reader.line_num + 1
    except csv.Error as err:
        raise InvalidInputError(f"--tasks {source}: line {reader.line_num}: {err}; fix the quoting") from None
    if not rows:
        raise InvalidInputError(f"--tasks {source} has a header but no rows; add one row per task")
    return TaskTable(source, tuple(header), rows)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _json_lines(text: str, source: str) -> TaskTable:
    rows: list[Row] = []
    columns: dict[str, None] = {}
    for number, line in _lines(text):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"--tasks {source}: line {number} is not JSON ({err.msg})") from None
        if not isinstance(value, dict):
            raise InvalidInputError(
                f"--tasks {source}: line {number} is not a JSON object; each line is one row, "
                'e.g. {"sample": "a", "depth": 30}'
            )
        _check_names(list(value), source, f"line {number}: key")
        rows.append(value)
        _check_sizes(value, source, number)
        columns.update(dict.fromkeys(value))
        if len(rows) > MAX_ROWS:
            raise _too_many(source)
    if not rows:
        raise InvalidInputError(f"--tasks {source} is empty; give one JSON object per line, one per task")
    return TaskTable(source, tuple(columns), rows)


def parse_table(data: bytes, source: str, kind: TableFormat) -> TaskTable:
    """The table in ``data``, checked whole; a UTF-8 BOM and CRLF line ends are fine."""
    text = _text(data, source)
    if not text.strip():
        raise InvalidInputError(f"--tasks {source} is empty; give a header line and one row per task")
    if kind == "jsonl":
        return _json_lines(text, source)
    return _delimited(text, source, "," if kind == "csv" else "\t")


def read_table(source: str, given: str | None, *, stdin: BinaryIO, s3: Callable[[], Any]) -> TaskTable:
    """The table at ``source``: a local file, ``s3://bucket/key``, or ``-`` for standard input."""
    if source == "-":
        if given is None:
            raise InvalidInputError(
                "--tasks - reads standard input; say its format with --format csv|tsv|jsonl"
            )
        return parse_table(stdin.read(), "<stdin>", given)  # type: ignore[arg-type]
    kind = table_format(source, given)
    if source.startswith("s3://"):
        return parse_table(read_object(s3(), source), source, kind)
    try:
        data = Path(source).expanduser().read_bytes()
    except FileNotFoundError:
        raise InvalidInputError(f"--tasks {source}: no such file") from None
    except OSError as err:
        raise InvalidInputError(f"--tasks {source} cannot be read: {err.strerror or err}") from None
    return parse_table(data, source, kind)
