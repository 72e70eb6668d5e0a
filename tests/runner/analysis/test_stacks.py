"""`runner stacks`: the committed stack files side by side, and a broken one beside them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli

PROJECT_DIR = Path(__file__).resolve().parents[3]


def stacks(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["stacks", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(tmp_path))
    return tmp_path


def test_lab_and_prod_side_by_side_with_burn_rates(project: Path):
    dev, prod = stacks()
    assert (dev["stack"], dev["purchaseModel"], dev["usdPerVcpuHour"], dev["maxVcpus"]) == (
        "dev",
        "spot",
        0.017,
        32,
    )
    assert dev["maxBurnUsdPerHour"] == pytest.approx(32 * 0.017) and dev["idleUsdPerHour"] == 0
    assert (prod["purchaseModel"], prod["usdPerVcpuHour"], prod["maxBurnUsdPerHour"]) == (
        "on-demand",
        0.0425,
        256 * 0.0425,
    )
    assert prod["jobVcpus"] == 2 and prod["retryAttempts"] == 3 and prod["runnableTimeoutMinutes"] == 60
    text = CliRunner().invoke(cli, ["stacks"], terminal_width=200).output
    assert "max burn         $0.54/h" in text and "$10.88/h" in text


def test_an_estimate_takes_waves_of_tasks_at_full_scale(project: Path):
    dev, prod = stacks("--tasks", "1000", "--minutes", "30")
    # dev: 32 tasks at once -> 32 waves of 30 min; 500 vCPU-hours at $0.017.
    assert dev["estimate"] == {"vcpuHours": 500.0, "wallMinutes": 32 * 30, "estimatedUsd": pytest.approx(8.5)}
    # prod: 2 vCPUs a task, 128 at once -> 8 waves; 1,000 vCPU-hours at $0.0425.
    assert prod["estimate"] == {
        "vcpuHours": 1000.0,
        "wallMinutes": 8 * 30,
        "estimatedUsd": pytest.approx(42.5),
    }


def test_a_broken_stack_file_is_its_own_one_line_error_and_the_others_still_show(project: Path):
    broken = (project / "Pulumi.prod.yaml").read_text().replace("maxVcpus: 256", "maxVcpus: lots")
    (project / "Pulumi.prod.yaml").write_text(broken.replace("retryAttempts: 3", "retryAttempts: 0"))
    (project / "Pulumi.odd.yaml").write_text("config: [not, an, object\n")
    dev, odd, prod = stacks()
    assert dev["error"] is None and dev["maxBurnUsdPerHour"]
    assert prod["error"] == (
        "Pulumi.prod.yaml: batch-stacks:compute.maxVcpus: 'lots' is not allowed; use a whole number from 1 to 10000 "
        "(and 1 more; `runner local up --stack prod` lists them)"
    )
    assert prod["maxBurnUsdPerHour"] is None
    assert odd["error"].startswith("Pulumi.odd.yaml is not valid YAML")
    text = CliRunner().invoke(cli, ["stacks"], terminal_width=200).output
    assert "prod: Pulumi.prod.yaml: batch-stacks:compute.maxVcpus" in text


def test_a_budget_below_full_scale_is_pointed_out(project: Path):
    (project / "Pulumi.dev.yaml").write_text(
        (project / "Pulumi.dev.yaml").read_text() + "  batch-stacks:cost:\n    hourlyBudgetUsd: 0.25\n"
    )
    assert stacks()[0]["hourlyBudgetUsd"] == 0.25
    text = CliRunner().invoke(cli, ["stacks"], terminal_width=200).output
    assert "dev: at full scale it burns $0.54/h, over its budget of $0.25/h; lower compute.maxVcpus" in text


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--tasks", "10"], "Error: --tasks and --minutes go together"),
        (["--minutes", "0"], "Error: Invalid value for '--minutes'"),
    ],
)
def test_bad_estimates_are_usage_errors(project: Path, args, line):
    result = CliRunner().invoke(cli, ["stacks", *args])
    assert result.exit_code == 2 and result.output.startswith(line)
