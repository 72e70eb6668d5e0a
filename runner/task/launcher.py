"""batch-stacks task launcher: runs a task's command, or a sweep's rows, and leaves every row's fate.

It needs only Python 3.8+ and boto3 in the image and imports nothing of batch-stacks. The runner
ships it in the run's package (``runner/runs/launch.py``: the container's bootstrap fetches the
package, unpacks it into RUNNER_PACKAGE_DIR and runs this file from it), so AWS and the emulator run
the very same launcher. The runner sets everything it reads:

    RUNNER_COMMAND     the command, as a JSON list
    RUNNER_PACKAGE_DIR the unpacked package (set by the bootstrap); with RUNNER_CODE_DIGEST it holds
                       the user's code (``--code``): the command runs there, as RUNNER_CODE_DIR
    RUNNER_CODE_DIGEST, RUNNER_CODE_COMMIT  the code's digest and git commit, kept in every record

Without RUNNER_TASKS_URI (a plain task with ``--code``) the command runs once and the task exits
with its exit code. With it (a sweep):

    RUNNER_TASKS_URI   s3://bucket/prefix<run id>/tasks/   the table in pieces of JSON Lines
    RUNNER_OUTPUT_URI  s3://bucket/prefix<run id>/out/     each row's outputs, an attempt a folder
    RUNNER_ROWS_URI    s3://bucket/prefix<run id>/rows/    each row's records (manifest or fate)
    RUNNER_ROWS        rows in the table
    RUNNER_PER_TASK    rows per task (K); task i runs rows iK .. iK+K-1
    RUNNER_PIECE_ROWS  rows per piece (a multiple of K, at most 1,000)
    RUNNER_KEY_COLUMN  the column that names a row (in its records and log lines)
    RUNNER_INPUTS      columns whose s3:// values are staged (a JSON list; ``--input``)
    RUNNER_SKIP_EXISTING=1  skip rows that are done already (a retry with --skip-existing)

For each row, in order, the command runs (in RUNNER_CODE_DIR, else in a fresh folder) with the row's
columns as environment variables (strings as they are, other JSON values as JSON text), plus
RUNNER_ROW (the row number), RUNNER_ROW_FILE (the row as a JSON object, values as they were) and
RUNNER_OUTPUT_DIR (an empty folder). A staged column's object (or folder, for a value ending in
``/``) is downloaded into the row's folder first: the column's variable is its local path, and
``<COLUMN>_URI`` keeps the address. Its output is forwarded line by line, between a "row R: running"
and a "row R: <fate>" line.

Every row leaves one record under RUNNER_ROWS_URI<row>/, written last (the names are the runner's
``runner/runs/rows.py``):

- exit 0: every file in RUNNER_OUTPUT_DIR is uploaded to RUNNER_OUTPUT_URI<row>/<attempt>/, then the
  manifest (``succeeded``, or ``no-outputs``) lists each with its size and SHA-256. Only a manifest
  makes a row done; a kill before it leaves the row not done.
- otherwise: ``failed`` with the exit code in words, the duration and the last lines of output. A
  command that cannot start (not found 127, not executable 126, argument list too long 126), or an
  input that cannot be staged, is a failed row, never the launcher's crash: the next row runs.
- SIGTERM (a timeout, a terminate): the running row is stopped and recorded ``killed``; the rows
  after it are not run, and the task exits 143.

The task exits with the first failed row's exit code, or 0 when every row succeeded.
"""

from __future__ import annotations

import collections
import datetime
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import boto3

PIECE_NAME = "piece-{:05d}.jsonl"
DONE_STATES = ("succeeded", "no-outputs")
TAIL_LINES, TAIL_BYTES = 20, 4096
RECORD_VERSION = 1
# After SIGTERM: how long the row's command may take to stop before it is killed.
STOP_WAIT_SECONDS = 2.0
EXIT_STOPPED = 128 + signal.SIGTERM


class Stopped(BaseException):
    """The task was told to stop (SIGTERM): a timeout or a terminate. Not an Exception, so no
    handler of a row's own problems can swallow it."""


def log(message: str) -> None:
    sys.stdout.buffer.write(f"[batch-stacks] {message}\n".encode())
    sys.stdout.flush()


def split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def task_index(env: dict[str, str]) -> int:
    return int(env.get("RUNNER_INDEX_OFFSET") or 0) + int(env.get("AWS_BATCH_JOB_ARRAY_INDEX") or 0)


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(
        timespec="milliseconds"
    )


def attempt_name(env: dict[str, str]) -> str:
    """This task attempt in keys (mirrors ``runner.runs.rows.attempt_name``)."""
    job_id = env.get("AWS_BATCH_JOB_ID") or "local"
    return f"{job_id.replace(':', '_')}-a{env.get('AWS_BATCH_JOB_ATTEMPT') or 1}"


def record_name(row: int, stamp: int, attempt: str, state: str) -> str:
    """A record's key under RUNNER_ROWS_URI (mirrors ``runner.runs.rows.record_name``)."""
    return f"{row}/{stamp:013d}-{attempt}.{state}.json"


def code_dir(env: dict[str, str]) -> Path | None:
    """Where the user's code was unpacked, when the run shipped some."""
    folder = env.get("RUNNER_PACKAGE_DIR")
    return Path(folder) if folder and env.get("RUNNER_CODE_DIGEST") else None


class InputProblem(Exception):
    """A staged input that cannot be downloaded: its row fails with this line."""


class OutputProblem(Exception):
    """An output that must not be uploaded (a link leading out of the output folder)."""


def inside(folder: Path, relative: str) -> Path | None:
    """``folder / relative`` when that stays inside ``folder``, else None: an object key such as
    ``data//home/u/.bashrc`` or ``data/../../x`` must never choose where a file is written."""
    parts = relative.split("/")
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        return None
    return folder.joinpath(*parts)


def output_files(folder: Path) -> list[tuple[str, Path]]:
    """The files under the output folder as (relative path, file to read), sorted. A link is
    uploaded as the file it points to only when that file is inside the folder; a link leading out
    of it (``ln -s ~/.aws/credentials``) is refused, so a task cannot ship what it was not given."""
    root = folder.resolve()
    found: list[tuple[str, Path]] = []
    for directory, names, files in os.walk(folder, followlinks=False):
        for name in sorted(names + files):
            path = Path(directory) / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                target = path.resolve()
                if target != root and root not in target.parents:
                    raise OutputProblem(
                        f"{relative} links outside the output folder (to {target}); copy the file in instead"
                    )
                if target.is_dir():
                    raise OutputProblem(f"{relative} links to a folder; copy its files in instead")
            if name in files and path.is_file():
                found.append((relative, path))
    return sorted(found)


def s3_problem(err: Exception) -> str:
    """An S3 refusal in words."""
    code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
    if code in ("404", "NoSuchKey", "NotFound"):
        return "not found"
    if code in ("403", "AccessDenied"):
        return "access denied (the job role may not read it)"
    return str(err)


def env_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def my_rows(env: dict[str, str], s3: object) -> list[tuple[int, dict]]:
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


def is_done(s3: object, rows_uri: str, row: int) -> bool:
    """Whether the row's latest record is a manifest (mirrors ``runner.runs.rows.latest_records``)."""
    bucket, prefix = split(rows_uri)
    latest = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}{row}/"):  # type: ignore[attr-defined]
        for item in page.get("Contents") or []:
            name = item["Key"].rsplit("/", 1)[-1]
            stamp, _, rest = name.partition("-")
            state = rest[: -len(".json")].rsplit(".", 1)[-1] if rest.endswith(".json") else ""
            if stamp.isdigit() and state:
                candidate = (int(stamp), state not in DONE_STATES, state)
                latest = candidate if latest is None or candidate[:2] > latest[:2] else latest
    return latest is not None and latest[2] in DONE_STATES


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Output:
    """A row's output, forwarded line by line to the task's log, its last lines kept."""

    def __init__(self, stream: object) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.thread = threading.Thread(target=self._forward, args=(stream,), daemon=True)
        self.thread.start()

    def _forward(self, stream: object) -> None:
        try:
            for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
                sys.stdout.buffer.write(line if line.endswith(b"\n") else line + b"\n")
                sys.stdout.flush()
                self.lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        finally:
            stream.close()  # type: ignore[attr-defined]

    def tail(self, wait: float) -> list[str]:
        """The last lines (at most TAIL_LINES and TAIL_BYTES), once the pipe is drained or ``wait`` is up."""
        self.thread.join(wait)
        kept: list[str] = []
        size = 0
        for line in reversed(list(self.lines)):
            size += len(line.encode()) + 1
            if size > TAIL_BYTES:
                break
            kept.append(line)
        return kept[::-1]


def start_failure(err: OSError, program: str) -> tuple[int, str]:
    """Why a command could not start, as the exit code a shell would give and words."""
    if isinstance(err, FileNotFoundError):
        return 127, f"command not found: {program}"
    if isinstance(err, PermissionError):
        return 126, f"not executable: {program}"
    if err.errno == errno.E2BIG:
        return 126, "argument list too long: the row's values and environment exceed what a command can take"
    return 126, f"cannot run {program}: {err.strerror or err}"


def exit_reason(code: int) -> str:
    """An exit code in words (mirrors ``runner.runs.rows.exit_reason``)."""
    if code == 126:
        return "exit code 126: the command is not executable"
    if code == 127:
        return "exit code 127: command not found"
    if code > 128:
        return f"exit code {code}: killed by signal {code - 128}"
    return f"exit code {code}"


class Launcher:
    def __init__(self, env: dict[str, str], s3: object, work: Path) -> None:
        self.env, self.s3, self.work = env, s3, work
        self.command = json.loads(env["RUNNER_COMMAND"])
        self.code = code_dir(env)
        self.inputs = json.loads(env.get("RUNNER_INPUTS") or "[]")
        self.key_column = env.get("RUNNER_KEY_COLUMN") or ""
        output_uri = env["RUNNER_OUTPUT_URI"]
        self.rows_uri = env.get("RUNNER_ROWS_URI") or output_uri[: -len("out/")] + "rows/"
        self.outputs = split(output_uri)
        self.attempt = attempt_name(env)
        self.identity = {
            "runId": env.get("RUNNER_RUN_ID"),
            "rootRunId": env.get("RUNNER_PARENT_RUN_ID") or env.get("RUNNER_RUN_ID"),
            "jobId": env.get("AWS_BATCH_JOB_ID"),
            "attempt": int(env.get("AWS_BATCH_JOB_ATTEMPT") or 1),
            "task": task_index(env),
        }
        if env.get("RUNNER_CODE_DIGEST"):
            self.identity["code"] = {
                "digest": env["RUNNER_CODE_DIGEST"],
                "commit": env.get("RUNNER_CODE_COMMIT") or None,
            }

    def write_record(self, row: int, key: str, state: str, fields: dict) -> None:
        stamp = now_ms()
        bucket, prefix = split(self.rows_uri)
        body = {"version": RECORD_VERSION, "row": row, "key": key, "state": state, **self.identity, **fields}
        self.s3.put_object(  # type: ignore[attr-defined]
            Bucket=bucket,
            Key=prefix + record_name(row, stamp, self.attempt, state),
            Body=json.dumps(body, ensure_ascii=False).encode(),
            ContentType="application/json",
        )

    def upload(self, folder: Path, row: int, started: int) -> list[dict]:
        bucket, prefix = self.outputs
        base = f"{prefix}{row}/{started:013d}-{self.attempt}/"
        outputs = []
        for relative, path in output_files(folder):
            entry = {
                "path": relative,
                "key": base + relative,
                "size": path.stat().st_size,
                "sha256": sha256(path),
            }
            self.s3.upload_file(str(path), bucket, entry["key"])  # type: ignore[attr-defined]
            outputs.append(entry)
        return outputs

    def stage(self, home: Path, values: dict) -> dict[str, str]:
        """Download the row's staged inputs into its folder; their variables, or InputProblem."""
        staged: dict[str, str] = {}
        for column in self.inputs:
            uri = env_value(values.get(column, ""))
            bucket, key = split(uri)
            target = home / "in" / column
            target.mkdir(parents=True)
            try:
                if key.endswith("/") or not key:
                    count = 0
                    paginator = self.s3.get_paginator("list_objects_v2")  # type: ignore[attr-defined]
                    for page in paginator.paginate(Bucket=bucket, Prefix=key):
                        for item in page.get("Contents") or []:
                            relative = item["Key"][len(key) :]
                            if not relative or relative.endswith("/"):
                                continue
                            destination = inside(target, relative)
                            if destination is None:
                                raise InputProblem(
                                    f"input {column}: s3://{bucket}/{item['Key']} would be written "
                                    f"outside the row's input folder; rename the object"
                                )
                            destination.parent.mkdir(parents=True, exist_ok=True)
                            self.s3.download_file(bucket, item["Key"], str(destination))  # type: ignore[attr-defined]
                            count += 1
                    if not count:
                        raise InputProblem(f"input {column}: nothing under {uri}")
                    staged[column] = str(target)
                else:
                    destination = inside(target, key.rsplit("/", 1)[-1])
                    if destination is None:
                        raise InputProblem(f"input {column}: {uri} has no file name; name an object")
                    self.s3.download_file(bucket, key, str(destination))  # type: ignore[attr-defined]
                    staged[column] = str(destination)
            except InputProblem:
                raise
            except Exception as err:
                raise InputProblem(f"input {column}: {uri} {s3_problem(err)}") from None
            staged[f"{column}_URI"] = uri
        return staged

    def run_row(self, row: int, values: dict) -> int:
        """One row in a fresh folder (removed afterwards); returns its exit code. Raises only Stopped."""
        home = self.work / str(row)
        try:
            return self._run_in(home, row, values)
        finally:
            shutil.rmtree(home, ignore_errors=True)

    def _run_in(self, home: Path, row: int, values: dict) -> int:
        key = env_value(values.get(self.key_column, "")) if self.key_column else str(row)
        outputs = home / "out"
        outputs.mkdir(parents=True)
        row_file = home / "row.json"
        row_file.write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
        child_env = {**self.env, **{name: env_value(value) for name, value in values.items()}}
        child_env.update(RUNNER_ROW=str(row), RUNNER_ROW_FILE=str(row_file), RUNNER_OUTPUT_DIR=str(outputs))
        if self.code is not None:
            child_env["RUNNER_CODE_DIR"] = str(self.code)
        log(f"row {row}: running ({self.key_column or 'row'} {key})")
        started = now_ms()
        output: Output | None = None
        child: subprocess.Popen | None = None
        stage = "before its command"
        try:
            if self.inputs:
                stage = "while its inputs were downloaded"
                try:
                    child_env.update(self.stage(home, values))
                except InputProblem as problem:
                    return self.failed(row, key, started, None, str(problem), [])
                stage = "before its command"
            try:
                child = subprocess.Popen(
                    self.command,
                    env=child_env,
                    cwd=self.code or home,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            except OSError as err:
                code, reason = start_failure(err, str(self.command[0]))
                return self.failed(row, key, started, code, reason, [])
            stage = "while its command ran"
            output = Output(child.stdout)
            returncode = child.wait()
            code = 128 - returncode if returncode < 0 else returncode
            if code != 0:
                return self.failed(row, key, started, code, exit_reason(code), output.tail(STOP_WAIT_SECONDS))
            output.tail(STOP_WAIT_SECONDS)
            stage = "while its outputs were uploaded"
            try:
                uploaded = self.upload(outputs, row, started)
            except Exception as err:  # a link out of the folder, or S3 said no: this row fails
                return self.failed(row, key, started, None, f"outputs not uploaded: {err}", [])
            stage = "before its manifest was written"
            ended = now_ms()
            state = "succeeded" if uploaded else "no-outputs"
            fields = {"exitCode": 0, "startedAt": iso(started), "endedAt": iso(ended)}
            fields.update(seconds=(ended - started) / 1000, outputs=uploaded)
            self.write_record(row, key, state, fields)
            size = sum(entry["size"] for entry in uploaded)
            log(
                f"row {row}: succeeded in {(ended - started) / 1000:.1f} s; {len(uploaded)} file(s), {size} bytes"
            )
            return 0
        except Stopped:
            tail = stop(child, output)
            ended = now_ms()
            reason = f"the task was stopped (SIGTERM) {stage}"
            log(f"row {row}: killed {stage}")
            fields = {"exitCode": None, "reason": reason, "startedAt": iso(started), "endedAt": iso(ended)}
            fields.update(seconds=(ended - started) / 1000, tail=tail)
            self.write_record(row, key, "killed", fields)
            raise

    def failed(self, row: int, key: str, started: int, code: int | None, reason: str, tail: list[str]) -> int:
        """Record the row failed; ``code`` None when no command's exit decided it (an input, an upload)."""
        ended = now_ms()
        log(f"row {row}: failed after {(ended - started) / 1000:.1f} s: {reason}")
        fields = {"exitCode": code, "reason": reason, "startedAt": iso(started), "endedAt": iso(ended)}
        fields.update(seconds=(ended - started) / 1000, tail=tail)
        self.write_record(row, key, "failed", fields)
        return code or 1


def stop(child: subprocess.Popen | None, output: Output | None) -> list[str]:
    """Stop the row's command (it may have had the signal already), keeping its last lines."""
    if child is not None and child.poll() is None:
        child.terminate()
        try:
            child.wait(STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
    return output.tail(0.5) if output is not None else []


def run_command(env: dict[str, str]) -> int:
    """A plain task: the command once, in the code folder, its exit code the task's."""
    command = json.loads(env["RUNNER_COMMAND"])
    code = code_dir(env)
    child_env = dict(env)
    if code is not None:
        child_env["RUNNER_CODE_DIR"] = str(code)
    try:
        child = subprocess.Popen(command, env=child_env, cwd=code)
    except OSError as err:
        exit_code, reason = start_failure(err, str(command[0]))
        log(reason)
        return exit_code
    try:
        returncode = child.wait()
    except Stopped:
        stop(child, None)
        log("stopped (SIGTERM)")
        return EXIT_STOPPED
    return 128 - returncode if returncode < 0 else returncode


def main() -> int:
    env = dict(os.environ)
    stopping = []

    def on_term(signum: int, _frame: object) -> None:
        if not stopping:  # once: the cleanup that follows must not be interrupted again
            stopping.append(signum)
            raise Stopped

    signal.signal(signal.SIGTERM, on_term)
    # The job may run as an unprivileged user in a read-only folder: work in the temp directory.
    work = Path(tempfile.mkdtemp(prefix="batch-stacks-rows-"))
    try:
        if not env.get("RUNNER_TASKS_URI"):
            return run_command(env)
        s3 = boto3.client("s3")
        try:
            rows = my_rows(env, s3)
        except Exception as err:  # the table cannot be read: no row can run
            log(f"task {task_index(env)}: its rows cannot be read from {env.get('RUNNER_TASKS_URI')}: {err}")
            return 1
        log(f"task {task_index(env)}: rows {rows[0][0]}-{rows[-1][0]}" if rows else "task has no rows")
        launcher = Launcher(env, s3, work)
        skip = env.get("RUNNER_SKIP_EXISTING") == "1"
        first_failure = 0
        for row, values in rows:
            try:
                if skip and is_done(s3, launcher.rows_uri, row):
                    log(f"row {row}: done already; skipped")
                    continue
                code = launcher.run_row(row, values)
            except Exception as err:  # S3 refused the row's record: the row is not done; go on
                log(f"row {row}: its record could not be written: {err}")
                code = 1
            first_failure = first_failure or code
        return first_failure
    except Stopped:
        log("stopped (SIGTERM); the rows after this one were not run")
        return EXIT_STOPPED
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if env.get("RUNNER_PACKAGE_DIR"):
            shutil.rmtree(env["RUNNER_PACKAGE_DIR"], ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
