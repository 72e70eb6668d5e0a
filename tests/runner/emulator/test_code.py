"""End to end on the emulator: a sweep's code (--code) and inputs (--input) shipped to its tasks,
the script fixed and exactly the failed rows rerun on the new code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.local.process import ExecutorOptions
from tests.runner.emulator.conftest import PROJECT_DIR, as_json, client, run, running_emulator

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def code_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("code-state")
    with running_emulator(root, ExecutorOptions(slots=3, spot_interruptions=0), ("dev",)) as started:
        yield started


@pytest.fixture
def local(code_emulator: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("XDG_STATE_HOME", str(code_emulator["root"]))
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(PROJECT_DIR))
    return code_emulator


QC = """\
import os, sys
reads = open(os.environ["reads"]).read()
if "bad" in reads and VERSION == 1:
    sys.exit("bad reads in " + os.environ["reads_URI"])
with open(os.path.join(os.environ["RUNNER_OUTPUT_DIR"], "qc.txt"), "w") as out:
    out.write("%s v%d from %s\\n" % (os.environ["sample"], VERSION, os.path.basename(os.getcwd())))
"""


def test_code_and_inputs_ship_with_the_sweep_and_a_retry_carries_the_fix(
    local: dict[str, Any], tmp_path: Path
):
    """The edit -> rerun loop: rows fail on v1 of the script; v2 reruns exactly them; the rows
    say which code made them, and unchanged code is not uploaded again."""
    s3 = client(local, "s3")
    bucket = local["stacks"]["dev"]["data"]["bucket"]
    rows = []
    for i in range(8):
        s3.put_object(Bucket=bucket, Key=f"runs/inputs/s{i}.fq", Body=b"bad\n" if i in (2, 5) else b"ACGT\n")
        rows.append(f"s{i},s3://{bucket}/runs/inputs/s{i}.fq\n")
    table = tmp_path / "samples.csv"
    table.write_text("sample,reads\n" + "".join(rows))
    analysis = tmp_path / "analysis"
    analysis.mkdir()
    (analysis / "qc.py").write_text("VERSION = 1\n" + QC)
    sweep = ("--tasks", str(table), "--code", str(analysis), "--input", "reads", "--command", "python3 qc.py")
    submitted = as_json("submit", *sweep)
    run_id, first = submitted["runId"], submitted["code"]["digest"]
    assert submitted["code"]["uploaded"] is True
    assert run("watch", run_id, "--interval", "1").exit_code == 3
    found = as_json("results", run_id)
    assert {e["row"] for e in found["entries"] if e["state"] == "failed"} == {2, 5}
    failed = next(e for e in found["entries"] if e["row"] == 2)
    assert (
        failed["reason"] == "exit code 1"
        and f"bad reads in s3://{bucket}/runs/inputs/s2.fq" in failed["lastLine"]
    )

    (analysis / "qc.py").write_text("VERSION = 2\n" + QC)
    retried = as_json("retry", run_id, "--skip-existing", "--code", str(analysis))
    second = retried["code"]["digest"]
    assert retried["changes"] == {"code": [first, second]} and retried["tasks"] == 2
    assert run("watch", retried["runId"], "--interval", "1").exit_code == 0
    done = as_json("results", run_id)
    assert done["complete"] and done["doneByCode"] == {first: "0-1,3-4,6-7", second: "2,5"}
    manifests = {e["row"]: json.loads(read(s3, e["manifest"])) for e in done["entries"]}
    assert manifests[5]["code"]["digest"] == second and manifests[0]["code"]["digest"] == first
    qc = next(o for o in manifests[5]["outputs"] if o["path"] == "qc.txt")
    assert (
        s3.get_object(Bucket=bucket, Key=qc["key"])["Body"]
        .read()
        .startswith(b"s5 v2 from batch-stacks-code-")
    )

    report = tmp_path / "report.html"
    assert run("report", run_id, "--out", str(report)).exit_code == 0
    page = report.read_text()
    assert "done rows made by code" in page and f"code {first[:12]} -&gt; {second[:12]}" in page

    again = as_json("submit", *sweep, "--no-input-check")
    assert again["code"]["digest"] == second and again["code"]["uploaded"] is False  # nothing uploaded
    assert run("watch", again["runId"], "--interval", "1").exit_code == 0


def read(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_a_python_rows_last_line_is_its_error_not_an_earlier_print(local, tmp_path: Path):
    """The job definition sets PYTHONUNBUFFERED=1: what a row printed lands before its traceback."""
    path = tmp_path / "one.csv"
    path.write_text("sample\nS0\n")
    script = "import sys; print('working on', sys.argv[1]); raise SystemExit('bad input ' + sys.argv[1])"
    submitted = as_json(
        "submit", "--tasks", str(path), "--command", f'python3 -c "{script}" S0', "--wait", "--interval", "1"
    )
    (entry,) = as_json("results", submitted["runId"])["entries"]
    assert entry["state"] == "failed" and entry["lastLine"] == "bad input S0"


def test_a_sweep_from_a_folder_of_your_own_reads_its_local_inputs(
    local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    project = tmp_path / "my-analysis"
    (project / "reads" / "lanes").mkdir(parents=True)
    (project / "reads" / "s1.fq").write_text("ACGT\n")
    (project / "reads" / "lanes" / "1.fq").write_text("GG\n")
    (project / "reads" / "lanes" / "2.fq").write_text("CC\n")
    (project / "samples.csv").write_text("sample,reads\ns1,reads/s1.fq\nlanes,reads/lanes\n")
    monkeypatch.chdir(project)
    script = 'if [ -d "$reads" ]; then cat "$reads"/*.fq; else cat "$reads"; fi > "$RUNNER_OUTPUT_DIR/r.txt"'
    submitted = as_json(
        "submit", "--tasks", "samples.csv", "--input", "reads", "--command", f"sh -c '{script}'", "--wait"
    )
    assert submitted["summary"]["counts"]["FAILED"] == 0
    collected = as_json("collect", submitted["runId"], "--to", "out")
    assert collected["rows"] == 2
    assert (project / "out" / "0" / "r.txt").read_text() == "ACGT\n"
    assert (project / "out" / "1" / "r.txt").read_text() == "GG\nCC\n"
