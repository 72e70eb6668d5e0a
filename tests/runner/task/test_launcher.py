"""The launcher on real commands against moto's S3: each row leaves its record last, a row's problem
never stops the next row, and a stop at any point of a row never leaves it counted as done."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from runner.runs.rows import latest_records, parse_record
from runner.task import launcher

BUCKET, RUN = "lab-data", "runs/20261202-010203-abcd/"
S3_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


@pytest.fixture
def s3(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    previous = signal.getsignal(signal.SIGTERM)
    yield client
    signal.signal(signal.SIGTERM, previous)


def start(s3: Any, monkeypatch: pytest.MonkeyPatch, table: list[dict], script: str, **extra: str) -> None:
    """The table as one piece, and the task's environment for a task of every row."""
    body = "".join(json.dumps(row) + "\n" for row in table).encode()
    s3.put_object(Bucket=BUCKET, Key=f"{RUN}tasks/piece-00000.jsonl", Body=body)
    env = {
        "RUNNER_TASKS_URI": f"s3://{BUCKET}/{RUN}tasks/",
        "RUNNER_OUTPUT_URI": f"s3://{BUCKET}/{RUN}out/",
        "RUNNER_ROWS_URI": f"s3://{BUCKET}/{RUN}rows/",
        "RUNNER_ROWS": str(len(table)),
        "RUNNER_PER_TASK": str(len(table)),
        "RUNNER_PIECE_ROWS": str(len(table)),
        "RUNNER_COMMAND": json.dumps(["sh", "-c", script]),
        "RUNNER_KEY_COLUMN": "sample",
        "RUNNER_RUN_ID": "20261202-010203-abcd",
        "AWS_BATCH_JOB_ID": "job-1",
        "AWS_BATCH_JOB_ATTEMPT": "1",
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def records(s3: Any) -> dict[int, dict[str, Any]]:
    """Each row's latest record, read."""
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{RUN}rows/").get("Contents", [])
    keys = [parse_record(item["Key"][len(f"{RUN}rows/") :]) for item in listed]
    latest = latest_records(k for k in keys if k is not None)
    return {
        row: json.loads(s3.get_object(Bucket=BUCKET, Key=f"{RUN}rows/{k.name}")["Body"].read())
        for row, k in latest.items()
    }


def test_every_row_leaves_a_record_and_a_bad_row_never_stops_the_next(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
):
    table = [
        {"sample": "ok", "meta": {"depth": 30, "tags": ["a"]}},
        {"sample": "empty"},
        {"sample": "bad"},
        {"sample": "typo"},
    ]
    script = (
        'case "$sample" in '
        'ok) cp "$RUNNER_ROW_FILE" "$RUNNER_OUTPUT_DIR/row.json"; mkdir "$RUNNER_OUTPUT_DIR/d"; '
        'printf "%s" "$meta" > "$RUNNER_OUTPUT_DIR/d/meta.txt";; '
        "empty) ;; "
        'bad) for i in $(seq 1 30); do echo "line $i"; done; echo oops >&2; exit 3;; '
        "typo) exec pyhton3 qc.py;; esac"
    )
    start(s3, monkeypatch, table, script)
    assert launcher.main() == 3  # the first failed row's code; every row ran
    found = records(s3)
    ok, empty, bad, typo = (found[row] for row in range(4))
    assert (ok["state"], ok["key"], ok["exitCode"], ok["runId"], ok["jobId"]) == (
        "succeeded",
        "ok",
        0,
        "20261202-010203-abcd",
        "job-1",
    )
    outputs = {entry["path"]: entry for entry in ok["outputs"]}
    assert set(outputs) == {"row.json", "d/meta.txt"}
    row_file = s3.get_object(Bucket=BUCKET, Key=outputs["row.json"]["key"])["Body"].read()
    assert json.loads(row_file) == table[0]  # objects stay objects
    meta = s3.get_object(Bucket=BUCKET, Key=outputs["d/meta.txt"]["key"])["Body"].read()
    assert json.loads(meta) == {"depth": 30, "tags": ["a"]}  # and reach the environment as JSON text
    assert outputs["d/meta.txt"]["size"] == len(meta)
    assert (
        outputs["d/meta.txt"]["key"].startswith(f"{RUN}out/0/")
        and "job-1-a1/d/meta.txt" in outputs["d/meta.txt"]["key"]
    )
    assert empty["state"] == "no-outputs" and empty["outputs"] == []
    assert (bad["state"], bad["exitCode"], bad["reason"]) == ("failed", 3, "exit code 3")
    assert bad["tail"] == [f"line {i}" for i in range(12, 31)] + ["oops"]  # 20 lines, stderr too
    assert (typo["state"], typo["exitCode"]) == ("failed", 127)
    assert "command not found" in typo["reason"]
    out = capfd.readouterr().out
    assert "Traceback" not in out and "line 30\n" in out  # the row's output reached the log


def test_a_command_that_cannot_start_fails_its_row_in_words_and_the_next_row_runs(
    s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
):
    plain = tmp_path / "qc.sh"
    plain.write_text("echo hi\n")  # not executable
    table = [{"sample": "a"}, {"sample": "b"}]
    start(s3, monkeypatch, table, "unused", RUNNER_COMMAND=json.dumps([str(plain)]))
    assert launcher.main() == 126
    assert {row: r["reason"] for row, r in records(s3).items()} == {
        0: f"not executable: {plain}",
        1: f"not executable: {plain}",
    }
    start(s3, monkeypatch, table, "unused", RUNNER_COMMAND=json.dumps(["pyhton3", "qc.py"]))
    assert launcher.main() == 127
    assert all(r["reason"] == "command not found: pyhton3" for r in records(s3).values())
    # An environment past what exec takes (Linux: E2BIG) is the row's failure, not the launcher's.
    huge = {"sample": "big", **{f"c{i}": "x" * 120_000 for i in range(40)}}
    start(s3, monkeypatch, [huge, {"sample": "fine"}], "true")
    assert launcher.main() == 126
    found = records(s3)
    assert found[0]["reason"].startswith("argument list too long") and found[1]["state"] == "no-outputs"
    assert "Traceback" not in capfd.readouterr().out


def stop_soon(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    return timer


def test_a_stop_while_a_row_runs_records_it_killed_with_its_last_lines_and_runs_nothing_after(
    s3: Any, monkeypatch: pytest.MonkeyPatch
):
    table = [{"sample": "a"}, {"sample": "slow"}, {"sample": "c"}]
    script = 'echo "working on $sample"; if [ "$sample" = slow ]; then sleep 20; fi; echo x > "$RUNNER_OUTPUT_DIR/x"'
    start(s3, monkeypatch, table, script)
    timer = stop_soon(1.5)
    assert launcher.main() == 143
    timer.cancel()
    found = records(s3)
    assert sorted(found) == [0, 1]
    assert found[1]["state"] == "killed" and found[1]["tail"] == ["working on slow"]
    assert found[1]["reason"] == "the task was stopped (SIGTERM) while its command ran"


class StopDuring:
    """An S3 client that delivers SIGTERM to this process at one chosen call."""

    def __init__(self, client: Any, method: str, nth: int, key_suffix: str = "") -> None:
        self.client, self.method, self.nth, self.key_suffix, self.calls = client, method, nth, key_suffix, 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.client, name)
        if name != self.method:
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            if str(kwargs.get("Key", args[2] if len(args) > 2 else "")).endswith(self.key_suffix):
                self.calls += 1
                if self.calls == self.nth:
                    os.kill(os.getpid(), signal.SIGTERM)  # handled before the call returns
            return real(*args, **kwargs)

        return call


@pytest.mark.parametrize(
    ("method", "nth", "suffix", "stage"),
    [
        ("upload_file", 3, "", "while its outputs were uploaded"),
        ("put_object", 1, ".succeeded.json", "before its manifest was written"),
    ],
)
def test_a_stop_during_the_upload_or_before_the_manifest_never_leaves_the_row_done(
    s3: Any, monkeypatch: pytest.MonkeyPatch, method: str, nth: int, suffix: str, stage: str
):
    script = 'for i in 1 2 3 4 5; do echo "$sample $i" > "$RUNNER_OUTPUT_DIR/part-$i.txt"; done'
    start(s3, monkeypatch, [{"sample": "a"}, {"sample": "b"}], script)
    monkeypatch.setattr(launcher.boto3, "client", lambda _name: StopDuring(s3, method, nth, suffix))
    assert launcher.main() == 143
    found = records(s3)
    assert list(found) == [0] and found[0]["state"] == "killed"
    assert found[0]["reason"] == f"the task was stopped (SIGTERM) {stage}"
    leftovers = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{RUN}out/0/").get("KeyCount", 0)
    assert leftovers >= 2  # what the killed attempt uploaded is there, but no manifest names it

    # The rerun of the rows not done (a retry's next attempt) writes under its own attempt's name.
    monkeypatch.setattr(launcher.boto3, "client", lambda _name: s3)
    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", "2")
    monkeypatch.setenv("RUNNER_SKIP_EXISTING", "1")
    assert launcher.main() == 0
    again = records(s3)
    assert [again[row]["state"] for row in (0, 1)] == ["succeeded", "succeeded"]
    keys = [entry["key"] for entry in again[0]["outputs"]]
    assert len(keys) == 5 and all("-a2/" in k for k in keys)


def test_skip_existing_skips_rows_with_a_manifest_and_reruns_rows_with_only_leftovers(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
):
    start(s3, monkeypatch, [{"sample": "a"}, {"sample": "b"}], 'echo x > "$RUNNER_OUTPUT_DIR/x"')
    assert launcher.main() == 0
    first = records(s3)
    s3.put_object(
        Bucket=BUCKET, Key=f"{RUN}rows/{first[1]['row']}/0000000000001-old-a1.killed.json", Body=b"{}"
    )
    s3.delete_object(Bucket=BUCKET, Key=first[0]["outputs"][0]["key"])  # irrelevant: the manifest decides
    monkeypatch.setenv("RUNNER_SKIP_EXISTING", "1")
    s3.put_object(Bucket=BUCKET, Key=f"{RUN}out/2/x", Body=b"leftover")
    capfd.readouterr()
    assert launcher.main() == 0
    log = capfd.readouterr().out
    assert "row 0: done already; skipped" in log and "row 1: done already; skipped" in log


def test_staged_inputs_are_downloaded_before_the_row_and_a_missing_one_fails_only_its_row(
    s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    s3.put_object(Bucket=BUCKET, Key="runs/in/a.fq", Body=b"ACGT\n")
    for lane in ("1.fq", "sub/2.fq"):
        s3.put_object(Bucket=BUCKET, Key=f"runs/in/lanes/{lane}", Body=lane.encode())
    table = [
        {"sample": "file", "reads": f"s3://{BUCKET}/runs/in/a.fq"},
        {"sample": "gone", "reads": f"s3://{BUCKET}/runs/in/vanished.fq"},
        {"sample": "folder", "reads": f"s3://{BUCKET}/runs/in/lanes/"},
    ]
    code = tmp_path / "code"
    code.mkdir()
    (code / "helper.txt").write_text("from the package\n")
    script = (
        'cat helper.txt > "$RUNNER_OUTPUT_DIR/cwd.txt"; '
        'find "$reads" -type f | sort | xargs cat > "$RUNNER_OUTPUT_DIR/reads.txt"; '
        'echo "$reads_URI" > "$RUNNER_OUTPUT_DIR/uri.txt"'
    )
    start(
        s3,
        monkeypatch,
        table,
        script,
        RUNNER_INPUTS=json.dumps(["reads"]),
        RUNNER_PACKAGE_DIR=str(code),
        RUNNER_CODE_DIGEST="ab" * 32,
        RUNNER_CODE_COMMIT="1a2b3c+dirty",
    )
    assert launcher.main() == 1
    found = records(s3)

    def output(row: int, name: str) -> bytes:
        entry = next(e for e in found[row]["outputs"] if e["path"] == name)
        return s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()

    assert output(0, "reads.txt") == b"ACGT\n" and output(0, "cwd.txt") == b"from the package\n"
    assert output(0, "uri.txt") == f"s3://{BUCKET}/runs/in/a.fq\n".encode()
    assert output(2, "reads.txt") == b"1.fqsub/2.fq"
    gone = found[1]
    assert (gone["state"], gone["exitCode"]) == ("failed", None)
    assert gone["reason"] == f"input reads: s3://{BUCKET}/runs/in/vanished.fq not found"
    assert {found[row]["code"]["digest"] for row in found} == {"ab" * 32}
    assert found[0]["code"]["commit"] == "1a2b3c+dirty"
    assert not code.exists()  # the unpacked package is removed when the task ends


def test_a_plain_task_runs_its_command_once_in_the_code_folder_with_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
):
    code = tmp_path / "code"
    code.mkdir()
    (code / "run.sh").write_text(
        'test "$PWD" = "$RUNNER_CODE_DIR" && echo "index $AWS_BATCH_JOB_ARRAY_INDEX"; exit 7\n'
    )
    monkeypatch.delenv("RUNNER_TASKS_URI", raising=False)
    for name, value in {
        "RUNNER_COMMAND": json.dumps(["sh", "run.sh"]),
        "RUNNER_PACKAGE_DIR": str(code),
        "RUNNER_CODE_DIGEST": "cd" * 32,
        "AWS_BATCH_JOB_ARRAY_INDEX": "4",
    }.items():
        monkeypatch.setenv(name, value)
    assert launcher.main() == 7
    assert "index 4" in capfd.readouterr().out
    assert not code.exists()  # removed when the task ends
    monkeypatch.delenv("RUNNER_PACKAGE_DIR")
    monkeypatch.delenv("RUNNER_CODE_DIGEST")
    monkeypatch.setenv("RUNNER_COMMAND", json.dumps(["no-such-program"]))
    assert launcher.main() == 127  # as a shell would say; no traceback
