"""Shards and logical indices: planning, naming, each shard's request, the submit rate."""

from __future__ import annotations

import pytest

from runner.errors import InvalidInputError
from runner.indices import contiguous_ranges, format_pieces, format_ranges, parse_ranges
from runner.runs.shards import RateLimiter, Shard, plan_shards, shard_request, split_ranges


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (100, [(0, 100)]),
        (10_000, [(0, 10_000)]),
        (25_000, [(0, 10_000), (10_000, 10_000), (20_000, 5_000)]),
        (20_001, [(0, 10_000), (10_000, 10_000), (20_000, 1)]),
        (1_000_000, [(o, 10_000) for o in range(0, 1_000_000, 10_000)]),
    ],
)
def test_a_run_is_split_into_shards_of_at_most_ten_thousand(total, expected):
    assert split_ranges([(0, total - 1)]) == expected


def test_a_remainder_of_one_is_a_plain_job_with_its_offset():
    shards = plan_shards(split_ranges([(0, 20_000)]), "sweep-RUN")
    assert [s.job_name for s in shards] == ["sweep-RUN-0", "sweep-RUN-1", "sweep-RUN-2"]
    last = shards[-1]
    request = shard_request(
        {"containerOverrides": {"environment": [{"name": "X", "value": "1"}]}}, last, 20_001
    )
    assert "arrayProperties" not in request
    env = {e["name"]: e["value"] for e in request["containerOverrides"]["environment"]}
    assert env == {"X": "1", "RUNNER_INDEX_OFFSET": "20000", "RUNNER_ARRAY_SIZE": "20001"}
    assert last.with_job_id("j").task_job_id(20_000) == "j"
    assert shards[1].with_job_id("p").task_job_id(10_007) == "p:7"


def test_a_lone_shard_keeps_the_runs_name_and_array_size():
    (shard,) = plan_shards([(0, 100)], "sweep-RUN")
    request = shard_request({}, shard, 100)
    assert (request["jobName"], request["arrayProperties"]) == ("sweep-RUN", {"size": 100})


def test_retry_ranges_become_one_shard_per_contiguous_range():
    ranges = contiguous_ranges([402, 3, 17, 18, 19, 12_000, *range(20_000, 35_001)])
    assert ranges == [(3, 3), (17, 19), (402, 402), (12_000, 12_000), (20_000, 35_000)]
    assert split_ranges(ranges) == [(3, 1), (17, 3), (402, 1), (12_000, 1), (20_000, 10_000), (30_000, 5_001)]


@pytest.mark.parametrize(
    ("indices", "text"),
    [([3, 17, 18, 19, 402], "3,17-19,402"), ([5], "5"), ([], ""), (list(range(10)), "0-9")],
)
def test_index_sets_read_as_compact_ranges(indices, text):
    assert format_ranges(indices) == text
    if indices:
        assert parse_ranges(text, 1000) == indices


def test_long_index_lists_are_cut_with_a_count():
    assert format_ranges(range(0, 40, 2), limit=3) == "0,2,4,... (+17 more)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3,x", "--indices takes indices and ranges such as 3,17-19, got 'x'"),
        ("5-2", "--indices 5-2 is out of range; this run's indices are 0..99"),
        ("100", "--indices 100 is out of range; this run's indices are 0..99"),
        (",", "--indices names no index"),
    ],
)
def test_bad_index_ranges_are_one_line(text, message):
    with pytest.raises(InvalidInputError) as caught:
        parse_ranges(text, 100)
    assert str(caught.value).startswith(message)


def test_submits_are_paced_to_fifty_a_second():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(clock=lambda: now[0], sleep=sleep)
    for _ in range(101):
        limiter.wait()
    assert now[0] == pytest.approx(2.0)  # 101 calls: the first at once, then one every 20 ms
    assert len(slept) == 100


def test_shard_holds_its_indices():
    shard = Shard(10_000, 10_000, "n", "j")
    assert shard.holds(10_000) and shard.holds(19_999) and not shard.holds(20_000)


def test_pieces_read_like_ranges_without_listing_every_index():
    assert format_pieces([(17, 3), (3, 1), (20, 2), (1_000, 1_000_000)]) == "3,17-21,1000-1000999"
    assert format_pieces([(0, 5), (2, 2)]) == "0-4"
    assert format_pieces([(i * 2, 1) for i in range(10)], limit=3) == "0,2,4,... (+7 more)"
