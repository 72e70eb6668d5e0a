"""Local files and folders as a sweep's inputs: uploaded once, by content, into the stack's bucket.

A ``--input`` column may name a local file or folder instead of an ``s3://`` address (relative to
the table's folder, or to where you are for a table on standard input or in S3). Before anything is
submitted each one is found and hashed; then each is uploaded under the data prefix, named by its
content, and the table's value becomes its address:

    <prefix>local-inputs/<digest>/<name>           a file (the SHA-256 of its name and bytes)
    <prefix>local-inputs/<digest>/<name>/...       a folder (the digest of its names and bytes)
    <prefix>local-inputs/<digest>.complete         written last: the folder is whole

So an unchanged file or folder is never sent again (one listing of ``local-inputs/`` tells, 1,000
names a call), the same bytes used by two rows or two runs are stored once, and a folder cut short
(Ctrl-C, a lost connection) is never taken for complete. The launcher stages them as any address.
The same runs against AWS and the emulator.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.aws.clients import aws_errors
from runner.aws.data_store import list_folder
from runner.aws.stack_outputs import DataLocation
from runner.errors import InvalidInputError
from runner.runs.table import TaskTable

FOLDER = "local-inputs/"
COMPLETE = ".complete"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class InputFile:
    relative: str  # its name under the input (a file input: its own name)
    path: Path
    size: int


@dataclass(frozen=True)
class LocalInput:
    """One local file or folder a table names, hashed."""

    path: Path
    folder: bool
    digest: str
    files: tuple[InputFile, ...]

    @property
    def name(self) -> str:
        return self.path.name

    def key(self, data: DataLocation) -> str:
        """The object (a file) or the folder (ending in ``/``) its rows read."""
        return data.key(FOLDER, self.digest, "/", self.name, "/" if self.folder else "")

    def marker(self, data: DataLocation) -> str:
        return data.key(FOLDER, self.digest, COMPLETE)

    def uri(self, data: DataLocation) -> str:
        return f"s3://{data.bucket}/{self.key(data)}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _folder_files(folder: Path, where: str) -> list[InputFile]:
    files = []
    for top, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(top, name)
            relative = path.relative_to(folder).as_posix()
            if not path.is_file():  # a link to nothing, a socket
                raise InvalidInputError(f"{where}: {path} is not a file; remove it or copy the file in")
            files.append(InputFile(relative, path, path.stat().st_size))
    if not files:
        raise InvalidInputError(f"{where}: the folder {folder} is empty; give it the files its rows read")
    return files


def hash_input(path: Path, where: str) -> LocalInput:
    """A file or folder, hashed; one line when it cannot be read."""
    try:
        # The name is part of what is stored (rows read it by name): the same bytes under two
        # names are two inputs.
        digest = hashlib.sha256(f"{path.name}\0".encode())
        if path.is_dir():
            files = _folder_files(path, where)
            for file in files:
                digest.update(f"{file.relative}\0{file.size}\0{_sha256(file.path)}\0".encode())
            return LocalInput(path, True, digest.hexdigest(), tuple(files))
        if path.is_file():
            digest.update(_sha256(path).encode())
            return LocalInput(
                path, False, digest.hexdigest(), (InputFile(path.name, path, path.stat().st_size),)
            )
    except OSError as err:
        raise InvalidInputError(f"{where}: {path} cannot be read ({err.strerror})") from None
    raise InvalidInputError(
        f"{where}: {path} does not exist; fix the table or the path (nothing was uploaded)"
    )


def find_local_inputs(
    table: TaskTable, columns: Sequence[str], base: Path, key_column: str
) -> dict[str, LocalInput]:
    """Every local path the input columns name (values not ``s3://``), found and hashed, by value."""
    found: dict[str, LocalInput] = {}
    for row, values in enumerate(table.rows):
        for column in columns:
            value = values.get(column)
            if not isinstance(value, str) or not value or value.startswith("s3://") or value in found:
                continue
            where = f"--input {column}: row {row} ({key_column} {values.get(key_column, row)})"
            found[value] = hash_input((base / Path(value).expanduser()).absolute(), where)
    return found


def with_addresses(
    table: TaskTable, columns: Sequence[str], found: dict[str, LocalInput], data: DataLocation
) -> TaskTable:
    """The table with each local path replaced by the address it is uploaded to."""
    if not found:
        return table
    wanted = set(columns)
    rows = [
        {
            name: found[value].uri(data)
            if name in wanted and isinstance(value, str) and value in found
            else value
            for name, value in values.items()
        }
        for values in table.rows
    ]
    return replace(table, rows=rows)


def upload_inputs(
    s3: Any,
    data: DataLocation,
    inputs: Iterable[LocalInput],
    *,
    on_plan: Callable[[int, int], None] = lambda _files, _bytes: None,
    on_bytes: Callable[[int], None] = lambda _bytes: None,
) -> list[LocalInput]:
    """Upload what the bucket does not have whole yet; returns what was sent. One listing of
    ``local-inputs/`` per 1,000 names says what is there."""
    distinct = {item.digest: item for item in inputs}
    if not distinct:
        return []
    folder = data.key(FOLDER)
    names = sorted(distinct)
    present = list_folder(s3, data.bucket, folder, folder + names[0], folder + names[-1] + "~")
    todo = []
    for digest, item in sorted(distinct.items()):
        whole = item.marker(data) if item.folder else data.key(FOLDER, digest, "/")
        if whole not in present:
            todo.append(item)
    on_plan(sum(len(item.files) for item in todo), sum(item.size for item in todo))
    with aws_errors():
        for item in todo:
            for file in item.files:
                key = item.key(data) + (file.relative if item.folder else "")
                s3.upload_file(str(file.path), data.bucket, key, Callback=on_bytes)
            if item.folder:  # last: only now is the folder whole
                s3.put_object(Bucket=data.bucket, Key=item.marker(data), Body=b"")
    return todo
