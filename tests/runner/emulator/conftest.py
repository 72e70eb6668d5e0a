"""One emulator per test module, with the lab (Spot) and prod (on-demand) stacks deployed, a 1 s
minimum attempt duration and a 0.5 s stop grace (test settings only; users get AWS's 60 s)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.local.deploy import deploy_or_keep
from runner.local.process import ExecutorOptions, start_server, stop_server
from runner.local.state import LocalState

PROJECT_DIR = Path(__file__).resolve().parents[3]
SLOTS = 3


@contextmanager
def running_emulator(
    root: Path, options: ExecutorOptions, stacks: tuple[str, ...]
) -> Iterator[dict[str, Any]]:
    """An emulator of its own under ``root`` with ``stacks`` deployed; stopped afterwards."""
    state = LocalState(root / "batch-stacks")
    info, _ = start_server(state, None, options)
    try:
        outputs = {
            s: deploy_or_keep(PROJECT_DIR, s, info.endpoint_url, state).outputs.to_json() for s in stacks
        }
        yield {"root": root, "state": state, "info": info, "stacks": outputs}
    finally:
        stop_server(state)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("emulator-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RUNNER_EMULATOR_MIN_TIMEOUT", "1")
        patch.setenv("RUNNER_EMULATOR_STOP_GRACE", "0.5")
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        options = ExecutorOptions(slots=SLOTS, spot_interruptions=0.5, seed=11)
        with running_emulator(root, options, ("dev", "prod")) as started:
            yield started


@pytest.fixture
def local(emulator: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The runner pointed at the module's emulator (its state directory)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(emulator["root"]))
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
    return emulator


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--local", *args])


def as_json(*args: str) -> Any:
    """A command's ``--json`` document (it must have run to its end)."""
    result = run(*args, "--json")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return json.loads(result.stdout)


def batch(emulator: dict[str, Any], keys: tuple[str, str] | None = None) -> Any:
    return client(emulator, "batch", keys)


def client(emulator: dict[str, Any], service: str, keys: tuple[str, str] | None = None) -> Any:
    """A client of the emulator signed with its owner's keys (or ``keys``)."""
    access, secret = keys or emulator["state"].credentials()
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=emulator["info"].endpoint_url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
    )


def small_definition(emulator: dict[str, Any], name: str, **properties: Any) -> str:
    """A job definition of 1 vCPU and 512 MiB (plus ``properties``), registered by the owner."""
    return batch(emulator).register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "busybox",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            **properties,
        },
    )["jobDefinitionArn"]


def wait_for(
    client: Any, job_id: str, statuses: tuple[str, ...] = ("SUCCEEDED", "FAILED"), timeout: float = 30
) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def submit(emulator: dict[str, Any], stack: str, command: list[str], **params: Any) -> str:
    outputs = emulator["stacks"][stack]
    overrides = {"command": command, **params.pop("overrides", {})}
    return batch(emulator).submit_job(
        jobName=params.pop("name", "t"),
        jobQueue=outputs["jobQueueArn"],
        jobDefinition=outputs["jobDefinitionArn"],
        containerOverrides=overrides,
        **params,
    )["jobId"]
