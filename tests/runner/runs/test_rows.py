"""A row's life: record names, the latest record, fates inferred from how a task ended, a row's log
lines, and the launcher holding to the same contract (it cannot import it)."""

from __future__ import annotations

import pytest

from runner.runs import rows
from runner.runs.rows import RecordKey, RowFate, TaskEnd, latest_records, parse_record, row_fates, row_lines
from runner.task import launcher

ATTEMPT = rows.attempt_name("4f1c-77:3", 2)


def key(row: int, stamp: int, state: str, attempt: str = ATTEMPT) -> RecordKey:
    parsed = parse_record(rows.record_name(row, stamp, attempt, state))
    assert parsed is not None
    return parsed


def test_a_record_name_reads_back_and_nothing_else_parses_as_one():
    name = rows.record_name(57, 1_796_000_000_123, ATTEMPT, "failed")
    assert name == "57/1796000000123-4f1c-77_3-a2.failed.json"
    assert parse_record(name) == RecordKey(57, 1_796_000_000_123, ATTEMPT, "failed")
    assert rows.job_of_attempt(ATTEMPT) == ("4f1c-77:3", 2)
    for other in ("57/notes.txt", "57/1796000000123-x.running.json", "x/1796000000123-a.failed.json", "57/"):
        assert parse_record(other) is None


def test_the_launcher_names_records_and_attempts_as_the_runner_reads_them():
    assert launcher.record_name(5, 42, "j-a1", "killed") == rows.record_name(5, 42, "j-a1", "killed")
    env = {"AWS_BATCH_JOB_ID": "4f1c-77:3", "AWS_BATCH_JOB_ATTEMPT": "2"}
    assert launcher.attempt_name(env) == ATTEMPT
    assert (launcher.TAIL_LINES, launcher.TAIL_BYTES) == (rows.TAIL_LINES, rows.TAIL_BYTES)
    assert set(launcher.DONE_STATES) == set(rows.DONE_STATES)
    assert launcher.RECORD_VERSION == rows.RECORD_VERSION


def test_the_latest_record_wins_and_a_tie_goes_to_the_row_not_done():
    older_done, newer_failed = key(1, 100, "succeeded"), key(1, 200, "failed")
    tie_done, tie_killed = key(2, 300, "succeeded"), key(2, 300, "killed")
    latest = latest_records([newer_failed, older_done, tie_done, tie_killed, key(3, 5, "no-outputs")])
    assert latest == {1: newer_failed, 2: tie_killed, 3: key(3, 5, "no-outputs")}


def states(fates: list[RowFate]) -> list[str]:
    return [fate.state for fate in fates]


def test_a_task_killed_without_a_record_leaves_its_running_row_killed_and_the_rest_not_run():
    latest = {0: key(0, 1_100, "succeeded"), 1: key(1, 1_200, "failed")}
    oom = TaskEnd(
        False, 1_000, "out of memory (OutOfMemoryError: Container killed due to memory usage)", True
    )
    fates = row_fates(5, 5, latest, {0: oom})
    assert states(fates) == ["succeeded", "failed", "killed", "not-run", "not-run"]
    assert fates[2].reason.startswith("killed: out of memory") and fates[2].inferred
    assert fates[3].reason == f"its task stopped before it ran ({oom.reason})"


def test_a_row_that_recorded_its_kill_is_killed_with_the_tasks_reason_and_only_it():
    latest = {0: key(0, 1_100, "killed")}
    timeout = TaskEnd(False, 1_000, "timed out (Job attempt duration exceeded timeout)", True)
    fates = row_fates(3, 3, latest, {0: timeout})
    assert states(fates) == ["killed", "not-run", "not-run"]
    assert fates[0].reason == "killed: timed out (Job attempt duration exceeded timeout)"
    assert not fates[0].inferred


def test_records_older_than_the_tasks_latest_attempt_settle_only_rows_that_are_done():
    # Run 1 left row 0 done and row 1 failed; the retry (started at 5,000) was killed at once.
    latest = {0: key(0, 1_000, "succeeded"), 1: key(1, 1_000, "failed")}
    spot = TaskEnd(False, 5_000, "Spot capacity reclaimed", True)
    assert states(row_fates(3, 3, latest, {0: spot})) == ["succeeded", "killed", "not-run"]


def test_rows_of_unfinished_tasks_and_of_tasks_that_never_started_are_not_run():
    cancelled = TaskEnd(False, None, "cancelled or terminated", True)
    fates = row_fates(4, 2, {}, {1: cancelled})
    assert states(fates) == ["not-run"] * 4
    assert fates[0].reason == rows.NOT_FINISHED
    assert fates[2].reason == "its task stopped before it ran (cancelled or terminated)"


def test_a_failed_task_that_did_not_kill_its_row_runs_nothing_after_it():
    app = TaskEnd(False, 1_000, "Essential container in task exited, exit code 1", False)
    assert states(row_fates(2, 2, {}, {0: app})) == ["not-run", "not-run"]


def test_a_rows_lines_run_from_its_running_line_to_its_fate_and_a_later_run_wins():
    log = [
        "[batch-stacks] task 1: rows 3-5",
        "[batch-stacks] row 3: running (sample a)",
        "[batch-stacks] row 4: running (sample b)",
        "first try",
        "[batch-stacks] row 4: failed after 0.1 s: exit code 3",
        "[batch-stacks] row 4: running (sample b)",
        "loading",
        "[batch-stacks] row 4: killed while its command ran",
        "[batch-stacks] stopped (SIGTERM); the rows after this one were not run",
    ]
    assert row_lines(log, 4) == [
        "[batch-stacks] row 4: running (sample b)",
        "loading",
        "[batch-stacks] row 4: killed while its command ran",
    ]
    assert row_lines(log, 3) == ["[batch-stacks] row 3: running (sample a)"]
    assert row_lines(log, 40) is None


@pytest.mark.parametrize(
    ("code", "words"),
    [(127, "command not found"), (126, "not executable"), (137, "killed by signal 9"), (3, "exit code 3")],
)
def test_exit_codes_in_words_agree_between_runner_and_launcher(code: int, words: str):
    assert words in rows.exit_reason(code)
    assert launcher.exit_reason(code) == rows.exit_reason(code)
