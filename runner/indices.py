"""Logical task indices: every task of a run has one, across shards and retries.

A task computes it as ``RUNNER_INDEX_OFFSET + AWS_BATCH_JOB_ARRAY_INDEX`` (each defaulting to 0).
Sets of indices are written compactly as ranges: ``3,17-19,402``.
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.errors import InvalidInputError

# (first, last) inclusive, as people write them.
IndexRange = tuple[int, int]


def contiguous_ranges(indices: Iterable[int]) -> list[IndexRange]:
    """Sorted, merged ranges covering exactly ``indices``."""
    ranges: list[list[int]] = []
    for index in sorted(set(indices)):
        if ranges and index == ranges[-1][1] + 1:
            ranges[-1][1] = index
        else:
            ranges.append([index, index])
    return [(first, last) for first, last in ranges]


def format_ranges(indices: Iterable[int], *, limit: int | None = None) -> str:
    """``3,17-19,402``; with ``limit``, at most that many ranges and ``,... (+N more)``."""
    return _join([list(r) for r in contiguous_ranges(indices)], limit)


def format_pieces(pieces: Iterable[tuple[int, int]], *, limit: int | None = None) -> str:
    """Like ``format_ranges`` for (offset, size) pieces, without listing every index."""
    merged: list[list[int]] = []
    for offset, size in sorted(p for p in pieces if p[1] > 0):
        if merged and offset <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], offset + size - 1)
        else:
            merged.append([offset, offset + size - 1])
    return _join(merged, limit)


def _join(ranges: list[list[int]], limit: int | None) -> str:
    shown = ranges if limit is None else ranges[:limit]
    text = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in shown)
    hidden = sum(b - a + 1 for a, b in ranges[len(shown) :])
    return f"{text},... (+{hidden:,} more)" if hidden else text


def parse_ranges(text: str, size: int, option: str = "--indices") -> list[int]:
    """``3,17-19`` to sorted indices, each checked to lie in ``0..size-1``."""
    indices: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, sep, last = part.partition("-")
        try:
            start = int(first)
            stop = int(last) if sep else start
        except ValueError:
            raise InvalidInputError(
                f"{option} takes indices and ranges such as 3,17-19, got {part!r}"
            ) from None
        if start > stop or start < 0 or stop >= size:
            raise InvalidInputError(f"{option} {part} is out of range; this run's indices are 0..{size - 1}")
        indices.update(range(start, stop + 1))
    if not indices:
        raise InvalidInputError(f"{option} names no index; use indices and ranges such as 3,17-19")
    return sorted(indices)
