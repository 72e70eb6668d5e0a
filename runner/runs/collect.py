"""``runner collect``: a sweep's outputs downloaded to ``DIR/<row>/<relative path>``.

Resumable: a file already there with the same size is skipped. Downloads run a few at a time, each
to a temporary name renamed into place when complete, so an interrupted collect leaves no partial
file that a later one would take for done.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.aws.clients import aws_errors
from runner.aws.data_store import OutputObject, output_objects

WORKERS = 8


@dataclass(frozen=True)
class Collected:
    rows: int
    files: int
    downloaded: int
    skipped: int
    bytes: int

    def to_json(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "files": self.files,
            "downloaded": self.downloaded,
            "skipped": self.skipped,
            "bytes": self.bytes,
        }


def _target(dest: Path, obj: OutputObject) -> Path:
    path = (dest / str(obj.row) / obj.relative).resolve()
    if dest.resolve() not in path.parents:
        raise ValueError(f"{obj.key} would land outside {dest}")  # a key with '..' in it
    return path


def collect_outputs(
    s3: Any,
    bucket: str,
    prefix: str,
    dest: Path,
    rows: Collection[int] | None = None,
    *,
    on_plan: Callable[[int, int], None] = lambda _files, _bytes: None,
    on_file: Callable[[int], None] = lambda _bytes: None,
    workers: int = WORKERS,
) -> Collected:
    """Download every output (of ``rows`` only, when given) not already in ``dest``."""
    wanted = [obj for obj in output_objects(s3, bucket, prefix) if rows is None or obj.row in rows]
    todo = []
    for obj in wanted:
        path = _target(dest, obj)
        if path.is_file() and path.stat().st_size == obj.size:
            continue
        todo.append((obj, path))
    on_plan(len(todo), sum(obj.size for obj, _ in todo))

    def fetch(item: tuple[OutputObject, Path]) -> int:
        obj, path = item
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        with aws_errors():
            s3.download_file(bucket, obj.key, str(partial))
        os.replace(partial, path)
        on_file(obj.size)
        return obj.size

    with ThreadPoolExecutor(max_workers=workers) as pool:
        fetched = list(pool.map(fetch, todo))
    return Collected(
        rows=len({obj.row for obj in wanted}),
        files=len(wanted),
        downloaded=len(fetched),
        skipped=len(wanted) - len(fetched),
        bytes=sum(fetched),
    )
