"""Runs belong to the team, end to end on the emulator: alice submits a sweep; bob (his own keys,
his own state folder) lists it, reads its results, retries it and collects it; alice and bob
racing a retry leave one lineage; `runs --by user` adds up both; a task may not touch a record."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.local.process import ExecutorOptions
from tests.runner.emulator.conftest import PROJECT_DIR, as_json, client, run, running_emulator

pytestmark = pytest.mark.emulator
QC = """\
import os, sys
if os.environ["sample"] in ("s2", "s5") and not os.environ.get("RUNNER_PARENT_RUN_ID"):
    sys.exit("bad input " + os.environ["sample"])
open(os.path.join(os.environ["RUNNER_OUTPUT_DIR"], "qc.txt"), "w").write(os.environ["sample"])
"""


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("alice")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RUNNER_EMULATOR_STOP_GRACE", "2")
        with running_emulator(root, ExecutorOptions(slots=3, spot_interruptions=0), ("dev",)) as started:
            yield started


def cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """The runner in a process of its own (two users at once)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from runner.cli import main; main()", "--local", "--stack", "dev", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_teammate_picks_up_a_run_and_racing_retries_leave_one_lineage(
    team: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    alice_env = {**os.environ, "XDG_STATE_HOME": str(team["root"]), "RUNNER_PROJECT_DIR": str(PROJECT_DIR)}
    monkeypatch.setenv("XDG_STATE_HOME", alice_env["XDG_STATE_HOME"])
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
    table = tmp_path / "samples.csv"
    table.write_text("sample\n" + "".join(f"s{i}\n" for i in range(8)))
    code = tmp_path / "qc"
    code.mkdir()
    (code / "qc.py").write_text(QC)
    sweep = (
        "--stack",
        "dev",
        "submit",
        "--tasks",
        str(table),
        "--code",
        str(code),
        "--command",
        "python3 qc.py",
    )
    first = as_json(*sweep)["runId"]
    assert run("--stack", "dev", "watch", first, "--interval", "1").exit_code == 3
    outputs = tmp_path / "dev.json"
    outputs.write_text(run("--stack", "dev", "outputs", "--json").stdout)
    iam = client(team, "iam")
    iam.create_user(UserName="bob")
    key = iam.create_access_key(UserName="bob")["AccessKey"]

    # bob: his own state folder and keys, joined to alice's emulator.
    bob_env = {
        **alice_env,
        "XDG_STATE_HOME": str(tmp_path / "bob"),
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }
    for name in ("XDG_STATE_HOME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, bob_env[name])
    joined = run("local", "join", team["info"].endpoint_url, "--outputs", str(outputs))
    assert joined.exit_code == 0, joined.output
    listed = as_json("--stack", "dev", "runs")
    assert [(r["runId"], r["submittedBy"]["user"]) for r in listed] == [(first, getpass.getuser())]
    results = as_json("--stack", "dev", "results", first)
    assert {e["row"] for e in results["entries"] if e["state"] == "failed"} == {2, 5}

    # alice and bob retry the same run at once: one wins, the other stops with one line.
    racers = [
        cli(alice_env, "retry", first, "--skip-existing"),
        cli(bob_env, "retry", first, "--skip-existing"),
    ]
    outcomes = [(racer.wait(timeout=120), racer.stdout.read()) for racer in racers]  # type: ignore[union-attr]
    for racer in racers:
        racer.stdout.close()  # type: ignore[union-attr]
    assert sorted(code for code, _ in outcomes) == [0, 1], outcomes
    (lost,) = [text for code, text in outcomes if code == 1]
    assert f"run {first} was retried meanwhile" in lost and lost.count("\n") == 1
    parent = as_json("--stack", "dev", "runs", "--limit", "5")
    (root,) = [r for r in parent if r["runId"] == first]
    (retry,) = root["retryRunIds"]  # one lineage
    assert run("--stack", "dev", "watch", retry, "--interval", "1").exit_code == 0

    # bob collects every row; the summary (alice's view too) folds the retry in.
    collected = run("--stack", "dev", "collect", first, "--to", str(tmp_path / "out"))
    assert collected.exit_code == 0, collected.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [str(i) for i in range(8)]
    assert as_json("--stack", "dev", "results", first)["complete"] is True

    # bob's own run, then the week's totals by user name both.
    own = as_json("--stack", "dev", "submit", "--array", "2", "--command", "true")["runId"]
    assert run("--stack", "dev", "watch", own, "--interval", "1").exit_code == 0
    assert run("--stack", "dev", "summary", own).exit_code == 0
    mine = as_json("--stack", "dev", "runs", "--mine")
    assert own in {r["runId"] for r in mine} and first not in {r["runId"] for r in mine}
    by_user = {t["key"]: t for t in as_json("--stack", "dev", "runs", "--by", "user", "--since", "1d")}
    assert {"bob", getpass.getuser()} <= set(by_user) and by_user["bob"]["runs"] >= 1


def test_a_task_may_read_run_records_but_never_write_them(
    team: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("XDG_STATE_HOME", str(team["root"]))
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
    bucket = team["stacks"]["dev"]["data"]["bucket"]
    probe = (
        "import boto3\n"
        "s3 = boto3.client('s3')\n"
        f"print('read', len(s3.list_objects_v2(Bucket='{bucket}', Prefix='runs/index/').get('Contents', [])) >= 0)\n"
        "for key in ('runs/20261202-000000-0000/run.json', 'runs/index/20261202-000000-0000~x'):\n"
        "    try:\n"
        f"        s3.put_object(Bucket='{bucket}', Key=key, Body=b'{{}}'); print('wrote', key)\n"
        "    except Exception as err:\n"
        "        print('denied', key, err.response['Error']['Code'])\n"
    )
    submitted = as_json("--stack", "dev", "submit", "--command", f'{sys.executable} -c "{probe}"')
    assert run("--stack", "dev", "watch", submitted["runId"], "--interval", "1").exit_code == 0
    log = run("--stack", "dev", "logs", submitted["runId"]).output
    assert "denied runs/20261202-000000-0000/run.json AccessDenied" in log
    assert "denied runs/index/20261202-000000-0000~x AccessDenied" in log and "wrote" not in log


def test_a_teammate_pointed_at_the_owners_emulator_reads_and_retries_the_owners_run(
    team: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """carol never joins: AWS_ENDPOINT_URL and the keys alice made for her, the stack by --outputs,
    her own state folder with no emulator. alice's run is hers to read and retry all the same."""
    from click.testing import CliRunner

    from runner.cli import cli as runner_cli

    monkeypatch.setenv("XDG_STATE_HOME", str(team["root"]))
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
    first = as_json(
        "--stack", "dev", "submit", "--array", "3", "--command", "sh -c 'exit $AWS_BATCH_JOB_ARRAY_INDEX'"
    )
    assert run("--stack", "dev", "watch", first["runId"], "--interval", "1").exit_code == 3
    outputs = tmp_path / "dev.json"
    outputs.write_text(run("--stack", "dev", "outputs", "--json").stdout)
    iam = client(team, "iam")
    iam.create_user(UserName="carol")
    key = iam.create_access_key(UserName="carol")["AccessKey"]
    for name, value in {
        "XDG_STATE_HOME": str(tmp_path / "carol"),
        "AWS_ENDPOINT_URL": team["info"].endpoint_url,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)

    def carol(*args: str) -> Any:
        return CliRunner().invoke(runner_cli, ["--outputs", str(outputs), *args])

    summary = carol("summary", first["runId"])
    assert summary.exit_code == 3 and "2 failed, by class" in summary.output, summary.output
    report = carol("report", first["runId"], "--out", str(tmp_path / "r.html"))
    assert report.exit_code == 0 and (tmp_path / "r.html").exists(), report.output
    retried = carol("retry", first["runId"], "--command", "true", "--json")
    assert retried.exit_code == 0, retried.output
    assert not (tmp_path / "carol" / "batch-stacks" / "local" / "credentials.json").exists()
