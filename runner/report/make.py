"""``runner report``: gather a run's lineage, task times and failure logs, then write the report.

Calls: those of the summary (ListJobs pages, DescribeJobs of failed tasks in batches of 100) and
one GetLogEvents for each of the few failures whose log is shown; none for a complete run whose
summary, task times and log tails are cached beside its record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from runner.errors import RunnerError
from runner.report.html import write_report
from runner.report.model import build_report, failures_to_read
from runner.runs.service import JobRef, RunService

# A sweep's rows not done that the report names (`runner results` names every one).
ROWS_SHOWN = 20


@dataclass(frozen=True)
class Written:
    html: Path
    pngs: list[Path]
    report_bytes: int

    def to_json(self) -> dict[str, object]:
        return {"report": str(self.html), "bytes": self.report_bytes, "pngs": [str(p) for p in self.pngs]}


def default_path(ref: JobRef) -> Path:
    """``<run id>.html`` in the current directory (a job id's ``:`` made file-name safe)."""
    return Path(f"{(ref.run_id or ref.job_id).replace(':', '-')}.html")


def make_report(
    service: RunService,
    ref: JobRef,
    *,
    now: datetime,
    out: Path | None,
    png_dir: Path | None,
    all_attempts: bool,
    refresh: bool,
    price: float | None,
) -> Written:
    parts = service.lineage(ref, refresh=refresh, all_attempts=all_attempts, with_times=True)
    folded = service.fold(ref, parts, price)
    tails = service.log_tails(ref, failures_to_read(parts, folded), complete=folded.complete)
    stack = ref.record.stack if ref.record else ref.outputs.stack
    endpoint = ref.target.endpoint_url
    where = f"local emulator on {urlparse(endpoint).netloc}" if endpoint else f"AWS {ref.target.region}"
    rows = service.results(ref, shown=ROWS_SHOWN, parts=parts) if ref.sweep is not None else None
    report = build_report(
        parts,
        folded,
        stack=stack,
        where=where,
        log_tails=tails,
        memory_mib=ref.memory_mib,
        rows=rows,
        first_job_ids=ref.job_ids,
        lineage=service.code_lineage(ref) if ref.whole_run else [],
    )
    html = out or default_path(ref)
    try:
        written = write_report(report, html, png_dir, now)
    except OSError as err:
        where = f" ({err.filename})" if err.filename and Path(err.filename) != html else ""
        raise RunnerError(
            f"cannot write the report: {err.strerror or err}{where}; choose another --out or --png"
        ) from None
    return Written(written[0], written[1:], written[0].stat().st_size)
