from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from runner.aws import AwsTarget, aws_errors
from runner.errors import AwsError


def test_clients_retry_throttling_adaptively():
    client = AwsTarget("eu-west-1").client("batch")
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 10}
    assert client.meta.region_name == "eu-west-1"


def test_aws_endpoint_url_is_honoured(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert AwsTarget("us-east-1").client("batch").meta.endpoint_url == "http://127.0.0.1:4566"


def test_local_target_uses_its_endpoint_and_never_real_credentials(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    client = AwsTarget("us-east-1", "http://127.0.0.1:5000").client("logs")
    assert client.meta.endpoint_url == "http://127.0.0.1:5000"
    assert client._request_signer._credentials.access_key == "testing"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (NoCredentialsError(), "no AWS credentials found; run `aws configure` or `aws sso login`"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            "cannot reach http://127.0.0.1:1; check your network",
        ),
        (
            ClientError({"Error": {"Code": "ExpiredTokenException", "Message": "x"}}, "SubmitJob"),
            "AWS rejected the credentials (ExpiredTokenException); refresh them and retry",
        ),
        (
            ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed\n to"}}, "ListJobs"
            ),
            "access denied: not allowed to; ask for the missing permission",
        ),
        (
            ClientError({"Error": {"Code": "ClientException", "Message": "bad"}}, "SubmitJob"),
            "AWS SubmitJob failed (ClientException): bad",
        ),
    ],
)
def test_aws_failures_become_one_line_errors(error: Exception, message: str):
    with pytest.raises(AwsError) as caught, aws_errors():
        raise error
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
