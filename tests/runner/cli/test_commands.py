"""The CLI's rules: one line per mistake, one exit-code rule, options anywhere, Ctrl-C, help."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.aws.stack_outputs import StackOutputs
from runner.cli import cli
from runner.cli import submit as cli_module
from tests.runner.conftest import Runner, moto_jobs


def runs_dir(state: Path) -> Path:
    return state / "batch-stacks" / "runs"


@pytest.mark.parametrize(
    ("args", "exit_code", "line"),
    [
        (
            ["submit", "--memory", "99999999"],
            2,
            "Error: Invalid value for '--memory': 99999999 is not in the range 128<=x<=1572864. "
            "(see `runner submit --help`)",
        ),
        (
            ["submit", "--timeout", "9999999999"],
            2,
            "Error: Invalid value for '--timeout': 9999999999 is not in the range",
        ),
        (
            ["submit", "--vcpus", "64"],
            2,
            "Error: --vcpus 64 cannot run on stack 'dev'; use 1 to 32 (its maxVcpus)",
        ),
        (["submit", "--array", "0"], 2, "Error: --array 0 is out of range; use 2 to 1,000,000"),
        (["submit", "--env", "BIG=" + "x" * 9000], 2, "Error: --env and --command add up to 9,"),
        (["submit", "--param", "p=" + "x" * 31_000], 2, "Error: the job request is 31,"),
        (
            ["submit", "--depends-on", "no-such-job"],
            2,
            "Error: --depends-on no-such-job: AWS has no job no-such-job; check the id with `runner runs`",
        ),
        (
            ["submit", "--depends-on", "20261125-101010-dead"],
            1,
            "Error: no run 20261125-101010-dead; list runs with `runner runs`",
        ),
        (["submit", "--bogus"], 2, "Error: No such option '--bogus'."),
        (
            ["logs", "x", "--index", "-1"],
            2,
            "Error: Invalid value for '--index': -1 is not in the range x>=0.",
        ),
    ],
)
def test_bad_options_are_one_line_with_the_documented_exit_code_and_submit_nothing(
    runner: Runner, stack: StackOutputs, isolated_environment: Path, api_calls: Counter, args, exit_code, line
):
    result = runner(*args)
    assert result.exit_code == exit_code, result.output
    assert result.output.startswith(line) and result.output.count("\n") == 1, result.output
    assert api_calls["SubmitJob"] == 0 and moto_jobs() == {}
    assert not runs_dir(isolated_environment).exists() or not list(runs_dir(isolated_environment).iterdir())


def test_depends_on_a_known_run_waits_for_its_job(runner: Runner, stack: StackOutputs):
    first = runner.json("submit", "--array", "2")
    second = runner.json("submit", "--depends-on", first["runId"])
    assert moto_jobs()[second["jobId"]].depends_on == [{"jobId": first["jobId"]}]


def test_runs_warns_about_an_unreadable_record_and_a_command_on_it_explains(
    runner: Runner, stack: StackOutputs, isolated_environment: Path
):
    good = runner.json("submit")
    broken = runs_dir(isolated_environment) / "20261125-101010-beef.json"
    broken.write_text('{"run_id": "20261125-101010-beef", "stack": 3}')
    result = runner("runs")
    assert result.exit_code == 0
    assert result.stderr == (
        f"Warning: run record {broken} cannot be read: 'stack' should be a stack name, got a number; "
        "remove it (`runner runs --prune` removes unreadable records)\n"
    )
    assert good["runId"] in result.stdout
    on_it = runner("summary", "20261125-101010-beef")
    assert on_it.exit_code == 1
    assert on_it.output.startswith(f"Error: run record {broken} cannot be read: 'stack' should be")
    pruned = runner("runs", "--prune")
    assert pruned.stdout.splitlines()[-1] == "Pruned 1 run record."
    assert not broken.exists() and runner.json("runs")[0]["runId"] == good["runId"]


def test_ctrl_c_anywhere_is_one_line_and_exit_130(runner: Runner, stack: StackOutputs, monkeypatch):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "submit_run", interrupted)
    result = runner("submit", "--array", "3")
    assert result.exit_code == 130
    assert result.output == (
        "Error: interrupted; nothing already submitted is lost (`runner runs` lists every run)\n"
    )


@pytest.mark.parametrize("command", ["submit", "watch", "summary", "logs", "cancel", "runs", "outputs"])
def test_every_option_says_what_it_accepts(command: str):
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.strip().startswith("--")]
    assert lines
    for line in lines:
        assert len(line.split("  ")) > 1 and line.split("  ", 1)[1].strip(), (
            f"{command}: {line!r} has no help"
        )


def test_help_shows_ranges_and_defaults():
    text = CliRunner().invoke(cli, ["submit", "--help"], terminal_width=200).output
    assert "128<=x<=1572864" in text and "60<=x<=1209600" in text and "1<=x<=10" in text
    assert "2 to 1,000,000" in text
    runs_help = CliRunner().invoke(cli, ["runs", "--help"], terminal_width=200).output
    assert "default: 30" in runs_help and "default: 20" in runs_help
    top = CliRunner().invoke(cli, ["--help"], terminal_width=200).output
    assert "2 a usage mistake or a value out of range" in top


def test_json_of_runs_is_parseable_with_a_bad_record_present(
    runner: Runner, stack: StackOutputs, isolated_environment: Path
):
    runner.json("submit")
    (runs_dir(isolated_environment) / "x.json").write_bytes(b"\x80")
    result = runner("runs", "--json")
    assert len(json.loads(result.stdout)) == 1 and result.stderr.startswith("Warning: run record")
