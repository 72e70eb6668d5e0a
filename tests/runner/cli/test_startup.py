"""The CLI starts at once: help and parsing load neither the Pulumi SDK, boto3 nor the report's
libraries, and a Ctrl-C at any moment is one line and exit code 130."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from runner.cli.root import COMMANDS, cli

HEAVY = ("pulumi", "pulumi_aws", "boto3", "botocore", "matplotlib", "jinja2", "numpy")
PROBE = (
    "import atexit, sys\n"
    "heavy = {heavy!r}\n"
    "atexit.register(lambda: print('LOADED', sorted(m for m in heavy if m in sys.modules), file=sys.stderr))\n"
    "sys.argv = ['runner', *{args!r}]\n"
    "from runner.cli import main\n"
    "main()\n"
)


def loaded_by(*args: str) -> list[str]:
    code = PROBE.format(heavy=HEAVY, args=list(args))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED "))
    return ast.literal_eval(line.removeprefix("LOADED "))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["submit", "--help"],
        ["retry", "--help"],
        ["results", "--help"],
        ["report", "--help"],
        ["local", "--help"],
        ["local", "up", "--help"],
        ["stacks", "--help"],
    ],
)
def test_help_and_parsing_load_no_heavy_library(args: list[str]):
    assert loaded_by(*args) == []


def test_the_command_list_names_every_command_once_and_each_loads():
    context = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None and command.name == name, name
    assert cli.get_command(context, "nope") is None


@pytest.mark.parametrize("delay", [0.25, 0.5, 1.0, 2.0])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(tmp_path: Path, outputs_file: Path, delay: float):
    """``submit --tasks -`` waits on standard input; SIGINT lands while the command loads, while its
    options are parsed, or while it waits, depending on the delay (from when Python is up)."""
    command = [
        sys.executable,
        "-c",
        "from runner.cli import main; main()",
        "--outputs",
        str(outputs_file),
        "submit",
        "--tasks",
        "-",
        "--format",
        "csv",
    ]
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=60)
    child.stdin.close()  # type: ignore[union-attr]
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    if child.returncode == -signal.SIGINT:  # before Python set up its handler: the shell says 130
        assert lines == [], err
        return
    assert child.returncode == 130, err
    assert lines == [
        "Error: interrupted; nothing already submitted is lost (`runner runs` lists every run)"
    ], err


@pytest.mark.parametrize("where", ["loading the command", "loading the CLI"])
def test_ctrl_c_while_modules_load_is_the_same_one_line(
    where: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Deterministically: a KeyboardInterrupt raised by an import, wherever it happens."""
    import importlib

    import runner.cli
    import runner.cli.root

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    if where == "loading the command":
        monkeypatch.setattr(importlib, "import_module", interrupted)
    else:
        monkeypatch.setattr(runner.cli.root.cli, "main", interrupted)
    monkeypatch.setattr(sys, "argv", ["runner", "submit", "--help"])
    with pytest.raises(SystemExit) as exited:
        runner.cli.main()
    assert exited.value.code == 130
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.strip()] == [
        "Error: interrupted; nothing already submitted is lost (`runner runs` lists every run)"
    ]
