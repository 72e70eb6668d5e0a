from __future__ import annotations

import io
from datetime import datetime, timezone

from rich.console import Console

from runner.analysis.cost import estimate, stack_prices
from runner.analysis.summary import Failure, RuntimeStats, SpotInterruptions, Summary
from runner.aws.job_status import progress_of
from runner.show import terminal as render


def summary_with_failures(count: int) -> Summary:
    return Summary(
        job_id="job",
        job_name="sweep",
        status="FAILED",
        size=100,
        counts={"SUCCEEDED": 100 - count, "FAILED": count},
        failures=[
            Failure(i, f"job:{i}", "Essential container in task exited", 1, None, 1) for i in range(count)
        ],
        runtime=RuntimeStats(1.0, 90.0, 4000.0, 9000.0),
        vcpus=2,
        vcpu_hours=12.5,
        cost=estimate(12.5, 0.0, stack_prices("on-demand"), "every attempt of every task"),
        run_id="20261124-000000-abcd",
    )


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, highlight=False), out


def test_summary_text_shows_counts_failures_runtimes_and_cost():
    console, out = plain_console()
    render.show_summary(console, summary_with_failures(3))
    text = out.getvalue()
    assert "Run 20261124-000000-abcd  sweep  FAILED (complete)" in text
    assert "3 failed" in text
    assert "runtime  min 1.0s  p50 90.0s  p90 66.7m  max 2.50h" in text
    assert "compute  12.500 vCPU-hours (2 vCPU per task; every attempt of every task)\n" in text
    assert (
        "cost     ~$0.53 estimated on on-demand at $0.0425/vCPU-h (list prices; redeploy the stack for "
        "its costModel); on spot ~$0.21 at $0.017/vCPU-h"
    ) in text
    assert "\x1b[" not in text


def test_long_failure_lists_are_capped_with_a_pointer_to_json():
    console, out = plain_console()
    render.show_summary(console, summary_with_failures(60))
    assert "... and 40 more failures: `runner summary --json` lists them all" in out.getvalue()


def test_failures_are_grouped_by_class_with_ranges_and_a_hint_each():
    failures = [
        Failure(i, f"job:{i}", reason, code, container, 2 if cls == "spot" else 1, None, cls)
        for i, reason, code, container, cls in [
            (3, "Host EC2 (instance i-1) terminated.", None, None, "spot"),
            (17, "Host EC2 (instance i-2) terminated.", None, None, "spot"),
            (18, "Host EC2 (instance i-2) terminated.", None, None, "spot"),
            (19, "Host EC2 (instance i-2) terminated.", None, None, "spot"),
            (402, "Host EC2 (instance i-9) terminated.", None, None, "spot"),
            (7, "Essential container in task exited", 137, "OutOfMemoryError: Container killed", "oom"),
            (11, "Essential container in task exited", 2, None, "app"),
        ]
    ]
    summary = Summary(
        job_id="job",
        job_name="sweep",
        status="FAILED",
        size=500,
        counts={"SUCCEEDED": 493, "FAILED": 7},
        failures=failures,
        run_id="20261124-000000-abcd",
        spot=SpotInterruptions(6, 0.25, "attempts of failed tasks"),
    )
    console, out = plain_console()
    render.show_summary(console, summary, memory_mib=2048)
    text = out.getvalue()
    rows = [line for line in text.splitlines() if "runner retry" in line or "runner logs" in line]
    lines = {line.split()[0]: line for line in rows}
    assert lines["spot"].split()[1:3] == ["5", "3,17-19,402"]
    assert (
        "`runner retry 20261124-000000-abcd --class spot` (or add --stack prod for on-demand)"
        in lines["spot"]
    )
    assert "`runner retry 20261124-000000-abcd --class oom --memory 4096`" in lines["oom"]
    assert "`runner logs 20261124-000000-abcd --index 11`" in lines["app"]
    assert (
        "spot     6 attempts reclaimed, 0.250 vCPU-hours lost (attempts of failed tasks; "
        "`--attempts` counts every attempt)"
    ) in text


def test_plain_progress_prints_a_line_only_when_counts_change():
    console, out = plain_console()
    view = render.ProgressView(console, clock=lambda: datetime(2026, 11, 24, 9, 30, 5, tzinfo=timezone.utc))
    job = {"jobId": "j", "jobName": "n", "arrayProperties": {"size": 4, "statusSummary": {"RUNNING": 4}}}
    with view.running():
        view.update(progress_of(job))
        view.update(progress_of(job))
        view.update(progress_of({**job, "arrayProperties": {"size": 4, "statusSummary": {"SUCCEEDED": 4}}}))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines == [
        "09:30:05  0/4 done  RUNNING 4  SUCCEEDED 0  FAILED 0",
        "09:30:05  4/4 done  SUCCEEDED 4  FAILED 0",
    ]


def test_console_off_a_terminal_is_wide_and_plain(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    console = render.make_console()
    assert not console.is_terminal
    assert console.width == render.PLAIN_WIDTH
    assert console.no_color


def test_a_retrys_changes_in_words():
    from runner.runs.retry import describe_changes

    changes = {
        "code": [None, "9be41d07aa21" + "0" * 52],
        "command": ["python3 qc.py", "python3 qc.py --strict"],
        "env": {"MODE": ["a", "b"], "NEW": [None, "1"]},
    }
    assert describe_changes(changes) == [
        "code image -> 9be41d07aa21",
        "command python3 qc.py -> python3 qc.py --strict",
        "MODE a -> b",
        "NEW (unset) -> 1",
    ]
    assert describe_changes(None) == []
