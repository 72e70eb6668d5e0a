"""Run records in the stack's data bucket, read and written with S3's conditional writes.

Layout under the data prefix (``s3://bucket/<prefix>``), beside each run's ``tasks/``, ``out/`` and
``rows/``:

    <run id>/run.json         the record: the run's JSON with "version"
    index/<run id>~<user>     an empty marker, written once when the run is first recorded

One listing of ``index/`` (1,000 names a call) names every run of the stack and who submitted it,
oldest first (run ids begin with their UTC time), so the newest runs are found without reading any
record, and ``--since`` starts the listing at that day.

A new record is written with ``If-None-Match: *``, a change with ``If-Match`` on the ETag it was
read at: of two writers racing, one wins and the other is told (``RecordConflict``), re-reads and
applies its change again. A PutObject is whole or absent, so a write cut short is never read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from infra.choices import RUN_INDEX_FOLDER, RUN_RECORD_NAME
from runner.aws.clients import DENIED_CODES, NOT_FOUND_CODES, PRECONDITION_CODES, aws_errors, error_code
from runner.aws.stack_outputs import DataLocation
from runner.errors import RunnerError, RunRecordError

RECORD_VERSION = 1
RECORD_NAME = RUN_RECORD_NAME
INDEX_FOLDER = RUN_INDEX_FOLDER
_USER_SAFE = re.compile(r"[^A-Za-z0-9._@+=-]+")
# A run id: its UTC second, then eight hex digits (32 random bits; four in records written before).
RUN_ID_PATTERN = r"\d{8}-\d{6}-(?:[0-9a-f]{4}|[0-9a-f]{8})"
_MARKER = re.compile(rf"(?P<run>{RUN_ID_PATTERN})~(?P<user>.+)")


class NewerRecordError(RunRecordError):
    """A record written by a newer batch-stacks: never to be replaced by this one's copy."""


class RecordConflict(RunnerError):
    """Someone else wrote the record since it was read (or created it first)."""


@dataclass(frozen=True)
class Indexed:
    """A run the stack's index names, and who submitted it."""

    run_id: str
    user: str


def user_key(user: str) -> str:
    """A user name as it may stand in a key."""
    return _USER_SAFE.sub("_", user) or "unknown"


class RunRecords:
    """One stack's run records in its data bucket."""

    def __init__(self, s3: Any, data: DataLocation) -> None:
        self.s3, self.data = s3, data

    def key(self, run_id: str) -> str:
        return self.data.key(run_id, "/", RECORD_NAME)

    def uri(self, run_id: str) -> str:
        return f"s3://{self.data.bucket}/{self.key(run_id)}"

    def read(self, run_id: str) -> tuple[dict[str, Any], str] | None:
        """The record's JSON and ETag; None when the bucket has none."""
        found = self.read_raw(run_id)
        if found is None:
            return None
        body, etag = found
        return self.parse(run_id, body), etag

    def read_raw(self, run_id: str) -> tuple[bytes, str] | None:
        """The record's bytes and ETag, unparsed; None when the bucket has none."""
        from botocore.exceptions import ClientError

        try:
            with aws_errors():
                try:
                    got = self.s3.get_object(Bucket=self.data.bucket, Key=self.key(run_id))
                except ClientError as err:
                    if error_code(err) in NOT_FOUND_CODES:
                        return None
                    raise
                body = got["Body"].read()
        except RunRecordError:
            raise
        except RunnerError as err:
            raise RunnerError(f"the run record {self.uri(run_id)} cannot be read: {err}") from None
        return body, str(got.get("ETag", ""))

    def parse(self, run_id: str, body: bytes) -> dict[str, Any]:
        where = self.uri(run_id)
        try:
            data = json.loads(body)
        except ValueError:
            raise RunRecordError(
                f"the run record {where} is not valid JSON; fix or remove it", None
            ) from None
        if not isinstance(data, dict):
            raise RunRecordError(f"the run record {where} is not a JSON object; fix or remove it", None)
        version = data.get("version", RECORD_VERSION)
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise NewerRecordError(
                f"the run record {where} was written by a newer batch-stacks (record version "
                f"{version}); upgrade the runner",
                None,
            )
        return data

    def create(self, run_id: str, data: dict[str, Any], user: str) -> str:
        """The run's first record (and its index marker); RecordConflict if one exists already."""
        etag = self._put(run_id, data, {"IfNoneMatch": "*"})
        marker = self.data.key(INDEX_FOLDER, f"{run_id}~{user_key(user)}")
        with aws_errors():
            self.s3.put_object(Bucket=self.data.bucket, Key=marker, Body=b"")
        return etag

    def remove(self, entry: Indexed) -> None:
        """Delete a run's record and its index marker (``runs --prune``, for a record no one can read)."""
        with aws_errors():
            self.s3.delete_object(Bucket=self.data.bucket, Key=self.key(entry.run_id))
            marker = self.data.key(INDEX_FOLDER, f"{entry.run_id}~{entry.user}")
            self.s3.delete_object(Bucket=self.data.bucket, Key=marker)

    def replace(self, run_id: str, data: dict[str, Any], etag: str) -> str:
        """The record as changed since it was read at ``etag``; RecordConflict if it changed since."""
        return self._put(run_id, data, {"IfMatch": etag})

    def _put(self, run_id: str, data: dict[str, Any], condition: dict[str, str]) -> str:
        from botocore.exceptions import ClientError

        body = json.dumps({**data, "version": RECORD_VERSION}, sort_keys=True).encode()
        with aws_errors():
            try:
                put = self.s3.put_object(
                    Bucket=self.data.bucket,
                    Key=self.key(run_id),
                    Body=body,
                    ContentType="application/json",
                    **condition,
                )
            except ClientError as err:
                if error_code(err) in PRECONDITION_CODES:
                    raise RecordConflict(f"run {run_id}'s record changed meanwhile") from None
                if error_code(err) in DENIED_CODES:
                    raise RunnerError(
                        f"you may not write run records to s3://{self.data.bucket}/{self.data.prefix} "
                        "(s3:PutObject); ask for write access to submit, retry or cancel (reading runs "
                        "needs only s3:GetObject and s3:ListBucket)"
                    ) from None
                raise
        return str(put.get("ETag", ""))

    def index(self, since: str = "") -> Iterator[Indexed]:
        """Every run the index names, oldest first, from run id ``since`` on (1,000 a call)."""
        prefix = self.data.key(INDEX_FOLDER)
        params: dict[str, Any] = {
            "Bucket": self.data.bucket,
            "Prefix": prefix,
            "PaginationConfig": {"PageSize": 1000},
        }
        if since:
            params["StartAfter"] = prefix + since
        with aws_errors():
            for page in self.s3.get_paginator("list_objects_v2").paginate(**params):
                for item in page.get("Contents") or []:
                    match = _MARKER.fullmatch(item["Key"][len(prefix) :])
                    if match:
                        yield Indexed(match["run"], match["user"])
