"""End to end: the local stack keeps its work through `kill -9`, `local down` and `local up` on
another port, and hands back what a killed emulator left running as AWS handles a lost host."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.local.process import free_port, running_server
from runner.local.state import LocalState
from tests.runner.emulator.conftest import PROJECT_DIR, as_json, batch, client, wait_for

pytestmark = pytest.mark.emulator
ROWS, PER_TASK = 200, 10  # 20 tasks
POKES = "durable-test-pokes"
ROW = 'sh -c \'sleep 0.1; echo "$n" > "$RUNNER_OUTPUT_DIR/r.txt"\''


def up(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["local", "up", "--stack", "dev", "--slots", "3", *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_home = tmp_path_factory.mktemp("durable-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(state_home))
        patch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
        patch.setenv("RUNNER_EMULATOR_MIN_TIMEOUT", "1")
        patch.setenv("RUNNER_EMULATOR_STOP_GRACE", "0.5")
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        up()
        try:
            yield state_home
        finally:
            CliRunner().invoke(cli, ["local", "down"])


@pytest.fixture
def state(root: Path, monkeypatch: pytest.MonkeyPatch) -> LocalState:
    monkeypatch.setenv("XDG_STATE_HOME", str(root))
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
    return LocalState(root / "batch-stacks")


def local(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--local", *args])


def kill_9(state: LocalState) -> None:
    """The emulator dies at once: no snapshot, no task stopped, its server file left behind."""
    info = running_server(state)
    assert info is not None
    os.kill(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while running_server(state) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_server(state) is None


def saved_since_now(state: LocalState) -> None:
    """Waits for two snapshots to be written from now on: the second began after the first was
    written, so after this call, and holds everything acknowledged before it. That is the window
    the README documents, whatever its length on a loaded machine. A write of its own before each
    makes sure there is a change to save."""
    s3 = client({"state": state, "info": state.server()}, "s3")
    s3.create_bucket(Bucket=POKES)

    def version() -> tuple[int, int] | None:
        try:
            written = state.snapshot_file.stat()
        except FileNotFoundError:
            return None
        return written.st_ino, written.st_mtime_ns

    seen, left, deadline = version(), 2, time.monotonic() + 60
    s3.put_object(Bucket=POKES, Key="poke", Body=b"1")
    while left and time.monotonic() < deadline:
        time.sleep(0.02)  # snapshots are at least DELAY (0.2 s) apart: none is missed
        if (now := version()) != seen:
            seen, left = now, left - 1
            s3.put_object(Bucket=POKES, Key="poke", Body=b"2")
    assert not left, "the emulator wrote no snapshot for a minute after a change"


def rows_done(run_id: str) -> set[int]:
    counts = as_json("results", run_id)["counts"]["succeeded"]
    done: set[int] = set()
    for part in filter(None, (counts.get("ranges") or "").split(",")):
        first, _, last = part.partition("-")
        done.update(range(int(first), int(last or first) + 1))
    return done


def test_a_sweep_killed_mid_run_loses_no_finished_row_and_a_retry_reruns_only_the_rest(
    state: LocalState, tmp_path: Path
):
    table = tmp_path / "rows.csv"
    table.write_text("n\n" + "".join(f"{i}\n" for i in range(ROWS)))
    submitted = as_json(
        "submit", "--tasks", str(table), "--per-task", str(PER_TASK), "--attempts", "1", "--command", ROW
    )
    run_id = submitted["runId"]
    deadline = time.monotonic() + 60
    while len(done := rows_done(run_id)) < 40 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert 40 <= len(done) < ROWS, "the sweep should be mid-run"
    saved_since_now(state)  # what the user saw as finished is now past the README's window
    kill_9(state)

    restarted = up().output
    assert "Restored the local stack's state" in restarted
    assert "lost their host, as on AWS" in restarted  # the tasks that were running
    assert rows_done(run_id) >= done  # no finished row is lost
    assert local("watch", run_id, "--interval", "1").exit_code == 3  # the lost tasks failed
    summary = as_json("summary", run_id)
    reasons = {f["statusReason"] for f in summary["failures"]}
    assert reasons and all(
        r.startswith("Host EC2 (instance i-") and r.endswith(") terminated.") for r in reasons
    )
    # Rows a lost task had not finished; maybe none, if its host went after its last row.
    unfinished = ROWS - len(rows_done(run_id))

    retried = as_json("retry", run_id, "--skip-existing", "--wait", "--interval", "1")
    assert retried["summary"]["counts"]["FAILED"] == 0, retried["summary"]["failures"]
    ran = skipped = 0
    for index in sorted({f["index"] for f in summary["failures"]}):
        log = local("logs", run_id, "--index", str(index)).output
        ran += sum(": running (" in line for line in log.splitlines())
        skipped += log.count("done already; skipped")
    assert ran == unfinished  # only the rows that had not finished ran again
    assert ran + skipped == PER_TASK * len({f["index"] for f in summary["failures"]})
    assert rows_done(run_id) == set(range(ROWS))


def test_down_and_up_on_another_port_serves_every_earlier_run(state: LocalState, tmp_path: Path):
    first = as_json(
        "submit", "--array", "3", "--command", "sh -c 'exit $AWS_BATCH_JOB_ARRAY_INDEX'", "--wait"
    )
    run_id, before = first["runId"], state.server()
    assert before is not None
    assert "its data is kept in" in CliRunner().invoke(cli, ["local", "down"]).output
    port = free_port()
    up("--port", str(port))
    assert as_json("runs")[0]["runId"] == run_id
    summary = local("summary", run_id)
    assert summary.exit_code == 3 and "2 failed" in summary.output, summary.output
    assert local("report", run_id, "--out", str(tmp_path / "r.html")).exit_code == 0
    retried = as_json("retry", run_id, "--command", "true", "--wait", "--interval", "1")
    assert retried["summary"]["counts"]["FAILED"] == 0

    # The next start takes the port it had again: endpoints given to teammates stay good.
    CliRunner().invoke(cli, ["local", "down"])
    up()
    again = state.server()
    assert again is not None and again.port == port

    # A teammate pointed at the owner's endpoint (now on a port the record never saw) sees the run.
    access, secret = state.credentials()
    environment: dict[str, str | None] = {
        "XDG_STATE_HOME": str(tmp_path / "carol"),
        "AWS_ENDPOINT_URL": again.endpoint_url,
        "AWS_ACCESS_KEY_ID": access,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_SESSION_TOKEN": None,
    }
    outputs = tmp_path / "dev.json"
    outputs.write_text(local("outputs", "--json").stdout)
    seen = CliRunner(env=environment).invoke(cli, ["--outputs", str(outputs), "summary", run_id])
    assert seen.exit_code == 0, seen.output
    assert "SUCCEEDED (complete)" in seen.output and f"with retry runs {retried['runId']}" in seen.output


def test_a_killed_emulator_stops_what_it_left_running_and_its_jobs_lose_their_host(state: LocalState):
    outputs = as_json("outputs")
    emulator = {"state": state, "info": state.server()}
    common = {"jobQueue": outputs["jobQueueArn"], "jobDefinition": outputs["jobDefinitionArn"]}
    once = batch(emulator).submit_job(
        jobName="once",
        retryStrategy={"attempts": 1},
        containerOverrides={"command": ["sleep", "300"]},
        **common,
    )["jobId"]
    twice = batch(emulator).submit_job(
        jobName="twice",
        retryStrategy={"attempts": 2},
        containerOverrides={"command": ["sh", "-c", '[ "$AWS_BATCH_JOB_ATTEMPT" = 2 ] || sleep 300']},
        **common,
    )["jobId"]
    for job_id in (once, twice):
        assert wait_for(batch(emulator), job_id, ("RUNNING",))["status"] == "RUNNING"
    saved_since_now(state)
    sleepers = [
        p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[-2:] == ["sleep", "300"]
    ]
    assert sleepers
    before = state.server()
    assert before is not None
    kill_9(state)
    assert all(p.is_running() for p in sleepers)  # orphans, until the emulator starts again

    restarted = up().output
    assert "2 task(s) running when it stopped lost their host" in restarted, restarted
    assert "left-over process group(s) stopped" in restarted
    psutil.wait_procs(sleepers, timeout=5)
    assert not any(p.is_running() for p in sleepers)
    emulator["info"] = state.server()
    assert emulator["info"].port == before.port  # restarted at once, on the port it had
    failed = wait_for(batch(emulator), once)
    assert failed["status"] == "FAILED"
    assert failed["statusReason"].startswith("Host EC2 (instance i-")
    assert len(failed["attempts"]) == 1
    retried = wait_for(batch(emulator), twice)
    assert retried["status"] == "SUCCEEDED" and len(retried["attempts"]) == 2
    assert retried["attempts"][0]["statusReason"].endswith("terminated.")
    assert not any((state.work_dir).glob("*/*/process.json"))  # nothing left of the killed attempts
