"""Where outputs come from: a file, or the real `pulumi` subprocess (a fake one on PATH)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.aws.stack_outputs import CONTRACT_KEYS, find_project_dir, outputs_from_file, parse_outputs
from runner.cli import cli
from runner.errors import StackOutputsError

OUTPUTS = {
    "region": "eu-west-1",
    "jobQueueName": "q",
    "jobQueueArn": "arn:aws:batch:eu-west-1:1:job-queue/q",
    "jobDefinitionName": "d",
    "jobDefinitionArn": "arn:aws:batch:eu-west-1:1:job-definition/d:1",
    "computeEnvironmentArns": ["arn:ce1", "arn:ce2"],
    "jobRoleArn": "arn:role",
    "logGroupName": "/batch-stacks/dev/x",
    "purchaseModel": "spot",
    "maxVcpus": 32,
    "jobVcpus": 1,
    "jobMemoryMiB": 2048,
}

FAKE_PULUMI = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "cwd": os.getcwd()}) + "\\n")
if args[:2] == ["stack", "--show-name"]:
    print(os.environ.get("FAKE_PULUMI_SELECTED", "dev"))
    sys.exit(0)
if args[:2] == ["stack", "output"]:
    stack = args[args.index("--stack") + 1]
    stacks = json.loads(os.environ["FAKE_PULUMI_STACKS"])
    if stack not in stacks:
        print(f"error: no stack named '{stack}' found", file=sys.stderr)
        sys.exit(255)
    print(json.dumps(stacks[stack]))
    sys.exit(0)
print("error: unexpected arguments", file=sys.stderr)
sys.exit(1)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "sub" / "dir").mkdir(parents=True)
    (project / "Pulumi.yaml").write_text("name: batch-stacks\nruntime: python\n")
    return project


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `pulumi` executable first on PATH that serves outputs for stacks dev and prod."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(FAKE_PULUMI)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "pulumi-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    monkeypatch.setenv(
        "FAKE_PULUMI_STACKS",
        json.dumps({"dev": OUTPUTS, "prod": {**OUTPUTS, "purchaseModel": "on-demand"}}),
    )
    return log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def invoke(*args: str, cwd: Path | None = None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, list(args))
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, list(args))
    finally:
        os.chdir(old)


def test_outputs_come_from_the_selected_stack_via_pulumi(fake_pulumi: Path, project: Path):
    result = invoke("outputs", "--json", cwd=project / "sub" / "dir")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == OUTPUTS
    show_name, output = calls(fake_pulumi)
    assert show_name["args"] == ["stack", "--show-name", "--non-interactive"]
    assert output["args"] == [
        "stack",
        "output",
        "--json",
        "--show-secrets",
        "--stack",
        "dev",
        "--non-interactive",
    ]
    assert Path(output["cwd"]) == project.resolve()


def test_stack_option_and_env_pick_the_stack(fake_pulumi: Path, project: Path, monkeypatch):
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(project))
    assert json.loads(invoke("--stack", "prod", "outputs", "--json").stdout)["purchaseModel"] == "on-demand"
    monkeypatch.setenv("RUNNER_STACK", "prod")
    assert json.loads(invoke("outputs", "--json").stdout)["purchaseModel"] == "on-demand"
    assert all("--show-name" not in call["args"] for call in calls(fake_pulumi))


def test_unknown_stack_is_one_line_saying_what_to_do(fake_pulumi: Path, project: Path):
    result = invoke("--stack", "qa", "outputs", cwd=project)
    assert result.exit_code == 1
    assert result.output == (
        "Error: unknown stack 'qa'; list stacks with `pulumi stack ls`, "
        "create it with `pulumi stack init qa` and `pulumi up`\n"
    )


def test_stack_without_contract_outputs_says_run_pulumi_up(fake_pulumi: Path, project: Path, monkeypatch):
    monkeypatch.setenv("FAKE_PULUMI_STACKS", json.dumps({"dev": {"region": "us-east-1"}}))
    result = invoke("outputs", cwd=project)
    assert result.exit_code == 1
    assert result.output.startswith("Error: stack 'dev' outputs lack jobQueueName, jobQueueArn")
    assert "run `pulumi up -s dev` first" in result.output
    assert result.output.count("\n") == 1


def test_no_pulumi_on_path_suggests_outputs_file(project: Path, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = invoke("outputs", cwd=project)
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: the `pulumi` CLI is not on PATH; install it, or pass --outputs FILE"
    )


def test_outside_a_project_is_a_clear_error(tmp_path: Path, fake_pulumi: Path):
    result = invoke("outputs", cwd=tmp_path)
    assert result.output.startswith("Error: no Pulumi.yaml here or above")


def test_outputs_file_is_read_without_pulumi(tmp_path: Path):
    path = tmp_path / "prod.json"
    path.write_text(json.dumps(OUTPUTS))
    result = invoke("--outputs", str(path), "outputs")
    assert result.exit_code == 0
    assert "stack prod" in result.output and "eu-west-1" in result.output


def test_missing_outputs_file_says_how_to_make_it(tmp_path: Path):
    with pytest.raises(StackOutputsError, match=r"pulumi stack output --json -s dev >"):
        outputs_from_file(tmp_path / "nope.json", "dev")


def test_parse_outputs_roundtrips_the_contract():
    parsed = parse_outputs("dev", OUTPUTS, "test")
    assert parsed.compute_environment_arns == ("arn:ce1", "arn:ce2")
    assert parsed.to_json() == OUTPUTS
    assert tuple(parsed.to_json()) == CONTRACT_KEYS


def test_project_dir_env_must_hold_a_project(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(tmp_path))
    with pytest.raises(StackOutputsError, match=r"holds no Pulumi\.yaml"):
        find_project_dir()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps(OUTPUTS).encode("utf-16"), None),  # PowerShell 5's `>`: UTF-16 with a BOM
        (b"\xef\xbb\xbf" + json.dumps(OUTPUTS).encode(), None),  # an editor's UTF-8 BOM
        (
            json.dumps({**OUTPUTS, "region": "eu-west-1"}).encode() + b"\xff",
            "is not UTF-8 text (byte 0xff at offset",
        ),
        (
            json.dumps({**OUTPUTS, "jobQueueName": "café"}, ensure_ascii=False).encode("latin-1"),
            "is not UTF-8 text (byte 0xe9",
        ),
        (b"", "is empty; save it again with `pulumi stack output --json -s prod >"),
        (b'{"region": ', "is not valid JSON (Expecting value at line 1, column 12); save it again"),
        (b"[1, 2]", "is not a JSON object of stack outputs (got a list)"),
        (
            json.dumps({**OUTPUTS, "maxVcpus": "32"}).encode(),
            'maxVcpus should be a whole number >= 1, got "32"',
        ),
        (
            json.dumps({**OUTPUTS, "maxVcpus": 2.5, "purchaseModel": "cheap"}).encode(),
            "purchaseModel should be 'spot' or 'on-demand', got \"cheap\"; maxVcpus should be a whole number >= 1, got 2.5",
        ),
        (
            json.dumps({**OUTPUTS, "computeEnvironmentArns": "arn:ce1"}).encode(),
            'computeEnvironmentArns should be a non-empty list of ARNs, got "arn:ce1"',
        ),
        (json.dumps({**OUTPUTS, "region": None}).encode(), "region should be a non-empty string, got null"),
    ],
)
def test_outputs_files_from_any_shell_are_read_or_named_in_one_line(tmp_path: Path, content: bytes, message):
    path = tmp_path / "prod.json"
    path.write_bytes(content)
    result = invoke("--outputs", str(path), "outputs", "--json")
    if message is None:
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["maxVcpus"] == OUTPUTS["maxVcpus"]
        return
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}") or result.output.startswith("Error: ")
    assert message in result.output and result.output.count("\n") == 1, result.output


def test_numbers_pulumi_hands_over_as_floats_are_whole_numbers():
    parsed = parse_outputs("dev", {**OUTPUTS, "maxVcpus": 32.0, "jobVcpus": 1.0}, "test")
    assert parsed.max_vcpus == 32 and isinstance(parsed.max_vcpus, int)


def test_target_options_also_work_after_the_command_name(tmp_path: Path, fake_pulumi: Path, project: Path):
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(OUTPUTS))
    after = invoke("outputs", "--outputs", str(path), "--stack", "lab", "--json")
    assert after.exit_code == 0, after.output
    before = invoke("--stack", "prod", "outputs", "--json", cwd=project)
    overridden = invoke("--stack", "prod", "outputs", "--stack", "dev", "--json", cwd=project)
    assert json.loads(before.stdout)["purchaseModel"] == "on-demand"
    assert json.loads(overridden.stdout)["purchaseModel"] == "spot"  # the later option wins
