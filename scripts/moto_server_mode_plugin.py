"""pytest plugin for running moto's own tests in server mode against the emulator.

moto's ``mock_aws`` swaps in the keys FOOBARKEY/FOOBARSECRET while a test runs; the emulator only
takes requests signed with its own keys (as AWS only takes keys it knows), so keep the caller's.
"""

from __future__ import annotations

from typing import Any


def pytest_configure(config: Any) -> None:
    from moto.core.config import default_user_config

    default_user_config.setdefault("core", {})["mock_credentials"] = False
