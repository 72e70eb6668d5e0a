"""The one place boto3 clients are made and AWS errors become one-line RunnerErrors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
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

from runner.errors import AwsError

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 6.0
MAX_ATTEMPTS = 4
# Adaptive mode retries throttling (429, TooManyRequests) with client-side rate limiting. The
# timeouts and attempts bound a dead or silent endpoint to about 30 s before one clear line.
CLIENT_CONFIG = Config(
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

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"region_name": self.region, "config": CLIENT_CONFIG}
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


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore failures into AwsError with a line saying what to do."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise AwsError(
            "no AWS credentials found; run `aws configure` or `aws sso login`, "
            "or set AWS_PROFILE (or use --local for the emulator)"
        ) from None
    except NoRegionError:
        raise AwsError("no AWS region; the stack outputs should name one") from None
    except (ConnectionError, ReadTimeoutError, ConnectionClosedError) as err:
        # Refused, DNS, connect or read timeout, dropped: botocore has retried already.
        url = urlparse(str(err.kwargs.get("endpoint_url") or ""))
        endpoint = f"{url.scheme}://{url.netloc}" if url.netloc else None
        timed_out = isinstance(err, ReadTimeoutError)
        what = (
            f"did not answer within {READ_TIMEOUT:g} s ({MAX_ATTEMPTS} tries)"
            if timed_out
            else ("cannot be reached")
        )
        raise unreachable(endpoint, what) from None
    except ClientError as err:
        error = err.response.get("Error", {})
        code = error.get("Code", "Error")
        message = " ".join(str(error.get("Message", "")).split())
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in CREDENTIAL_CODES:
            raise AwsError(f"AWS rejected the credentials ({code}); refresh them and retry") from None
        if code in {"AccessDeniedException", "AccessDenied"}:
            raise AwsError(f"access denied: {message}; ask for the missing permission") from None
        transient = code in THROTTLING_CODES or status >= 500
        raise AwsError(f"AWS {err.operation_name} failed ({code}): {message}", transient=transient) from None
    except BotoCoreError as err:
        raise AwsError(f"AWS call failed: {err}") from None
