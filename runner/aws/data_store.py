"""A sweep's objects in the stack's data bucket: the table's pieces, and each row's outputs.

What lives where is ``runner/runs/rows.py``'s; here are the calls. Listing is paged (1,000 keys a
call), never a call per row.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from runner.aws.clients import NOT_FOUND_CODES, PRECONDITION_CODES, aws_errors, error_code
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
    """Upload the table's pieces under ``prefix``; one PutObject each, each with If-None-Match, so
    a run whose id is taken can never overwrite another run's table. Returns their keys."""
    from botocore.exceptions import ClientError

    keys = []
    with aws_errors():
        for number, body in enumerate(pieces):
            key = prefix + PIECE_NAME.format(number)
            try:
                s3.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson", IfNoneMatch="*"
                )
            except ClientError as err:
                if error_code(err) in PRECONDITION_CODES:
                    raise RunnerError(
                        f"s3://{bucket}/{key} exists already: another run has this run's id; submit again"
                    ) from None
                raise
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


def _holds(head: dict[str, Any], body: bytes) -> bool:
    """Whether a HeadObject answer is for exactly ``body``: its SHA-256 checksum (sent with every
    upload), else (an object put without one) its single-part ETag, the MD5 of the bytes."""
    if int(head.get("ContentLength", -1)) != len(body):
        return False
    checksum = head.get("ChecksumSHA256")
    if checksum:
        return bool(checksum == _sha256_base64(body))
    return str(head.get("ETag", "")).strip('"') == hashlib.md5(body, usedforsecurity=False).hexdigest()


def _sha256_base64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def put_if_absent(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> bool:
    """Upload a content-addressed object unless the bucket holds these very bytes; returns whether
    it was sent.

    One HeadObject; when absent, a PutObject with If-None-Match: * so two submits racing to upload
    the same bytes leave one object and neither fails. An object at the key that is not these bytes
    (replaced, or cut short by hand) is overwritten, so submitting again repairs it.
    """
    from botocore.exceptions import ClientError

    with aws_errors():
        try:
            head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as err:
            if error_code(err) not in NOT_FOUND_CODES:
                raise
            head = None
    if head is not None and _holds(head, body):
        return False
    condition = {"IfNoneMatch": "*"} if head is None else {"IfMatch": str(head.get("ETag", ""))}
    with aws_errors():
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ChecksumSHA256=_sha256_base64(body),
                **condition,
            )
        except ClientError as err:
            if error_code(err) in PRECONDITION_CODES:
                return False  # the same digest landed (or was repaired) meanwhile: the same bytes
            raise
    return True


def list_folder(s3: Any, bucket: str, folder: str, first: str, last: str) -> set[str]:
    """The names directly in ``folder`` (keys, and sub-folders ending in ``/``) from ``first`` to
    ``last`` (full keys, in S3's order): one ListObjectsV2 with a ``/`` delimiter per 1,000 names,
    starting just before ``first`` and stopping once past ``last``."""
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": folder, "Delimiter": "/", "MaxKeys": 1000}
    if len(first) > len(folder) + 1:
        params["StartAfter"] = first[:-1]  # a key just before ``first`` (and after the folder)
    names: set[str] = set()
    with aws_errors():
        while True:
            page = s3.list_objects_v2(**params)
            found = [item["Key"] for item in page.get("Contents") or []]
            found += [item["Prefix"] for item in page.get("CommonPrefixes") or []]
            names.update(found)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token or (found and max(found) >= last):
                return names
            params["ContinuationToken"] = token
            params.pop("StartAfter", None)
