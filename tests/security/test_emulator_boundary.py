"""The emulator as a boundary, end to end: nobody gets in without keys it issued, no header can be
read one way by the gate and another by moto, and a task sees neither the owner's files nor the
emulator's keys, nor any process but its own.

One emulator for the module, started with a HOME of its own that holds an ``~/.aws/credentials``
a task must never read."""

from __future__ import annotations

import datetime
import json
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from runner.local.process import ExecutorOptions
from tests.runner.emulator.conftest import client, running_emulator, small_definition, wait_for

pytestmark = pytest.mark.emulator
SECRET = "aws_secret_access_key = the-owners-real-secret"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("boundary")
    home = root / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(f"[default]\n{SECRET}\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("RUNNER_EMULATOR_MIN_TIMEOUT", "1")
        patch.setenv("RUNNER_EMULATOR_STOP_GRACE", "0.5")
        with running_emulator(root, ExecutorOptions(slots=2), ("dev",)) as started:
            yield {**started, "home": home}


def raw(emulator: dict[str, Any], path: str, body: bytes = b"", **headers: str) -> tuple[int, str]:
    """A request as an attacker on loopback would send it: any headers, no SDK."""
    request = urllib.request.Request(
        emulator["info"].endpoint_url + path,
        data=body or None,
        headers=headers,
        method="POST" if body else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def users(emulator: dict[str, Any]) -> list[str]:
    return [u["UserName"] for u in client(emulator, "iam").list_users()["Users"]]


CREATE_USER = b"Action=CreateUser&UserName=mallory&Version=2010-05-08"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_no_header_reads_as_s3_to_the_gate_and_as_iam_to_moto(emulator: dict[str, Any]):
    owner, _ = emulator["state"].credentials()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    confused = [
        # moto routes on the scope before the first comma (IAM); a regex could find the second (S3).
        f"AWS4-HMAC-SHA256 Credential=AKIAMALLORY/{stamp}/us-east-1/iam/aws4_request, "
        f"Credential={owner}/{stamp}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={'0' * 64}",
        f"AWS4-HMAC-SHA256 Credential=AKIAMALLORY/{stamp}/us-east-1/iam/aws4_request,x Credential=x/s3/",
        f"Credential=AKIAMALLORY/{stamp}/us-east-1/iam/aws4_request",
        "Bearer anything",
    ]
    for header in confused:
        status, body = raw(emulator, "/", CREATE_USER, Authorization=header, **FORM)
        assert status == 403 and "IncompleteSignatureException" in body, (header, body)
    status, body = raw(emulator, "/", CREATE_USER, **FORM)  # unsigned: moto would take it for IAM
    assert status == 403 and "Missing Authentication Token" in body
    assert "mallory" not in users(emulator)


def test_keys_the_emulator_did_not_issue_are_refused_everywhere(emulator: dict[str, Any]):
    owner, _ = emulator["state"].credentials()
    endpoint = emulator["info"].endpoint_url
    for keys in (("AKIAMADEUP", "made-up"), (owner, "a-guessed-secret")):
        session = boto3.Session(
            aws_access_key_id=keys[0], aws_secret_access_key=keys[1], region_name="us-east-1"
        )
        calls = {
            "s3": lambda c: c.list_buckets(),
            "sts": lambda c: c.get_caller_identity(),
            "iam": lambda c: c.create_user(UserName="mallory"),
            "batch": lambda c: c.describe_job_queues(),
            "logs": lambda c: c.describe_log_groups(),
        }
        for service, call in calls.items():
            with pytest.raises(ClientError) as refused:
                call(session.client(service, endpoint_url=endpoint))
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, (service, keys[0])
    assert "mallory" not in users(emulator)


def test_a_teammate_may_not_touch_iam_and_moto_api_is_closed(emulator: dict[str, Any]):
    iam = client(emulator, "iam")
    iam.create_user(UserName="bob")
    key = iam.create_access_key(UserName="bob")["AccessKey"]
    bob = client(emulator, "iam", (key["AccessKeyId"], key["SecretAccessKey"]))
    with pytest.raises(ClientError) as refused:
        bob.create_access_key(UserName="bob")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert client(emulator, "batch", (key["AccessKeyId"], key["SecretAccessKey"])).describe_job_queues()
    for path, body in (
        ("/moto-api/reset", b"{}"),
        ("/moto-api/data.json", b""),
        ("/moto-api/seed?a=1", b"{}"),
    ):
        status, text = raw(emulator, path, body)
        assert status == 403 and "moto's API is closed" in text
    assert raw(emulator, "/latest/meta-data/iam/security-credentials/")[0] == 404
    assert raw(emulator, "/moto-api/config")[0] < 300  # liveness, read-only
    assert "bob" in users(emulator)  # nothing was reset


PROBE = textwrap.dedent(
    """
    import json, os, sys
    found = {}
    state = os.environ["STATE"]
    for name, path in [
        ("keys", state + "/local/credentials.json"),
        ("keys_relative", "../../../credentials.json"),
        ("keys_far", "../../../../local/credentials.json"),
        ("owner_aws", os.environ["OWNER_HOME"] + "/.aws/credentials"),
        ("log", state + "/local/moto.log"),
    ]:
        try:
            found[name] = open(path).read()[:60]
        except OSError as err:
            found[name] = type(err).__name__
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    found["processes"] = len(pids)
    found["emulator_visible"] = str(os.environ["EMULATOR_PID"]) in pids
    try:
        os.kill(int(os.environ["EMULATOR_PID"]), 0)
        found["signal"] = "delivered"
    except OSError as err:
        found["signal"] = type(err).__name__
    open("/tmp/left-by-the-task", "w").write("x")
    try:
        import boto3
        found["identity"] = boto3.client("sts").get_caller_identity()["Arn"]
    except Exception as err:
        found["identity"] = type(err).__name__
    print(json.dumps(found))
    """
)


def probe(emulator: dict[str, Any], definition: str) -> dict[str, Any]:
    batch = client(emulator, "batch")
    outputs = emulator["stacks"]["dev"]
    environment = {
        "STATE": str(emulator["state"].root.parent),
        "OWNER_HOME": str(emulator["home"]),
        "EMULATOR_PID": str(emulator["info"].pid),
    }
    job_id = batch.submit_job(
        jobName="probe",
        jobQueue=outputs["jobQueueArn"],
        jobDefinition=definition,
        containerOverrides={
            "command": ["python3", "-c", PROBE],
            "environment": [{"name": k, "value": v} for k, v in environment.items()],
        },
    )["jobId"]
    job = wait_for(batch, job_id, timeout=60)
    options = (job["container"].get("logConfiguration") or {}).get("options") or {}
    events = client(emulator, "logs").get_log_events(
        logGroupName=options.get("awslogs-group", "/aws/batch/job"),
        logStreamName=job["container"]["logStreamName"],
    )["events"]
    assert job["status"] == "SUCCEEDED", [e["message"] for e in events]
    return json.loads(events[-1]["message"])


def isolated(emulator: dict[str, Any]) -> None:
    isolation = emulator["state"].isolation()
    assert isolation is not None
    if not isolation.isolated:
        pytest.skip(f"this machine cannot wall tasks in: {isolation.why}")


def test_a_task_sees_neither_the_emulators_keys_nor_the_owners_files_nor_other_processes(
    emulator: dict[str, Any],
):
    isolated(emulator)
    found = probe(emulator, emulator["stacks"]["dev"]["jobDefinitionArn"])
    for name in ("keys", "keys_relative", "keys_far", "owner_aws", "log"):
        assert found[name] in ("FileNotFoundError", "PermissionError"), (name, found[name])
    assert found["processes"] <= 3 and not found["emulator_visible"]  # its init, itself, a child
    assert found["signal"] in ("ProcessLookupError", "PermissionError")
    assert found["identity"].startswith("arn:aws:sts::123456789012:assumed-role/")  # its job role
    assert not Path("/tmp/left-by-the-task").exists()  # its /tmp was its own


def test_a_task_without_a_role_has_no_keys_at_all(emulator: dict[str, Any]):
    isolated(emulator)
    definition = small_definition(emulator, "no-role", user="nobody")
    assert probe(emulator, definition)["identity"] == "NoCredentialsError"
