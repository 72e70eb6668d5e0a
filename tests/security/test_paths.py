"""Path traversal: nothing an object key, a manifest or a record says may choose where a file is
written, and nothing a task links to may leave with its outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runner.errors import RunnerError, RunRecordError
from runner.runs.collect import collect_outputs
from runner.runs.rows import RecordKey, RowFate
from runner.runs.store import RunStore, record_from_json
from runner.runs.sweep import Sweep
from runner.task import launcher
from tests.runner.runs.test_store import GOOD
from tests.runner.task.test_launcher import BUCKET, RUN, records, s3, start

__all__ = ["s3"]


ESCAPED = "/tmp/batch-stacks-security-escape"


@pytest.mark.parametrize(
    "key",
    ["runs/in/lanes//home/u/.bashrc", f"runs/in/lanes/../../../../..{ESCAPED}", f"runs/in/lanes/{ESCAPED}"],
)
def test_a_folder_input_whose_key_leaves_the_row_folder_fails_only_its_row(
    s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: str
):
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"owned\n")
    s3.put_object(Bucket=BUCKET, Key="runs/in/ok/1.fq", Body=b"ACGT\n")
    table = [
        {"sample": "evil", "reads": f"s3://{BUCKET}/runs/in/lanes/"},
        {"sample": "good", "reads": f"s3://{BUCKET}/runs/in/ok/"},
    ]
    start(s3, monkeypatch, table, 'cat "$reads"/1.fq > "$RUNNER_OUTPUT_DIR/r.txt"', RUNNER_INPUTS='["reads"]')
    monkeypatch.chdir(tmp_path)
    launcher.main()
    found = records(s3)
    assert found[0]["state"] == "failed"
    assert "would be written outside the row's input folder; rename the object" in found[0]["reason"]
    assert found[1]["state"] == "succeeded"  # the next row ran
    assert not Path(ESCAPED).exists()


def test_a_link_out_of_the_output_folder_is_never_uploaded(
    s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = hunter2\n")
    table = [{"sample": "leak"}, {"sample": "inside"}]
    script = (
        'case "$sample" in leak) ln -s ' + str(secret) + ' "$RUNNER_OUTPUT_DIR/c";; '
        'inside) echo ok > "$RUNNER_OUTPUT_DIR/a"; ln -s a "$RUNNER_OUTPUT_DIR/b";; esac'
    )
    start(s3, monkeypatch, table, script)
    launcher.main()
    found = records(s3)
    assert found[0]["state"] == "failed"
    assert found[0]["reason"].startswith("outputs not uploaded: c links outside the output folder")
    assert [o["path"] for o in found[1]["outputs"]] == ["a", "b"]  # a link inside: its file
    uploaded = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{RUN}out/").get("Contents", [])
    bodies = [s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in uploaded]
    assert b"hunter2" not in b"".join(bodies)


def test_a_record_naming_another_run_id_is_refused_and_writes_nothing_elsewhere(tmp_path: Path):
    store = RunStore(tmp_path)
    store.root.mkdir(parents=True)
    forged = {**GOOD, "run_id": "../../../../tmp/x"}
    (store.root / f"{GOOD['run_id']}.json").write_text(json.dumps(forged))
    with pytest.raises(RunRecordError, match="is not a run id"):
        store.load(GOOD["run_id"])
    other = {**GOOD, "run_id": "20261125-100000-ffff"}
    with pytest.raises(RunRecordError, match="it names run '20261125-100000-ffff', not 20261125-100000-abcd"):
        record_from_json(other, "s3://lab-data/runs/20261125-100000-abcd/run.json", GOOD["run_id"])
    assert sorted(os.listdir(store.root)) == [f"{GOOD['run_id']}.json"]


def sweep_of(run_id: str = "20261202-010203-abcdef01") -> Sweep:
    from runner.aws.stack_outputs import DataLocation

    return Sweep(
        DataLocation(BUCKET, "runs/", "read-write"), run_id, rows=10, per_task=1, columns=("sample",)
    )


class ManifestS3:
    """An S3 whose only object is row 4's manifest, as ``outputs`` says."""

    def __init__(self, outputs: list[dict]) -> None:
        self.outputs = outputs
        self.downloads: list[str] = []

    def get_object(self, **_: Any) -> dict:
        import io

        return {"Body": io.BytesIO(json.dumps({"state": "succeeded", "outputs": self.outputs}).encode())}

    def download_file(self, bucket: str, key: str, path: str) -> None:
        self.downloads.append(key)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"path": "../5/x", "key": "runs/RUN/out/4/1-a/x"},
            "row 4's manifest lists '../5/x', which would land outside",
        ),
        (
            {"path": "/etc/cron.d/x", "key": "runs/RUN/out/4/1-a/x"},
            "row 4's manifest lists '/etc/cron.d/x', which would land outside",
        ),
        (
            {"path": "x", "key": "secrets/prod.env"},
            "row 4's manifest names s3://lab-data/secrets/prod.env, outside s3://lab-data/runs/RUN/out/4/",
        ),
        (
            {"path": "x", "key": "runs/RUN/out/4/../../../secrets/prod.env"},
            "row 4's manifest names s3://lab-data/runs/RUN/out/4/../../../secrets/prod.env, outside",
        ),
    ],
)
def test_collect_refuses_a_manifest_that_reaches_outside_its_row(tmp_path: Path, entry: dict, message: str):
    run_id = "20261202-010203-abcdef01"
    sweep = sweep_of(run_id)
    entry = {**entry, "key": entry["key"].replace("RUN", run_id), "size": 1, "sha256": "0" * 64}
    s3 = ManifestS3([entry])
    fate = RowFate(4, "succeeded", RecordKey(4, 1, "job_0-a1", "succeeded"))
    with pytest.raises(RunnerError) as refused:
        collect_outputs(s3, sweep, [fate], tmp_path / "out", workers=1)
    assert message.replace("RUN", run_id) in str(refused.value)
    assert s3.downloads == [] and not (tmp_path / "out").exists()


def test_a_record_linking_to_a_path_instead_of_a_run_never_becomes_a_file(tmp_path: Path):
    store = RunStore(tmp_path)
    with pytest.raises(RunRecordError, match="is not a run id"):
        store.path("../../../../tmp/x")
    forged = {**GOOD, "retry_run_ids": ["../../../../tmp/x"]}
    with pytest.raises(RunRecordError, match="'parent_run_id' and 'retry_run_ids' should be run ids"):
        record_from_json(forged, "s3://lab-data/runs/x/run.json", GOOD["run_id"])
