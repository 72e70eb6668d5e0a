"""What answers before moto does: who may call the emulator at all, and AWS's error shape for what
moto lacks.

AWS refuses a request with no signature (``MissingAuthenticationTokenException``), one whose
Authorization header is not SigV4 (``IncompleteSignatureException``) and one signed with keys it
does not know (``UnrecognizedClientException``; S3: ``InvalidAccessKeyId``), and creates nothing.
moto's server takes all three. This WSGI layer refuses them, and decides which service a request is
for exactly as moto will route it (moto's own dispatcher answers), so no header can be read one way
here and another way there. The signature itself is then verified by moto, on every request
(``runner.emulator.iam``).

Rules, in order:
- moto's own API (``/moto-api/``: reset, seed, a dump of every backend with its secrets) is closed
  but for reading its config (``runner local up`` asks it whether the emulator answers); the
  conformance suite, which resets moto between tests, opens it with ``RUNNER_EMULATOR_MOTO_API=1``.
- EC2 instance metadata is not served: a task's keys come from its job role, the ECS way.
- every other request carries one well-formed SigV4 Authorization header, signed with keys the
  emulator knows: its owner's, those of an IAM user the owner made, or keys its STS issued (a
  task's role keys). Only the owner's may call IAM.
- a Batch operation moto does not implement is a ``ClientException`` naming it, not a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from moto.batch.responses import BatchResponse

from runner.emulator.iam import JSON_SERVICES

# Batch's REST paths: /v1/<operation> (and /v1/tags/<arn> for tagging).
_BATCH_PATH = re.compile(r"/v1/(?P<operation>[a-z]+)(?:/.*)?")
# One SigV4 Authorization header, whole: moto reads the scope up to the first comma, this reads
# all of it, and anything that is not exactly this shape is refused.
SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Za-z0-9]{1,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]{1,32})/"
    r"(?P<service>[a-z0-9-]{1,64})/aws4_request, ?SignedHeaders=(?P<headers>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
CONFIG_PATH = "/moto-api/config"

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def error(
    start_response: StartResponse, status: str, error_type: str, message: str, service: str = "batch"
) -> list[bytes]:
    """An error as the service would send it: JSON with the type in a header (REST-JSON), an S3
    ``<Error>`` document, EC2's ``<Response>`` or the query protocol's ``<ErrorResponse>``."""
    headers = [("x-amzn-ErrorType", error_type)]
    if service in JSON_SERVICES:
        body = json.dumps({"__type": error_type, "message": message}).encode()
        headers.append(("Content-Type", "application/json"))
    else:
        inner = f"<Error><Code>{escape(error_type)}</Code><Message>{escape(message)}</Message></Error>"
        if service == "ec2":
            inner = f"<Response><Errors>{inner}</Errors><RequestID>0</RequestID></Response>"
        elif service != "s3":
            inner = f"<ErrorResponse>{inner}<RequestId>0</RequestId></ErrorResponse>"
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n{inner}'.encode()
        headers.append(("Content-Type", "application/xml"))
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def routed_service(dispatcher: Any, environ: dict[str, Any]) -> str:
    """The moto backend this request will reach, as moto's own dispatcher decides it."""
    app = dispatcher.get_application(environ)
    return next((name for name, known in dispatcher.app_instances.items() if known is app), "unknown")


def _unknown_key(service: str) -> tuple[str, str]:
    if service == "s3":
        return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
    if service in JSON_SERVICES:
        return "UnrecognizedClientException", "The security token included in the request is invalid"
    return "InvalidClientTokenId", "The security token included in the request is invalid"


def gate(
    dispatcher: Any,
    owner_key: Callable[[], str | None],
    known_key: Callable[[str], bool],
    *,
    moto_api: bool = False,
    after_reset: Callable[[], None] = lambda: None,
) -> App:
    """Wrap moto's dispatcher (a WSGI app) with the rules above. ``known_key``: whether the
    emulator issued an access key id (its owner's excepted); ``after_reset`` runs after a moto
    reset (with ``moto_api``), so the owner stays a user of the emulator."""

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        authorization = environ.get("HTTP_AUTHORIZATION")
        credential = SIGV4.fullmatch(authorization.strip()) if authorization else None
        if authorization and credential is None:  # before routing: moto's router chokes on some
            return error(
                start_response,
                "403 Forbidden",
                "IncompleteSignatureException",
                "The Authorization header is not one well-formed AWS4-HMAC-SHA256 signature",
                "batch" if _BATCH_PATH.fullmatch(path) else "s3",
            )
        try:
            service = routed_service(dispatcher, environ)
        except Exception:  # moto's router failed on this request: it reaches no service
            return error(
                start_response, "400 Bad Request", "InvalidRequest", "no service takes this request", "s3"
            )
        if service == "moto_api":
            if moto_api:
                answer = dispatcher(environ, start_response)
                if path.startswith("/moto-api/reset"):
                    after_reset()
                return answer
            if path == CONFIG_PATH and environ.get("REQUEST_METHOD") == "GET":
                return dispatcher(environ, start_response)
            return error(
                start_response,
                "403 Forbidden",
                "AccessDenied",
                "moto's API is closed on this emulator (only GET /moto-api/config answers)",
                "s3",
            )
        if service == "instance_metadata":
            return error(
                start_response,
                "404 Not Found",
                "NotFound",
                "no instance metadata here: a task's keys are its job role's, at "
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "s3",
            )
        if credential is None:
            # Refused whatever it was for; a Batch path is answered in Batch's words (unsigned,
            # moto would have taken it for S3).
            if _BATCH_PATH.fullmatch(path):
                service = "batch"
            return error(
                start_response,
                "403 Forbidden",
                "MissingAuthenticationTokenException" if service in JSON_SERVICES else "AccessDenied",
                "Missing Authentication Token (sign requests with SigV4; presigned URLs are not "
                "served by the emulator)",
                service,
            )
        key, owner = credential["key"], owner_key()
        if owner is not None and key != owner and not known_key(key):
            code, message = _unknown_key(service)
            return error(
                start_response,
                "403 Forbidden",
                code,
                f"{message} (sign with the keys `runner local env` prints)",
                service,
            )
        if service == "iam" and owner is not None and key != owner:
            return error(
                start_response,
                "403 Forbidden",
                "AccessDenied",
                "only the emulator's owner may call its IAM (sign with the keys `runner local env` prints)",
                service,
            )
        if service == "batch":
            match = _BATCH_PATH.fullmatch(path)
            if match is None or not hasattr(BatchResponse, match["operation"]):
                behind = f"/v1/{match['operation']}" if match else path
                return error(
                    start_response,
                    "400 Bad Request",
                    "ClientException",
                    f"the operation behind {behind} is not supported by the emulator",
                )
        return dispatcher(environ, start_response)

    return guarded
