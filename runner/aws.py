"""The one place boto3 clients are made and AWS errors become one-line RunnerErrors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from runner.errors import AwsError

# Adaptive mode retries throttling (429, TooManyRequests) with client-side rate limiting.
CLIENT_CONFIG = Config(
    retries={"mode": "adaptive", "total_max_attempts": 10},
    user_agent_extra="batch-stacks-runner",
)
# The emulator accepts any credentials; fixed ones keep real credentials out of local runs.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class AwsTarget:
    """Where calls go: a region, and an endpoint only for the local emulator.

    Without an endpoint boto3 uses the standard chain, which honours ``AWS_ENDPOINT_URL``.
    """

    region: str
    endpoint_url: str | None = None

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"region_name": self.region, "config": CLIENT_CONFIG}
        if self.endpoint_url:
            kwargs.update(endpoint_url=self.endpoint_url, **LOCAL_CREDENTIALS)
        return boto3.session.Session().client(service, **kwargs)


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
    except EndpointConnectionError as err:
        raise AwsError(
            f"cannot reach {err.kwargs.get('endpoint_url', 'the AWS endpoint')}; "
            "check your network (for --local: `runner local status`)"
        ) from None
    except ClientError as err:
        error = err.response.get("Error", {})
        code = error.get("Code", "Error")
        message = " ".join(str(error.get("Message", "")).split())
        if code in {"ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException",
                    "InvalidClientTokenId", "InvalidSignatureException"}:  # fmt: skip
            raise AwsError(f"AWS rejected the credentials ({code}); refresh them and retry") from None
        if code in {"AccessDeniedException", "AccessDenied"}:
            raise AwsError(f"access denied: {message}; ask for the missing permission") from None
        raise AwsError(f"AWS {err.operation_name} failed ({code}): {message}") from None
    except BotoCoreError as err:
        raise AwsError(f"AWS call failed: {err}") from None
