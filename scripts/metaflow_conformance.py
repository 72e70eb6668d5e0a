"""Metaflow as an outside client of the emulator: @batch steps on the lab stack's queue, job role
and data bucket, with no workaround in the flows (no @environment patching, default memory).

Usage: python scripts/metaflow_conformance.py [--report FILE]

Metaflow (pinned below) goes in its own venv, ``.venv-metaflow`` (created once). The emulator is
started with that venv's ``bin`` first on PATH, as a Metaflow user's shell would have it, so tasks
run Metaflow's Python. Three checks, each a flow from ``examples/metaflow/``:

1. ``sweep_flow.py``: a foreach over @batch steps, one of which fails its first attempt and is run
   again by @retry; the run succeeds with every result.
2. ``failing_flow.py``: a @batch step that raises; the run fails and ``python failing_flow.py logs``
   shows the step's output and the error.
3. ``slow_flow.py``: a long @batch step stopped by ``python slow_flow.py batch kill``; its job ends
   FAILED and the run stops.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from runner.aws.stack_outputs import StackOutputs
from runner.local.deploy import deploy_or_keep
from runner.local.process import ExecutorOptions, start_server, stop_server
from runner.local.state import LocalState

METAFLOW = "metaflow==2.19.39"
PROJECT_DIR = Path(__file__).resolve().parents[1]
FLOWS = PROJECT_DIR / "examples" / "metaflow"
VENV = PROJECT_DIR / ".venv-metaflow"


def metaflow_python() -> Path:
    """The pinned Metaflow's interpreter, in its own venv (made once)."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != METAFLOW:
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # not this project's
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, env=clean)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, METAFLOW, "boto3"], check=True, env=clean)
        stamp.write_text(METAFLOW)
    return python


def metaflow_settings(outputs: StackOutputs, endpoint: str, keys: tuple[str, str]) -> dict[str, str]:
    """What a Metaflow user sets for a batch-stacks stack (README: "Using Metaflow with a
    batch-stacks stack"), here pointed at the emulator."""
    assert outputs.data is not None
    root = outputs.data.uri("metaflow")
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": keys[0],
        "AWS_SECRET_ACCESS_KEY": keys[1],
        "AWS_DEFAULT_REGION": outputs.region,
        "METAFLOW_S3_ENDPOINT_URL": endpoint,
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_DATASTORE_SYSROOT_S3": root,
        "METAFLOW_DATATOOLS_S3ROOT": f"{root}/data",
        "METAFLOW_BATCH_JOB_QUEUE": outputs.job_queue_name,
        "METAFLOW_ECS_S3_ACCESS_IAM_ROLE": outputs.job_role_arn,
        "METAFLOW_BATCH_CONTAINER_IMAGE": "python:3.12-slim",
        "USERNAME": "conformance",
    }


class Checks:
    def __init__(self, python: Path, work: Path, env: dict[str, str], batch: Any, queue: str) -> None:
        self.python, self.work, self.env, self.batch, self.queue = python, work, env, batch, queue
        self.results: dict[str, dict[str, Any]] = {}

    def flow(self, name: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), name, *args],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def record(self, name: str, check: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            self.results[name] = {"outcome": "passed", "detail": check()}
        except Exception as err:  # a failed check is reported, and the next one still runs
            self.results[name] = {"outcome": "failed", "detail": f"{type(err).__name__}: {err}"}
        self.results[name]["seconds"] = round(time.monotonic() - started, 1)
        print(f"{name}: {self.results[name]['outcome']} ({self.results[name]['seconds']} s)", flush=True)

    def sweep(self) -> str:
        done = self.flow("sweep_flow.py", "run")
        expected = "results [('a', 1, 0), ('bb', 4, 1), ('ccc', 9, 0)]"
        if done.returncode != 0 or expected not in done.stdout + done.stderr:
            raise AssertionError(f"exit {done.returncode}; last lines: {tail(done)}")
        return "foreach of 3 @batch steps, bb retried once; " + expected

    def failing(self) -> str:
        done = self.flow("failing_flow.py", "run")
        if done.returncode == 0:
            raise AssertionError("the failing flow succeeded")
        run_id = re.search(r"run-id (\d+)", done.stdout + done.stderr)
        if run_id is None:
            raise AssertionError(f"no run id in the output: {tail(done)}")
        logs = self.flow("failing_flow.py", "logs", f"{run_id[1]}/check")
        text = logs.stdout + logs.stderr
        for needed in ("checking sample s7", "ValueError: sample s7: truncated input file"):
            if needed not in text:
                raise AssertionError(f"`logs` lacks {needed!r}: {text[-600:]}")
        return f"run {run_id[1]} failed; `logs {run_id[1]}/check` shows the step's output and the ValueError"

    def kill(self) -> str:
        run = subprocess.Popen(
            [str(self.python), "slow_flow.py", "run"],
            cwd=self.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            job = self.wait_for_running(deadline=time.monotonic() + 300)
            killed = self.flow("slow_flow.py", "batch", "kill", "--my-runs")
            if killed.returncode != 0:
                raise AssertionError(f"batch kill exited {killed.returncode}: {tail(killed)}")
            status = self.wait_for_end(job, deadline=time.monotonic() + 120)
            output, _ = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
        if status != "FAILED" or run.returncode == 0:
            raise AssertionError(
                f"job {job} ended {status}; the run exited {run.returncode}: {output[-600:]}"
            )
        return f"job {job} RUNNING, `batch kill --my-runs` -> FAILED; the run exited {run.returncode}"

    def wait_for_running(self, deadline: float) -> str:
        while time.monotonic() < deadline:
            listed = self.batch.list_jobs(jobQueue=self.queue, jobStatus="RUNNING")["jobSummaryList"]
            if listed:
                return str(listed[0]["jobId"])
            time.sleep(1)
        raise AssertionError("no Metaflow job reached RUNNING")

    def wait_for_end(self, job: str, deadline: float) -> str:
        while time.monotonic() < deadline:
            status = str(self.batch.describe_jobs(jobs=[job])["jobs"][0]["status"])
            if status in ("SUCCEEDED", "FAILED"):
                return status
            time.sleep(1)
        raise AssertionError(f"job {job} did not end after batch kill")


def tail(done: subprocess.CompletedProcess[str]) -> str:
    return " | ".join((done.stdout + done.stderr).strip().splitlines()[-6:])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", type=Path, default=Path("conformance-metaflow.json"))
    args = parser.parse_args()
    python = metaflow_python()
    with tempfile.TemporaryDirectory() as root:
        os.environ["XDG_STATE_HOME"] = root
        # Tasks find Metaflow's Python (with boto3) first, as in a Metaflow user's shell.
        os.environ["PATH"] = f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        os.environ["RUNNER_EMULATOR_STOP_GRACE"] = "5"
        state = LocalState(Path(root) / "batch-stacks")
        info, _ = start_server(state, None, ExecutorOptions(slots=4, spot_interruptions=0))
        try:
            outputs = deploy_or_keep(PROJECT_DIR, "dev", info.endpoint_url, state).outputs
            keys = state.credentials()
            env = {**os.environ, **metaflow_settings(outputs, info.endpoint_url, keys)}
            work = Path(root) / "flows"
            shutil.copytree(FLOWS, work)
            batch = boto3.client(
                "batch",
                region_name=outputs.region,
                endpoint_url=info.endpoint_url,
                aws_access_key_id=keys[0],
                aws_secret_access_key=keys[1],
            )
            checks = Checks(python, work, env, batch, outputs.job_queue_arn)
            checks.record("foreach, @batch and @retry", checks.sweep)
            checks.record("a failing step and its logs", checks.failing)
            checks.record("batch kill", checks.kill)
        finally:
            stop_server(state)
    args.report.write_text(json.dumps(checks.results, indent=1))
    passed = sum(r["outcome"] == "passed" for r in checks.results.values())
    print(f"metaflow ({METAFLOW}): {passed} of {len(checks.results)} checks passed")
    return 0 if passed == len(checks.results) else 1


if __name__ == "__main__":
    sys.exit(main())
