"""The one place boto3 clients are made and AWS errors become one-line RunnerErrors.

boto3 and botocore load on the first client or the first error, never on import: the CLI's
``--help`` and option parsing do not pay for them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from runner.errors import AwsError

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 6.0
MAX_ATTEMPTS = 4


@functools.cache
def client_config() -> Any:
    """Adaptive mode retries throttling (429, TooManyRequests) with client-side rate limiting. The
    timeouts and attempts bound a dead or silent endpoint to about 30 s before one clear line."""
    from botocore.config import Config

    return Config(
        retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent_extra="batch-stacks-runner",
    )


# Without the emulator's own keys: fixed dummy ones, so real credentials never reach it.
LOCAL_CREDENTIALS = ("testing", "testing")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
    }
)
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "ServerException",
    }
)


@dataclass(frozen=True)
class AwsTarget:
    """Where calls go: a region, and an endpoint only for the local emulator.

    Without an endpoint boto3 uses the standard chain, which honours ``AWS_ENDPOINT_URL``.
    """

    region: str
    endpoint_url: str | None = None
    # The emulator's own keys (only its owner can read them); never real credentials.
    credentials: tuple[str, str] | None = field(default=None, compare=False, repr=False)
    # Which local stack answers at the endpoint (its identity): what a local run records.
    emulator: str | None = field(default=None, compare=False)

    def client(self, service: str) -> Any:
        import boto3

        kwargs: dict[str, Any] = {"region_name": self.region, "config": client_config()}
        if self.endpoint_url:
            access, secret = self.credentials or LOCAL_CREDENTIALS
            kwargs.update(
                endpoint_url=self.endpoint_url, aws_access_key_id=access, aws_secret_access_key=secret
            )
        return boto3.session.Session().client(service, **kwargs)


def is_loopback(endpoint_url: str | None) -> bool:
    return bool(endpoint_url) and urlparse(endpoint_url).hostname in LOOPBACK_HOSTS


def unreachable(endpoint_url: str | None, what: str) -> AwsError:
    """The line for an endpoint that refused or never answered, naming the likely cause."""
    if is_loopback(endpoint_url):
        return AwsError(
            f"the local emulator at {endpoint_url} {what}; it is not running or has hung: "
            "restart it with `runner local down` and `runner local up`",
            transient=True,
        )
    where = endpoint_url or "the AWS endpoint"
    return AwsError(
        f"{where} {what}; check your network, VPN or proxy, and AWS_ENDPOINT_URL if set",
        transient=True,
    )


# S3's answers a caller acts on: the object is not there; a conditional write lost (If-Match,
# If-None-Match); the caller may not.
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
PRECONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
DENIED_CODES = frozenset({"AccessDenied", "403"})


def error_code(err: Exception) -> str:
    """An AWS error's code (``""`` for anything that is not a refusal AWS sent)."""
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))


def client_errors() -> tuple[type[Exception], ...]:
    """botocore's ClientError and BotoCoreError: what an AWS call raises (loads botocore)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore failures into AwsError with a line saying what to do."""
    try:
        yield
    except Exception as err:
        line = one_line(err)
        if line is None:
            raise
        raise line from None


def one_line(err: Exception) -> AwsError | None:
    """A botocore failure as the AwsError that says what to do; None for anything else."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return AwsError(
            "no AWS credentials found; run `aws configure` or `aws sso login`, "
            "or set AWS_PROFILE (or use --local for the emulator)"
        )
    if isinstance(err, NoRegionError):
        return AwsError("no AWS region; the stack outputs should name one")
    if isinstance(err, (ConnectionError, ReadTimeoutError, ConnectionClosedError)):
        # Refused, DNS, connect or read timeout, dropped: botocore has retried already.
        url = urlparse(str(err.kwargs.get("endpoint_url") or ""))
        endpoint = f"{url.scheme}://{url.netloc}" if url.netloc else None
        timed_out = isinstance(err, ReadTimeoutError)
        what = (
            f"did not answer within {READ_TIMEOUT:g} s ({MAX_ATTEMPTS} tries)"
            if timed_out
            else ("cannot be reached")
        )
        return unreachable(endpoint, what)
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = error.get("Code", "Error")
        message = " ".join(str(error.get("Message", "")).split())
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in CREDENTIAL_CODES:
            return AwsError(f"AWS rejected the credentials ({code}); refresh them and retry")
        if code in {"AccessDeniedException", "AccessDenied"}:
            return AwsError(f"access denied: {message}; ask for the missing permission")
        transient = code in THROTTLING_CODES or status >= 500
        return AwsError(f"AWS {err.operation_name} failed ({code}): {message}", transient=transient)
    if isinstance(err, BotoCoreError):
        return AwsError(f"AWS call failed: {err}")
    return None
