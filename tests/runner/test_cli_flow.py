from __future__ import annotations

from tests.runner.conftest import Runner


def test_submit_array_wait_shows_summary_of_all_succeeded(runner: Runner):
    result = runner("submit", "--array", "100", "--wait")
    print(result.output)
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.output
