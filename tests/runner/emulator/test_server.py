"""The emulator's process: moto's dispatcher routes a request without listing moto's folders."""

from __future__ import annotations

import os
from typing import Any

import pytest
from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from runner.emulator.server import list_moto_modules_once


def test_moto_lists_its_modules_once_not_for_each_request(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)  # put back after
    every = set(backends.list_of_moto_modules())
    list_moto_modules_once()
    listings: list[str] = []
    listdir = os.listdir

    def counted(path: Any = ".") -> list[str]:
        listings.append(str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counted)
    dispatcher = DomainDispatcherApplication(create_backend_app)
    assert [dispatcher.get_backend_for_host(host) for host in ("batch", "s3", "batch")] == [
        "batch",
        "s3",
        "batch",
    ]
    assert listings == [] and set(backends.list_of_moto_modules()) == every
