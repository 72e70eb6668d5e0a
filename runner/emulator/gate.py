"""What answers before moto does: who may call Batch, and AWS's error shape for what moto lacks.

AWS answers a Batch request with no signature ``MissingAuthenticationTokenException`` and one
signed with keys it does not know ``UnrecognizedClientException`` (both 403, JSON), and creates
nothing. moto's server routes an unsigned request to its S3 handler (an HTML page) and takes any
keys; this WSGI layer gives AWS's answers instead, and a ``ClientException`` naming a Batch
operation that moto does not implement, where moto would fail with a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from moto.batch.responses import BatchResponse

# Batch's REST paths: /v1/<operation> (and /v1/tags/<arn> for tagging).
_BATCH_PATH = re.compile(r"^/v1/(?P<operation>[a-z]+)(?:/|$)")
_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/[^/]+/(?P<service>[^/]+)/")

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def error(start_response: StartResponse, status: str, error_type: str, message: str) -> list[bytes]:
    """An error as a REST-JSON AWS service sends it: the type in a header and in the body."""
    body = json.dumps({"__type": error_type, "message": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", error_type),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def batch_operation(environ: dict[str, Any], credential: re.Match[str] | None) -> str | None:
    """The Batch operation a request asks for, or None when it is not a Batch request."""
    match = _BATCH_PATH.match(environ.get("PATH_INFO", ""))
    if not match:
        return None
    if credential and credential["service"] != "batch":
        return None  # another service's path that happens to look like Batch's (an S3 key)
    return match["operation"]


def gate(
    app: App, access_key: Callable[[], str | None], other_keys: Callable[[str], bool] = lambda _: False
) -> App:
    """Wrap moto's WSGI app: Batch requests must be signed with the emulator's own access key, with
    the keys of an IAM user its owner made, or with a task's role keys (which IAM then holds to the
    role's policies); IAM requests (who may sign) with the owner's only."""

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        credential = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        expected = access_key()
        if credential and credential["service"] == "iam" and expected and credential["key"] != expected:
            return error(
                start_response,
                "403 Forbidden",
                "AccessDenied",
                "only the emulator's owner may change its IAM (sign with the keys `runner local env` prints)",
            )
        operation = batch_operation(environ, credential)
        if operation is None:
            return app(environ, start_response)
        if credential is None:
            return error(
                start_response,
                "403 Forbidden",
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            )
        if expected is not None and credential["key"] != expected and not other_keys(credential["key"]):
            return error(
                start_response,
                "403 Forbidden",
                "UnrecognizedClientException",
                "The security token included in the request is invalid "
                "(sign with the keys `runner local env` prints)",
            )
        if not hasattr(BatchResponse, operation):
            return error(
                start_response,
                "400 Bad Request",
                "ClientException",
                f"the operation behind /v1/{operation} is not supported by the emulator",
            )
        return app(environ, start_response)

    return guarded
