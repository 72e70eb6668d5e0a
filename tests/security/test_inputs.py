"""What a user (or a table) hands the runner: names that would replace a task's identity or its
runtime, names that are not names, files that are not text, and a package replaced behind its
digest. Each is one line, and nothing is uploaded or submitted."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import boto3
import pytest

from runner.errors import InvalidInputError, RunnerError
from runner.local.process import TESTED_MOTO, check_moto
from runner.runs.code_package import gather
from tests.runner.conftest import REGION, Runner, moto_jobs
from tests.security.conftest import BUCKET


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("AWS_ACCESS_KEY_ID", "--env AWS_ACCESS_KEY_ID would give the task other keys than its job role's"),
        ("AWS_SECRET_ACCESS_KEY", "--env AWS_SECRET_ACCESS_KEY would give the task other keys"),
        ("AWS_SESSION_TOKEN", "--env AWS_SESSION_TOKEN would give the task other keys"),
        ("AWS_PROFILE", "--env AWS_PROFILE would give the task other keys"),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "--env AWS_CONTAINER_CREDENTIALS_FULL_URI would give"),
        ("RUNNER_COMMAND", "--env RUNNER_COMMAND is reserved (RUNNER_*, AWS_BATCH*, ECS_*"),
        ("RUNNER_ANYTHING", "--env RUNNER_ANYTHING is reserved"),
        ("ECS_CONTAINER_METADATA_URI_V4", "--env ECS_CONTAINER_METADATA_URI_V4 is reserved"),
        ("X" * 300, "is not a variable name; use up to 255 letters"),
    ],
)
def test_env_that_would_change_who_the_task_is_is_refused(data_stack: Runner, name: str, message: str):
    result = data_stack("submit", "--array", "2", "--command", "true", "--env", f"{name}=AKIAEXAMPLE")
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert moto_jobs() == {}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("FOO\n", "is not an environment variable name"),
        ("PATH", "'PATH' would replace a variable every command relies on; rename the column"),
        ("HOME", "'HOME' would replace a variable"),
        ("LD_PRELOAD", "'LD_PRELOAD' would replace a variable"),
        ("PYTHONPATH", "'PYTHONPATH' would replace a variable"),
        ("AWS_SECRET_ACCESS_KEY", "'AWS_SECRET_ACCESS_KEY' is reserved"),
        ("Y" * 300, "is not an environment variable name; use up to 255"),
    ],
)
def test_a_column_that_would_replace_a_tasks_variable_is_refused(
    data_stack: Runner, tmp_path: Path, header: str, message: str
):
    table = tmp_path / "t.jsonl"
    table.write_text('{"sample": "a", ' + f'"{header.encode("unicode_escape").decode()}": "x"' + "}\n")
    result = data_stack("submit", "--tasks", str(table), "--command", "true")
    assert result.exit_code == 2 and message in result.output, result.output
    assert moto_jobs() == {}
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert listed == []  # nothing uploaded


@pytest.mark.skipif(os.uname().sysname == "Darwin", reason="macOS file names are always UTF-8")
def test_a_file_name_that_is_not_utf8_is_one_line(tmp_path: Path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "ok.py").write_text("print(1)\n")
    (code / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name\n")
    with pytest.raises(InvalidInputError) as refused:
        gather(code)
    assert str(refused.value) == (
        f"--code {code}: the name 'caf\\xe9.txt' is not UTF-8; rename it or list it in .runnerignore"
    )


def test_a_package_replaced_behind_its_digest_is_uploaded_again(data_stack: Runner, tmp_path: Path):
    code = tmp_path / "sim"
    code.mkdir()
    (code / "sim.py").write_text("print('v1')\n")
    first = data_stack.json("submit", "--array", "2", "--code", str(code), "--command", "python3 sim.py")
    s3 = boto3.client("s3", region_name=REGION)
    key = first["code"]["package"].removeprefix(f"s3://{BUCKET}/")
    good = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"not the package")  # replaced by hand, or cut short
    again = data_stack.json("submit", "--array", "2", "--code", str(code), "--command", "python3 sim.py")
    assert again["code"]["uploaded"] is True
    repaired = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert repaired == good and hashlib.sha256(repaired).hexdigest() in key
    third = data_stack.json("submit", "--array", "2", "--code", str(code), "--command", "python3 sim.py")
    assert third["code"]["uploaded"] is False  # intact: not sent again


@pytest.mark.parametrize("installed", ["5.2.1", "5.3.0"])
def test_a_moto_the_emulator_was_not_tested_with_is_one_line(installed: str):
    with pytest.raises(RunnerError) as refused:
        check_moto(lambda _: installed)
    assert str(refused.value) == (
        f"moto {installed} is installed; the emulator needs moto {TESTED_MOTO}: pip install "
        f"'batch-stacks[local]' (or 'moto[server]=={TESTED_MOTO}')"
    )
    check_moto(lambda _: TESTED_MOTO)
