"""A sweep's objects in the stack's data bucket: the table's pieces, and each row's outputs.

What lives where is ``runner/runs/rows.py``'s; here are the calls. Listing is paged (1,000 keys a
call), never a call per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from runner.aws.clients import aws_errors
from runner.errors import InvalidInputError, RunnerError

PIECE_NAME = "piece-{:05d}.jsonl"


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` to (bucket, key)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InvalidInputError(f"{uri} is not an s3://bucket/key address")
    return parsed.netloc, parsed.path.lstrip("/")


def get_body(s3: Any, bucket: str, key: str) -> bytes:
    """A whole object's bytes; AWS's refusals as the runner's errors."""
    with aws_errors():
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def read_object(s3: Any, uri: str) -> bytes:
    """A whole object (a table given as ``s3://``), or one line saying why it cannot be read."""
    try:
        return get_body(s3, *split_uri(uri))
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


def list_keys(s3: Any, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """Every key under ``prefix`` (relative to it) with its size, 1,000 a call."""
    paginator = s3.get_paginator("list_objects_v2")
    with aws_errors():
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}):
            for item in page.get("Contents") or []:
                yield item["Key"][len(prefix) :], int(item["Size"])


def read_json(s3: Any, bucket: str, key: str) -> Any:
    """One JSON object; one line naming the key when it is not JSON."""
    try:
        return json.loads(get_body(s3, bucket, key))
    except ValueError:
        raise RunnerError(f"s3://{bucket}/{key} is not valid JSON") from None


def read_json_lines(s3: Any, bucket: str, key: str) -> list[Any]:
    """A JSON Lines object (a table's piece), a value per line."""
    lines = get_body(s3, bucket, key).decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
