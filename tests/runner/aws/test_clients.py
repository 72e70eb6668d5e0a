from __future__ import annotations

import socket

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError

import runner.aws.clients
from runner.aws.clients import AwsTarget, aws_errors
from runner.errors import AwsError


def test_clients_retry_throttling_adaptively_and_bound_a_dead_endpoint():
    client = AwsTarget("eu-west-1").client("batch")
    config = client.meta.config
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (3.0, 6.0)
    # Worst case before the one-line error: every attempt waits the full read timeout.
    assert config.retries["total_max_attempts"] * config.read_timeout <= 30
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
            "the local emulator at http://127.0.0.1:1 cannot be reached; it is not running or has hung: "
            "restart it with `runner local down` and `runner local up`",
        ),
        (
            EndpointConnectionError(endpoint_url="https://batch.eu-west-1.amazonaws.com"),
            "https://batch.eu-west-1.amazonaws.com cannot be reached; check your network, VPN or proxy",
        ),
        (
            ReadTimeoutError(endpoint_url="https://batch.eu-west-1.amazonaws.com"),
            "https://batch.eu-west-1.amazonaws.com did not answer within 6 s (4 tries); check your network",
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


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (
            ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DescribeJobs"),
            True,
        ),
        (
            ClientError({"Error": {"Code": "Boom"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "ListJobs"),
            True,
        ),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (ClientError({"Error": {"Code": "ClientException", "Message": "bad"}}, "SubmitJob"), False),
        (ClientError({"Error": {"Code": "ExpiredTokenException", "Message": "x"}}, "DescribeJobs"), False),
    ],
)
def test_errors_that_may_pass_by_themselves_are_marked_transient(error: Exception, transient: bool):
    with pytest.raises(AwsError) as caught, aws_errors():
        raise error
    assert caught.value.transient is transient


@pytest.fixture
def quick_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real config with sub-second timeouts, so a silent endpoint fails fast in a test."""
    quick = runner.aws.clients.client_config().merge(Config(connect_timeout=0.2, read_timeout=0.2))
    monkeypatch.setattr(runner.aws.clients, "client_config", lambda: quick)
    monkeypatch.setattr(runner.aws.clients, "READ_TIMEOUT", 0.2)


def test_a_silent_endpoint_is_one_line_naming_it(quick_timeouts: None):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # accepts connections, never answers
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        batch = AwsTarget("us-east-1", url).client("batch")
        with pytest.raises(AwsError) as caught, aws_errors():
            batch.describe_jobs(jobs=["x"])
    assert str(caught.value) == (
        f"the local emulator at {url} did not answer within 0.2 s (4 tries); it is not running or has hung: "
        "restart it with `runner local down` and `runner local up`"
    )


def test_a_closed_port_is_one_line_naming_it(quick_timeouts: None):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening: refused
        batch = AwsTarget("us-east-1", url).client("batch")
        with pytest.raises(AwsError) as caught, aws_errors():
            batch.describe_jobs(jobs=["x"])
    assert str(caught.value).startswith(f"the local emulator at {url} cannot be reached;")
