"""batch-stacks task launcher: runs a sweep's rows inside one AWS Batch task.

It needs only Python 3.8+ and boto3 in the image: copy this one file in (see examples/Dockerfile);
it imports nothing of batch-stacks. The runner sets everything it reads:

    RUNNER_TASKS_URI   s3://bucket/prefix<run id>/tasks/   the table in pieces of JSON Lines
    RUNNER_OUTPUT_URI  s3://bucket/prefix<run id>/out/     where each row's outputs go
    RUNNER_ROWS        rows in the table
    RUNNER_PER_TASK    rows per task (K); task i runs rows iK .. iK+K-1
    RUNNER_PIECE_ROWS  rows per piece (a multiple of K, at most 1,000)
    RUNNER_COMMAND     the command to run once per row, as a JSON list
    RUNNER_SKIP_EXISTING=1  skip rows that already have outputs (a retry with --skip-existing)

For each row, in order, the command runs with the row's columns as environment variables, plus
RUNNER_ROW (the row number), RUNNER_ROW_FILE (the row as a JSON object) and RUNNER_OUTPUT_DIR (an
empty folder). When it exits 0, what it wrote there is uploaded to RUNNER_OUTPUT_URI<row>/, keeping
relative paths; a row that fails uploads nothing. The task exits with the first failed row's exit
code (128 + N for a signal, as Docker reports), after every row has run, or 0.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import boto3

PIECE_NAME = "piece-{:05d}.jsonl"


def log(message: str) -> None:
    print(f"[batch-stacks] {message}", flush=True)


def split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def task_index(env: dict[str, str]) -> int:
    return int(env.get("RUNNER_INDEX_OFFSET") or 0) + int(env.get("AWS_BATCH_JOB_ARRAY_INDEX") or 0)


def my_rows(env: dict[str, str], s3: object) -> list[tuple[int, dict[str, str]]]:
    """This task's rows, read from the one piece that holds them."""
    total, per_task = int(env["RUNNER_ROWS"]), int(env["RUNNER_PER_TASK"])
    piece_rows = int(env["RUNNER_PIECE_ROWS"])
    first = task_index(env) * per_task
    last = min(first + per_task, total)
    if first >= total:
        return []
    bucket, prefix = split(env["RUNNER_TASKS_URI"])
    piece = first // piece_rows
    body = s3.get_object(Bucket=bucket, Key=prefix + PIECE_NAME.format(piece))["Body"].read()  # type: ignore[attr-defined]
    lines = body.decode("utf-8").splitlines()
    start = piece * piece_rows
    return [(row, json.loads(lines[row - start])) for row in range(first, last)]


def has_outputs(s3: object, bucket: str, prefix: str) -> bool:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)  # type: ignore[attr-defined]
    return bool(found.get("KeyCount"))


def upload(s3: object, folder: Path, bucket: str, prefix: str) -> tuple[int, int]:
    files = sizes = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, prefix + path.relative_to(folder).as_posix())  # type: ignore[attr-defined]
        files, sizes = files + 1, sizes + path.stat().st_size
    return files, sizes


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run_row(
    row: int, values: dict[str, str], command: list[str], env: dict[str, str], s3: object, work: Path
) -> int:
    """One row, in a fresh folder under ``work`` that is removed afterwards (disk stays bounded)."""
    home = work / str(row)
    try:
        return _run_in(home, row, values, command, env, s3)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run_in(
    home: Path, row: int, values: dict[str, str], command: list[str], env: dict[str, str], s3: object
) -> int:
    outputs = home / "out"
    outputs.mkdir(parents=True)
    row_file = home / "row.json"
    row_file.write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
    child = {**env, **values}
    child.update(RUNNER_ROW=str(row), RUNNER_ROW_FILE=str(row_file), RUNNER_OUTPUT_DIR=str(outputs))
    log(f"row {row}: running")
    started = time.monotonic()
    code = exit_code(subprocess.call(command, env=child, cwd=home))
    seconds = time.monotonic() - started
    if code != 0:
        log(f"row {row}: failed with exit code {code} after {seconds:.1f} s; nothing uploaded")
        return code
    bucket, prefix = split(env["RUNNER_OUTPUT_URI"])
    files, size = upload(s3, outputs, bucket, f"{prefix}{row}/")
    log(f"row {row}: succeeded in {seconds:.1f} s; uploaded {files} file(s), {size} bytes")
    return 0


def main() -> int:
    env = dict(os.environ)
    # A stop (timeout, terminate) reaches the whole process group; leave with the signal's code.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    s3 = boto3.client("s3")
    command = json.loads(env["RUNNER_COMMAND"])
    rows = my_rows(env, s3)
    log(f"task {task_index(env)}: rows {rows[0][0]}-{rows[-1][0]}" if rows else "task has no rows")
    skip = env.get("RUNNER_SKIP_EXISTING") == "1"
    bucket, prefix = split(env["RUNNER_OUTPUT_URI"])
    first_failure = 0
    # The job may run as an unprivileged user in a read-only folder: work in the temp directory.
    work = Path(tempfile.mkdtemp(prefix="batch-stacks-rows-"))
    for row, values in rows:
        if skip and has_outputs(s3, bucket, f"{prefix}{row}/"):
            log(f"row {row}: has outputs already; skipped")
            continue
        code = run_row(row, values, command, env, s3, work)
        first_failure = first_failure or code
    shutil.rmtree(work, ignore_errors=True)
    return first_failure


if __name__ == "__main__":
    sys.exit(main())
