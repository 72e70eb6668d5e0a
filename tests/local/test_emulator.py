"""End to end: moto's server on a loopback port, both stacks deployed, an array run, shutdown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.local.server import free_port, is_alive
from runner.local.state import LocalState

pytestmark = pytest.mark.emulator
PROJECT_DIR = Path(__file__).resolve().parents[2]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
    return PROJECT_DIR


@pytest.fixture
def emulator(project: Path, isolated_environment: Path) -> Iterator[dict]:
    """`runner local up` for dev on a free port; always `runner local down` afterwards."""
    port = free_port()
    result = run("local", "up", "--port", str(port), "--json")
    assert result.exit_code == 0, result.output
    started = json.loads(result.stdout)
    try:
        yield started
    finally:
        run("local", "down")
        assert not is_alive(started["pid"]), "the emulator process was left behind"


def batch_at(endpoint: str):
    return boto3.client("batch", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="x", aws_secret_access_key="x")  # fmt: skip


def test_up_deploys_each_stack_file_and_a_run_completes(emulator: dict, isolated_environment: Path):
    assert emulator["started"] is True
    assert emulator["endpointUrl"].startswith("http://127.0.0.1:")
    batch = batch_at(emulator["endpointUrl"])

    def compute_of(outputs: dict) -> dict:
        (environment,) = batch.describe_compute_environments(
            computeEnvironments=outputs["computeEnvironmentArns"]
        )["computeEnvironments"]
        return environment["computeResources"]

    dev = compute_of(emulator["outputs"])
    assert (dev["type"], dev["minvCpus"], dev["maxvCpus"]) == ("SPOT", 0, 32)

    prod_up = run("local", "up", "--stack", "prod", "--json")
    assert prod_up.exit_code == 0, prod_up.output
    prod_started = json.loads(prod_up.stdout)
    assert prod_started["started"] is False and prod_started["pid"] == emulator["pid"]
    prod = compute_of(prod_started["outputs"])
    assert (prod["type"], prod["minvCpus"], prod["maxvCpus"]) == ("EC2", 0, 256)

    status = run("local", "status", "--json")
    assert json.loads(status.stdout)["stacks"] == ["dev", "prod"]

    submitted = run("--local", "submit", "--array", "100", "--wait")
    assert submitted.exit_code == 0, submitted.output
    assert "100/100 done  SUCCEEDED 100  FAILED 0" in submitted.output
    run_id = submitted.output.split()[2].rstrip(":")

    summary = json.loads(run("--local", "summary", run_id, "--json").stdout)
    assert summary["counts"]["SUCCEEDED"] == 100 and summary["size"] == 100 and summary["failures"] == []
    job = batch.describe_jobs(jobs=[summary["jobId"]])["jobs"][0]
    assert job["jobQueue"] == emulator["outputs"]["jobQueueArn"]

    on_prod = run("--local", "--stack", "prod", "submit", "--array", "3", "--json")
    assert json.loads(on_prod.stdout)["jobQueue"] == prod_started["outputs"]["jobQueueName"]


def test_local_env_var_selects_the_emulator(emulator: dict, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RUNNER_LOCAL", "1")
    outputs = json.loads(run("outputs", "--json").stdout)
    assert outputs == emulator["outputs"]


def test_the_only_deployed_stack_is_the_local_default(emulator: dict, isolated_environment: Path):
    state = LocalState(isolated_environment / "batch-stacks")
    state.save_outputs("prod", state.outputs("dev").to_contract())
    state.stack_file("dev").unlink()
    result = run("--local", "submit", "--array", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stack"] == "prod"


def test_a_second_port_while_running_is_refused(emulator: dict):
    other = emulator["endpointUrl"].rsplit(":", 1)[1]
    result = run("local", "up", "--port", str(int(other) + 1))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: the emulator already runs on port {other}")


def test_commands_without_the_emulator_say_how_to_start_it(project: Path, isolated_environment: Path):
    status = run("local", "status")
    assert status.exit_code == 3
    assert run("local", "down").output == "The emulator is not running.\n"
    result = run("--local", "submit", "--array", "5")
    assert result.exit_code == 1
    assert result.output == "Error: the local emulator is not running; start it with `runner local up`\n"


def test_a_stale_pid_file_is_cleared(project: Path, isolated_environment: Path):
    state = LocalState(isolated_environment / "batch-stacks")
    state.root.mkdir(parents=True)
    state.server_file.write_text(json.dumps({
        "pid": 2**22 + 12345, "port": 1, "endpoint_url": "http://127.0.0.1:1", "log_file": "x", "started_at": "t",
    }))  # fmt: skip
    state.save_outputs("dev", {"region": "us-east-1"})
    result = run("--local", "outputs")
    assert result.output == "Error: the local emulator is not running; start it with `runner local up`\n"
    assert not state.server_file.exists()
    assert state.deployed_stacks() == []
