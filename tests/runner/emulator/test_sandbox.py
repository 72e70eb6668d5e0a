"""The walls' pure parts: which folders are emptied, which are put back, and the arguments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.emulator import sandbox


def test_only_the_outermost_existing_folders_are_emptied(tmp_path: Path):
    (tmp_path / "home" / "proj").mkdir(parents=True)
    (tmp_path / "state").mkdir()
    paths = [str(tmp_path / "home" / "proj"), str(tmp_path / "home"), str(tmp_path / "state"), "/no/such"]
    assert sorted(sandbox.outermost(paths)) == [str(tmp_path / "home"), str(tmp_path / "state")]
    assert sandbox.covered(str(tmp_path / "home" / "proj"), [str(tmp_path / "home")])
    assert not sandbox.covered(str(tmp_path / "homework"), [str(tmp_path / "home")])  # a name, not a prefix
    assert sandbox.covered("/anything", ["/"])


def test_a_folder_the_tasks_user_cannot_pass_is_found():
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="walls-"))  # pytest's own folders are 0700 all the way
    try:
        base.chmod(0o755)
        closed = base / "closed"
        (closed / "python" / "bin").mkdir(parents=True)
        closed.chmod(0o700)
        owner = os.stat(closed).st_uid
        stranger = (owner + 4242, owner + 4242)
        assert sandbox.closed_to(stranger, [str(closed / "python" / "bin")]) == [str(closed)]
        assert sandbox.closed_to((owner, owner), [str(closed / "python" / "bin")]) == []
    finally:
        shutil.rmtree(base)


def test_the_arguments_the_executor_builds_parse_and_anything_else_is_the_usage_line():
    options, command = sandbox.parse(
        [
            "--workdir",
            "/w",
            "--keep",
            "/w",
            "--hide",
            "/h",
            "--hide",
            "/s",
            "--user",
            "65534:65534",
            "--",
            "sh",
            "-c",
            "x",
        ]
    )
    assert options["hide"] == ["/h", "/s"] and options["user"] == ["65534:65534"]
    assert command == ["sh", "-c", "x"]
    for bad in (["--workdir", "/w"], ["--bogus", "x", "--", "true"], ["--", "true"]):
        with pytest.raises(SystemExit) as refused:
            sandbox.parse(bad)
        assert str(refused.value) == sandbox.USAGE
