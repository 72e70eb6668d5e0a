"""``runner collect``: the outputs of a sweep's done rows, downloaded to ``DIR/<row>/<relative path>``.

Only rows with a manifest are collected, and exactly the files their manifest lists (never what a
killed attempt left beside them). Each file is checked against the manifest's size and SHA-256: one
already there that matches is kept, one that differs is replaced, and a download that does not
match is refused. Downloads run a few at a time, each to a temporary name renamed into place once
checked, so an interrupted collect leaves no partial file that a later one would take for done.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.aws.clients import aws_errors
from runner.errors import RunnerError
from runner.runs.results import read_record
from runner.runs.rows import DONE_STATES, RowFate
from runner.runs.sweep import Sweep

WORKERS = 8


@dataclass(frozen=True)
class OutputFile:
    """One file a row's manifest lists."""

    row: int
    key: str
    relative: str  # its path under the row's folder
    size: int
    sha256: str


@dataclass(frozen=True)
class Collected:
    rows: int
    files: int
    downloaded: int
    skipped: int  # already there, size and checksum matching
    replaced: int  # there, but differing from the manifest: downloaded again
    bytes: int
    not_done: list[int]  # rows asked for that have no manifest: nothing to collect

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "files": self.files,
            "downloaded": self.downloaded,
            "skipped": self.skipped,
            "replaced": self.replaced,
            "bytes": self.bytes,
            "notDone": self.not_done,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _target(dest: Path, item: OutputFile) -> Path:
    """Where a listed file goes: inside ``dest/<row>/``, whatever its manifest says."""
    parts = item.relative.split("/")
    if any(part in ("", ".", "..") or "\0" in part for part in parts):
        raise RunnerError(
            f"row {item.row}'s manifest lists {item.relative[:80]!r}, which would land outside "
            f"{dest / str(item.row)}; its manifest is not trustworthy"
        )
    return (dest / str(item.row)).joinpath(*parts).absolute()


def _check_key(sweep: Sweep, item: OutputFile) -> None:
    """A manifest may only name objects its own row wrote: under ``out/<row>/`` of this run."""
    folder = f"{sweep.outputs_key}{item.row}/"
    if not item.key.startswith(folder) or "/../" in f"/{item.key}/":
        raise RunnerError(
            f"row {item.row}'s manifest names s3://{sweep.data.bucket}/{item.key[:120]}, outside "
            f"s3://{sweep.data.bucket}/{folder}; its manifest is not trustworthy"
        )


def manifest_files(s3: Any, sweep: Sweep, fate: RowFate) -> list[OutputFile]:
    """What a done row's manifest lists."""
    assert fate.record is not None
    manifest = read_record(s3, sweep, fate.record)
    return [
        OutputFile(fate.row, str(o["key"]), str(o["path"]), int(o["size"]), str(o["sha256"]))
        for o in manifest.get("outputs") or []
    ]


def _matches(path: Path, item: OutputFile) -> bool:
    return path.is_file() and path.stat().st_size == item.size and file_sha256(path) == item.sha256


def collect_outputs(
    s3: Any,
    sweep: Sweep,
    fates: Sequence[RowFate],
    dest: Path,
    rows: Collection[int] | None = None,
    *,
    on_plan: Callable[[int, int], None] = lambda _files, _bytes: None,
    on_file: Callable[[int], None] = lambda _bytes: None,
    workers: int = WORKERS,
) -> Collected:
    """Download what the manifests of the done rows (of ``rows`` only, when given) list."""
    asked = [fate for fate in fates if rows is None or fate.row in rows]
    done = [fate for fate in asked if fate.state in DONE_STATES and fate.record is not None]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        listed = [item for files in pool.map(lambda f: manifest_files(s3, sweep, f), done) for item in files]
        todo: list[tuple[OutputFile, Path, bool]] = []
        for item in listed:
            _check_key(sweep, item)
            path = _target(dest, item)
            there = path.exists()
            if there and _matches(path, item):
                continue
            todo.append((item, path, there))
        on_plan(len(todo), sum(item.size for item, _, _ in todo))

        def fetch(job: tuple[OutputFile, Path, bool]) -> int:
            item, path, _ = job
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.part")
            with aws_errors():
                s3.download_file(sweep.data.bucket, item.key, str(partial))
            if not _matches(partial, item):
                partial.unlink(missing_ok=True)
                raise RunnerError(
                    f"s3://{sweep.data.bucket}/{item.key} does not match row {item.row}'s manifest "
                    "(size or SHA-256); it was changed after the row finished"
                )
            os.replace(partial, path)
            on_file(item.size)
            return item.size

        fetched = list(pool.map(fetch, todo))
    return Collected(
        rows=len(done),
        files=len(listed),
        downloaded=len(fetched),
        skipped=len(listed) - len(fetched),
        replaced=sum(1 for _, _, there in todo if there),
        bytes=sum(fetched),
        not_done=[fate.row for fate in asked if fate.state not in DONE_STATES],
    )
