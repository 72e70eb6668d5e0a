"""The container's bootstrap: fetch the run's package by its digest, check it, unpack it, become the
launcher inside it. Run here in-process against moto's S3, with the launcher's run caught."""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from runner.aws.stack_outputs import DataLocation
from runner.runs.code_package import package_code
from runner.runs.launch import BOOTSTRAP, Launch, launcher_source
from tests.runner.conftest import REGION

BUCKET = "lab-data"


class Became(Exception):
    """What ``runpy.run_path`` was asked to run."""


@pytest.fixture
def launch(mocked_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Launch]:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    code = tmp_path / "analysis"
    (code / "lib").mkdir(parents=True)
    (code / "qc.py").write_text("print('qc')\n")
    (code / "lib" / "util.py").write_text("X = 1\n")
    shipped = Launch(
        package_code(code, launcher_source()), DataLocation(BUCKET, "runs/", "read-write"), "python3"
    )
    assert shipped.upload(s3) is True and shipped.upload(s3) is False  # by digest: once
    for name, value in shipped.environment(["python3", "qc.py"]).items():
        monkeypatch.setenv(name, value)

    def run_path(path: str, run_name: str) -> None:
        raise Became(path, run_name, list(sys.argv))

    monkeypatch.setattr(runpy, "run_path", run_path)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.delenv("RUNNER_PACKAGE_DIR", raising=False)
    yield shipped


def run_bootstrap() -> Any:
    exec(compile(BOOTSTRAP, "<bootstrap>", "exec"), {"__name__": "__main__"})


def test_the_package_is_checked_unpacked_and_its_launcher_run(launch: Launch):
    with pytest.raises(Became) as became:
        run_bootstrap()
    launcher, run_name, argv = became.value.args
    folder = Path(os.environ["RUNNER_PACKAGE_DIR"])
    assert launcher == str(folder / ".batch-stacks" / "launcher.py") and run_name == "__main__"
    assert argv == [launcher]
    assert Path(launcher).read_bytes() == launcher_source()
    assert (folder / "qc.py").read_text() == "print('qc')\n" and (folder / "lib" / "util.py").exists()


def test_a_package_that_does_not_match_its_digest_is_refused(launch: Launch, monkeypatch: pytest.MonkeyPatch):
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=launch.key, Body=b"tampered")
    with pytest.raises(SystemExit) as stopped:
        run_bootstrap()
    assert (
        stopped.value.code
        == f"[batch-stacks] the code package {launch.uri} does not match its digest; submit again"
    )


def test_a_package_that_is_gone_is_one_line(launch: Launch):
    boto3.client("s3", region_name=REGION).delete_object(Bucket=BUCKET, Key=launch.key)
    with pytest.raises(SystemExit) as stopped:
        run_bootstrap()
    assert str(stopped.value.code).startswith(
        f"[batch-stacks] the code package {launch.uri} cannot be read: "
    )
