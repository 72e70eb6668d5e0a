"""The attacks a reviewer tried, each refused in one line with nothing lost (one module a kind).

The fixtures are the runner's own layers (tests/runner/conftest.py): credentials, then moto, then
a deployed stack with a data bucket, then a CLI to drive it.
"""

from __future__ import annotations

from tests.runner.conftest import DATA_BUCKET, api_calls, data_stack, mocked_aws, stack

__all__ = ["api_calls", "data_stack", "mocked_aws", "stack"]
BUCKET = DATA_BUCKET
