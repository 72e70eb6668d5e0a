"""End to end: moto's server on a loopback port, both stacks deployed, an array run, shutdown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.local.process import free_port, is_alive
from runner.local.state import Deployment, LocalState

pytestmark = pytest.mark.emulator
PROJECT_DIR = Path(__file__).resolve().parents[3]


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
    """A Batch client signed with the emulator's own keys (Batch refuses any others, as AWS does)."""
    access, secret = LocalState(Path(os.environ["XDG_STATE_HOME"]) / "batch-stacks").credentials()
    return boto3.client(
        "batch",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
    )


def test_up_deploys_each_stack_file_and_a_run_completes(
    emulator: dict, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
):
    assert emulator["started"] is True
    assert emulator["endpointUrl"].startswith("http://127.0.0.1:")
    # Another port while it runs is refused (one emulator per state directory).
    other = emulator["endpointUrl"].rsplit(":", 1)[1]
    second = run("local", "up", "--port", str(int(other) + 1))
    assert second.exit_code == 1
    assert second.output.startswith(f"Error: the emulator already runs on port {other}")
    with monkeypatch.context() as env:  # RUNNER_LOCAL=1 selects it like --local
        env.setenv("RUNNER_LOCAL", "1")
        assert json.loads(run("outputs", "--json").stdout) == emulator["outputs"]
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

    submitted = run("--local", "submit", "--array", "100", "--wait", "--interval", "1")
    assert submitted.exit_code == 0, submitted.output
    assert "100/100 done  SUCCEEDED 100  FAILED 0" in submitted.output
    run_id = submitted.output.split()[2].rstrip(":")

    summary = json.loads(run("--local", "summary", run_id, "--json").stdout)
    assert summary["counts"]["SUCCEEDED"] == 100 and summary["size"] == 100 and summary["failures"] == []
    job = batch.describe_jobs(jobs=[summary["jobId"]])["jobs"][0]
    assert job["jobQueue"] == emulator["outputs"]["jobQueueArn"]

    on_prod = run("--local", "--stack", "prod", "submit", "--array", "3", "--json")
    assert json.loads(on_prod.stdout)["jobQueue"] == prod_started["outputs"]["jobQueueName"]


def test_the_only_deployed_stack_is_the_local_default(emulator: dict, isolated_environment: Path):
    state = LocalState(isolated_environment / "batch-stacks")
    state.save_stack("prod", state.outputs("dev"), Deployment("test"))
    state.stack_file("dev").unlink()
    result = run("--local", "submit", "--array", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stack"] == "prod"


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
    state.server_file.write_text(
        json.dumps(
            {
                "pid": 2**22 + 12345,
                "port": 1,
                "endpoint_url": "http://127.0.0.1:1",
                "log_file": "x",
                "started_at": "t",
            }
        )
    )
    state.stack_file("dev").parent.mkdir()
    state.stack_file("dev").write_text(json.dumps({"region": "us-east-1"}))  # kept with its data
    state.deployment_file("dev").write_text(json.dumps({"fingerprint": "test", "created": []}))
    result = run("--local", "outputs")
    assert result.output == "Error: the local emulator is not running; start it with `runner local up`\n"
    assert not state.server_file.exists()
    assert state.deployed_stacks() == ["dev"]  # the data folder keeps it for the next `local up`


def test_up_again_keeps_an_unchanged_stack_and_replaces_a_changed_one(
    isolated_environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, project / name)
    shutil.copytree(PROJECT_DIR / "infra", project / "infra")
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(project))
    first = json.loads(run("local", "up", "--json").stdout)
    try:
        again = run("local", "up")
        assert again.exit_code == 0, again.output
        assert "Kept the unchanged stack 'dev'" in again.output
        batch = batch_at(first["endpointUrl"])
        assert [q["jobQueueArn"] for q in batch.describe_job_queues()["jobQueues"]] == [
            first["outputs"]["jobQueueArn"]
        ]
        stack_file = project / "Pulumi.dev.yaml"
        stack_file.write_text(stack_file.read_text().replace("maxVcpus: 32", "maxVcpus: 48"))
        replaced = json.loads(run("local", "up", "--json").stdout)
        assert replaced["deployment"] == "replaced" and replaced["pid"] == first["pid"]
        (queue,) = batch.describe_job_queues()["jobQueues"]
        assert queue["jobQueueArn"] == replaced["outputs"]["jobQueueArn"] != first["outputs"]["jobQueueArn"]
        (environment,) = batch.describe_compute_environments()["computeEnvironments"]
        assert environment["computeResources"]["maxvCpus"] == 48
    finally:
        run("local", "down")
    assert not is_alive(first["pid"])


def test_concurrent_ups_share_one_emulator_and_down_stops_it(project: Path, isolated_environment: Path):
    env = {**os.environ, "XDG_STATE_HOME": str(isolated_environment)}
    command = [sys.executable, "-c", "from runner.cli import main; main()", "local", "up", "--json"]
    ups = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in ups]
    try:
        assert results[0]["pid"] == results[1]["pid"]
        assert sorted(r["started"] for r in results) == [False, True]
        assert sorted(r["deployment"] for r in results) == ["deployed", "kept"]
        assert len(emulator_pids(isolated_environment)) == 1
    finally:
        down = subprocess.run([*command[:3], "local", "down"], env=env, capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    assert emulator_pids(isolated_environment) == []


def test_an_interrupted_first_up_leaves_no_emulator(
    project: Path, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("runner.local.deploy.deploy_or_keep", interrupted)
    result = run("local", "up")
    assert result.exit_code == 130
    assert result.output.startswith("Error: interrupted;")
    assert emulator_pids(isolated_environment) == []
    assert run("local", "status").exit_code == 3


def test_a_corrupt_server_file_is_one_line_naming_it(project: Path, isolated_environment: Path):
    state = LocalState(isolated_environment / "batch-stacks")
    state.root.mkdir(parents=True)
    state.server_file.write_text('{"pid": "twelve"}')
    result = run("local", "status")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {state.server_file} does not describe an emulator; stop any emulator left running "
        "(`pkill -f runner.emulator.server`) and delete the file\n"
    )


def emulator_pids(state: Path) -> list[int]:
    """Emulators started for this test's state directory (their environment names it)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if (
            b"runner.emulator.server" in cmdline
            and str(state).encode() in environ
            and is_alive(int(proc.name))
        ):
            pids.append(int(proc.name))
    return pids


def test_a_reset_asks_first_and_a_stopped_local_stack_is_named_not_lost(
    project: Path, isolated_environment: Path
):
    state = LocalState(isolated_environment / "batch-stacks")
    identity = state.identity()
    assert state.identity() == identity  # made once
    state.prefer_port(41234)
    assert state.identity().id == identity.id and state.identity().port == 41234

    refused = CliRunner().invoke(cli, ["local", "reset"], input="")  # no terminal to ask on
    assert refused.exit_code == 1
    assert "pass --yes to confirm" in refused.output and state.identity_file.exists()
    declined = CliRunner().invoke(cli, ["local", "reset"], input="n\n")
    assert state.identity_file.exists(), declined.output

    from runner.runs.store import RunRecord, RunStore
    from tests.runner.conftest import sample_outputs

    outputs = sample_outputs().to_json()
    store = RunStore(isolated_environment / "batch-stacks")
    record = RunRecord(
        "20261204-100000-0a0b0c0d",
        "dev",
        "2026-12-04T10:00:00+00:00",
        "j",
        {},
        outputs,
        state="submitted",
        endpoint_url="http://127.0.0.1:41234",
        emulator=identity.id,
    )
    store.save(record)
    result = run("--local", "summary", record.run_id)
    assert result.exit_code == 1
    assert (
        "ran on this machine's local stack, which is not running; `runner local up` starts it"
        in result.output
    )
    assert run("runs", "--prune").exit_code == 0
    assert store.find(record.run_id) is not None  # it comes back with `local up`: never pruned

    wiped = run("local", "reset", "--yes")
    assert wiped.exit_code == 0 and "1 local run record(s)" in wiped.output, wiped.output
    assert store.find(record.run_id) is None and state.identity(create=False) is None
