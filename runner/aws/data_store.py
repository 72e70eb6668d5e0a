"""A sweep's objects in the stack's data bucket: the table's pieces, and each row's outputs.

Layout under ``s3://<bucket>/<prefix><run id>/``: ``tasks/piece-00000.jsonl`` (at most 1,000 rows
each) and ``out/<row>/<relative path>``. Listing is paged (1,000 keys a call), never a call per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from runner.aws.clients import aws_errors
from runner.errors import InvalidInputError, RunnerError

PIECE_NAME = "piece-{:05d}.jsonl"


@dataclass(frozen=True)
class OutputObject:
    """One file a row's task uploaded."""

    row: int
    key: str
    relative: str  # its path under the row's output folder
    size: int


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` to (bucket, key)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InvalidInputError(f"{uri} is not an s3://bucket/key address")
    return parsed.netloc, parsed.path.lstrip("/")


def read_object(s3: Any, uri: str) -> bytes:
    """A whole object (a table given as ``s3://``), or one line saying why it cannot be read."""
    bucket, key = split_uri(uri)
    try:
        with aws_errors():
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except RunnerError as err:
        raise InvalidInputError(f"--tasks {uri} cannot be read: {err}") from None


def put_pieces(s3: Any, bucket: str, prefix: str, pieces: list[bytes]) -> list[str]:
    """Upload the table's pieces under ``prefix``; one PutObject each. Returns their keys."""
    keys = []
    with aws_errors():
        for number, body in enumerate(pieces):
            key = prefix + PIECE_NAME.format(number)
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
            keys.append(key)
    return keys


def output_objects(s3: Any, bucket: str, prefix: str) -> Iterator[OutputObject]:
    """Every object under ``<prefix><row>/``, page by page."""
    paginator = s3.get_paginator("list_objects_v2")
    with aws_errors():
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}):
            for item in page.get("Contents") or []:
                row, _, relative = item["Key"][len(prefix) :].partition("/")
                if row.isdigit() and relative:
                    yield OutputObject(int(row), item["Key"], relative, int(item["Size"]))


def row_outputs(s3: Any, bucket: str, prefix: str) -> dict[int, tuple[int, int]]:
    """Per row that has outputs: (files, bytes)."""
    found: dict[int, tuple[int, int]] = {}
    for obj in output_objects(s3, bucket, prefix):
        files, size = found.get(obj.row, (0, 0))
        found[obj.row] = (files + 1, size + obj.size)
    return found
