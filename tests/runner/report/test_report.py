"""`runner report` against moto: a run with failures in several classes and a retry, end to end."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image

from runner.aws.stack_outputs import StackOutputs
from tests.runner.conftest import REGION, Runner, moto_jobs

BASE = datetime(2026, 11, 25, 12, 0, 0)
SPOT = "Host EC2 (instance i-0a1b2c3d4e5f67890) terminated."
APP_INDICES, OOM_INDEX, SPOT_INDICES = (17, 18, 19), 25, (3, 11)


class Page(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str) -> int:
        return sum(1 for name, _ in self.tags if name == tag)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def ran(job_id: str, start_s: float, seconds: float, *, status: str = "SUCCEEDED", **extra: Any) -> None:
    """Give a moto job the times, status and attempts Batch would report."""
    job = moto_jobs()[job_id]
    job.status = status
    job.job_started_at = BASE + timedelta(seconds=start_s)
    job.job_stopped_at = BASE + timedelta(seconds=start_s + seconds)
    job.job_stopped = True
    for name, value in extra.items():
        setattr(job, name, value)


def ms(seconds: float) -> int:
    return int((BASE + timedelta(seconds=seconds)).timestamp() * 1000)


def write_log(stream: str, lines: list[str], group: str) -> None:
    logs = boto3.client("logs", region_name=REGION)
    now = int(time.time() * 1000)  # CloudWatch rejects events from the future
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


@pytest.fixture
def run_with_retry(runner: Runner, stack: StackOutputs) -> tuple[str, str]:
    """40 tasks four at a time: 2 reclaimed by Spot (then retried), 3 app failures, 1 out of memory."""
    run = runner.json("submit", "--array", "40")
    parent = run["jobId"]
    for i in range(40):
        child, start, seconds = f"{parent}:{i}", (i // 4) * 30.0, 10.0 + (i % 5) * 4
        if i in SPOT_INDICES:
            reclaimed = {
                "statusReason": SPOT,
                "startedAt": ms(start),
                "stoppedAt": ms(start + 5),
                "container": {},
            }
            ran(child, start, 5, status="FAILED", job_stopped_reason=SPOT, attempts=[reclaimed])
        elif i in APP_INDICES or i == OOM_INDEX:
            stream = f"job/default/task-{i}"
            write_log(
                stream, [f"task {i} starting", f"bad input {i}: checksum mismatch"], stack.log_group_name
            )
            exit_code, reason = (
                (137, "OutOfMemoryError: Container killed due to memory usage")
                if i == OOM_INDEX
                else (2, None)
            )
            container = {
                "exitCode": exit_code,
                "logStreamName": stream,
                **({"reason": reason} if reason else {}),
            }
            attempt = {
                "statusReason": "Essential container in task exited",
                "startedAt": ms(start),
                "stoppedAt": ms(start + seconds),
                "container": container,
            }
            ran(
                child,
                start,
                seconds,
                status="FAILED",
                job_stopped_reason="Essential container in task exited",
                exit_code=exit_code,
                log_stream_name=stream,
                attempts=[attempt],
            )
        else:
            ran(child, start, seconds)
    retry = runner.json("retry", run["runId"], "--class", "spot")
    for job_id, index in zip(retry["jobIds"], SPOT_INDICES, strict=True):
        ran(job_id, 400.0 + index, 12.0)
    return run["runId"], retry["runId"]


def test_report_of_a_run_with_two_failure_classes_and_a_retry(
    runner: Runner, run_with_retry: tuple[str, str], tmp_path: Path, api_calls: Counter
):
    run_id, retry_id = run_with_retry
    out, pngs = tmp_path / "out" / "report.html", tmp_path / "charts"
    api_calls.clear()
    written = runner.json("report", run_id, "--out", str(out), "--png", str(pngs))
    # `retry` summarized the complete parent, so its summary and task times are cached; the retry
    # run (two single jobs) is one DescribeJobs; then one GetLogEvents per log shown.
    assert api_calls == {"DescribeJobs": 1, "GetLogEvents": 5}, api_calls
    assert written["report"] == str(out) and written["bytes"] == out.stat().st_size

    html = out.read_text(encoding="utf-8")
    page = parse(out)
    # Self-contained: no URL at all, nothing to fetch, and a policy that forbids fetching.
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.IGNORECASE)
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "data"):
            value = attrs.get(name)
            assert value is None or value.startswith(("#", "data:")), (tag, name, value)
    assert page.count("script") == 0 and page.count("link") == 0 and page.count("img") == 0
    policy = [
        a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policy and "default-src 'none'" in policy[0]
    # The charts are embedded: timeline, attempts, runtimes, failures, outcomes.
    ids = {attrs.get("id") for tag, attrs in page.tags if tag == "svg"}
    assert ids == {"timeline", "attempts", "runtimes", "failures", "outcomes"}

    text = " ".join(" ".join(page.text).split())
    assert f"Run {run_id}" in text and "stack dev (spot)" in text
    # Headline: 40 tasks, 36 succeeded after the retry, 4 still failed.
    assert re.search(r"Tasks 40 .* Succeeded 36 .* Failed 4 ", text)
    # Wall time: first start (0 s) to the retry's last stop (411 + 12 s).
    assert "Wall time 7 min 03 s" in text
    # Failures by class: each class with its counts, index ranges and what to do.
    assert re.search(r"spot 2 2 0 3,11 every one succeeded on a retry", text)
    assert re.search(rf"oom 1 0 1 25 out of memory: runner retry {run_id} --class oom --memory 4096", text)
    assert re.search(rf"app 3 0 3 17-19 your program exited non-zero: runner logs {run_id} --index 17", text)
    # The first failures' logs, last lines shown.
    assert "bad input 17: checksum mismatch" in text and "bad input 25: checksum mismatch" in text
    # Latest outcome per index and the lineage of retries.
    assert "succeeded on retry 2 3,11" in text and "failed 4 17-19,25" in text
    assert f"{retry_id} " in text and "3,11" in text
    assert "Spot reclaims 2" in text

    # Each chart also as a PNG of a sensible size.
    assert sorted(p.name for p in pngs.iterdir()) == [
        "attempts.png",
        "failures.png",
        "outcomes.png",
        "runtimes.png",
        "timeline.png",
    ]
    for png in pngs.iterdir():
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert image.format == "PNG"
            assert 1000 <= image.width <= 2000 and 150 <= image.height <= 1200, (png.name, image.size)

    # After AWS forgets the jobs (and the logs expire), the cached record gives the same report.
    moto_jobs().clear()
    boto3.client("logs", region_name=REGION).delete_log_group(logGroupName=runner_log_group(runner))
    again = tmp_path / "again.html"
    api_calls.clear()
    result = runner("report", run_id, "--out", str(again))
    assert result.exit_code == 0, result.output
    assert not api_calls  # all from the cache beside the record
    assert f"Report written to {again}" in " ".join(result.output.split())

    def without_footer(text: str) -> str:
        return re.sub(r"<footer>.*</footer>", "", text, flags=re.DOTALL)

    assert without_footer(again.read_text(encoding="utf-8")) == without_footer(html)


def runner_log_group(runner: Runner) -> str:
    return json.loads(runner.outputs_file.read_text())["logGroupName"]


def test_report_defaults_to_run_id_html_here_and_open_starts_a_browser(
    runner: Runner, stack: StackOutputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    run = runner.json("submit", "--array", "3")
    for i in range(3):
        ran(f"{run['jobId']}:{i}", i, 2.0)
    monkeypatch.chdir(tmp_path)
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    result = runner("report", run["runId"], "--open")
    assert result.exit_code == 0, result.output
    path = tmp_path / f"{run['runId']}.html"
    assert path.is_file() and opened == [path.resolve().as_uri()]
    text = " ".join(" ".join(parse(path).text).split())
    assert "No task failed." in text and "Latest outcome per logical index" not in text

    monkeypatch.setattr("webbrowser.open", lambda url: False)
    result = runner("report", run["runId"], "--open")
    assert result.exit_code == 0
    assert f"Warning: no browser could be started; open {run['runId']}.html yourself" in result.output


def test_report_bad_inputs_are_one_line(runner: Runner, stack: StackOutputs, tmp_path: Path):
    run = runner.json("submit", "--array", "2")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner("report", run["runId"], "--out", str(blocker / "r.html"))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot write the report: File exists ({blocker}); choose another --out or --png\n"
    )
    missing = runner("report", "20991231-000000-abcd")
    assert missing.exit_code == 1
    assert missing.output == "Error: no run 20991231-000000-abcd; list runs with `runner runs`\n"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

# Loaded into a copy of the report: records errors and what each chart measures once laid out.
PROBE = """<script>
const problems = [];
window.addEventListener("error", (e) => problems.push("error: " + (e.message || e.target.outerHTML)), true);
document.addEventListener("securitypolicyviolation", (e) => problems.push("csp: " + e.blockedURI));
window.addEventListener("load", () => {
  const sizes = [...document.querySelectorAll("svg")].map((s) => {
    const box = s.getBoundingClientRect();
    return s.id + ":" + Math.round(box.width) + "x" + Math.round(box.height);
  });
  document.body.setAttribute("data-probe", JSON.stringify({sizes, problems}));
});
</script>"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")
def test_report_renders_in_a_real_browser(runner: Runner, run_with_retry: tuple[str, str], tmp_path: Path):
    run_id, _ = run_with_retry
    out = tmp_path / "report.html"
    assert runner("report", run_id, "--out", str(out)).exit_code == 0
    # The probe is the only script, let in by its hash; the report's own policy stays as it is.
    html = out.read_text(encoding="utf-8")
    script = PROBE.removeprefix("<script>").removesuffix("</script>")
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    html = html.replace("default-src 'none';", f"default-src 'none'; script-src 'sha256-{digest}';", 1)
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,2000",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', result.stdout)
    assert found, result.stdout[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe["problems"] == []
    sizes = dict(entry.split(":") for entry in probe["sizes"])
    assert set(sizes) == {"timeline", "attempts", "runtimes", "failures", "outcomes"}
    for name, size in sizes.items():
        width, height = map(int, size.split("x"))
        assert width > 600 and height > 50, (name, size)
