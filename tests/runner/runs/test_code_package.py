"""``--code``: which files go in, the reproducible archive, and a line for every bad path."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from runner.errors import InvalidInputError
from runner.runs import code_package
from runner.runs.code_package import LAUNCHER_NAME, describe_code, gather, package_code

LAUNCHER = b"print('launcher')\n"


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), *args],
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
        | {"GIT_COMMITTER_EMAIL": "t@t"},
    )


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def names(source: Path) -> list[str]:
    return [f.name for f in gather(source)[0]]


def members(body: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        return {m.name: m for m in archive.getmembers()}


def test_in_a_git_work_tree_the_files_git_would_track_minus_runnerignore(tmp_path: Path):
    repo = write(
        tmp_path / "repo",
        {
            "analysis/qc.py": "print(1)\n",
            "analysis/lib/util.py": "x = 1\n",
            "analysis/notes.txt": "untracked, not ignored\n",
            "analysis/big.bam": "ignored by git\n",
            "analysis/scratch/tmp.txt": "ignored by .runnerignore\n",
            "analysis/.runnerignore": "scratch/\n",
            "other/elsewhere.py": "outside PATH\n",
            ".gitignore": "*.bam\n",
        },
    )
    git(repo, "init", "-q")
    git(repo, "add", ".gitignore", "analysis/qc.py", "analysis/lib/util.py")
    git(repo, "commit", "-qm", "first")
    (repo / "analysis/gone.py").write_text("tracked, then deleted\n")
    git(repo, "add", "analysis/gone.py")
    (repo / "analysis/gone.py").unlink()

    files, state = gather(repo / "analysis")
    assert [f.name for f in files] == [".runnerignore", "lib/util.py", "notes.txt", "qc.py"]
    assert state is not None and len(state.commit) == 40 and state.dirty  # untracked notes, deleted file
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "clean")
    assert gather(repo / "analysis")[1].dirty is False  # type: ignore[union-attr]


def test_outside_git_the_usual_clutter_is_left_out(tmp_path: Path):
    folder = write(
        tmp_path / "code",
        {
            "run.py": "",
            "pkg/mod.py": "",
            "pkg/__pycache__/mod.cpython-311.pyc": "",
            ".venv/bin/python": "",
            ".git/HEAD": "",
            "node_modules/x/index.js": "",
            "keep.pyc.txt": "",
            "data/huge.csv": "",
            ".runnerignore": "data/\n",
        },
    )
    assert names(folder) == [".runnerignore", "keep.pyc.txt", "pkg/mod.py", "run.py"]
    assert gather(folder)[1] is None


def test_a_single_file_is_packed_under_its_name(tmp_path: Path):
    script = write(tmp_path, {"qc.py": "print('qc')\n"}) / "qc.py"
    package = package_code(script, LAUNCHER)
    assert sorted(members(package.body)) == [LAUNCHER_NAME, "qc.py"]
    assert package.files == 1 and package.code_bytes == len("print('qc')\n")


def test_the_archive_is_the_same_bytes_for_the_same_code_and_changes_with_it(tmp_path: Path):
    folder = write(tmp_path / "code", {"run.py": "print(1)\n", "tool.sh": "echo hi\n"})
    (folder / "tool.sh").chmod(0o755)
    first = package_code(folder, LAUNCHER)
    os.utime(folder / "run.py", (1, 1))  # times are not part of it
    again = package_code(folder, LAUNCHER)
    assert again.body == first.body and again.sha256 == first.sha256
    assert members(first.body)["tool.sh"].mode == 0o755 and members(first.body)["run.py"].mode == 0o644
    assert {m.mtime for m in members(first.body).values()} == {0}

    upgraded = package_code(folder, LAUNCHER + b"# a new runner\n")
    assert upgraded.sha256 != first.sha256 and upgraded.code_digest == first.code_digest  # same code
    (folder / "tool.sh").chmod(0o644)
    assert package_code(folder, LAUNCHER).code_digest != first.code_digest  # a mode is code
    (folder / "run.py").write_text("print(2)\n")
    assert package_code(folder, LAUNCHER).code_digest != first.code_digest


def test_without_code_the_package_is_the_launcher_alone():
    package = package_code(None, LAUNCHER)
    assert list(members(package.body)) == [LAUNCHER_NAME]
    assert package.code_digest is None and package.code_json() is None


def missing(d: Path) -> Path:
    return d / "nope"


def empty(d: Path) -> Path:
    (d / "empty").mkdir()
    return d / "empty"


def reserved(d: Path) -> Path:
    return write(d / "code", {".batch-stacks/x": "", "run.py": ""})


def link_outside(d: Path) -> Path:
    write(d / "code", {"run.py": ""})
    (d / "code/pw").symlink_to("/etc/hostname")
    return d / "code"


def link_to_folder(d: Path) -> Path:
    write(d / "code", {"sub/a.py": ""})
    (d / "code/link").symlink_to(d / "code/sub")
    return d / "code"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (missing, "--code {d}/nope does not exist; name a script or a folder"),
        (empty, "--code {d}/empty holds nothing to ship: it has no files"),
        (reserved, "--code {d}/code: .batch-stacks/ is the runner's; rename that folder"),
        (link_outside, "--code {d}/code: pw is a link to /etc/hostname, outside the folder"),
        (link_to_folder, "--code {d}/code: link is a link to a folder"),
    ],
)
def test_every_bad_path_is_one_line(tmp_path: Path, setup, message: str):
    with pytest.raises(InvalidInputError) as caught:
        gather(setup(tmp_path))
    assert str(caught.value).startswith(message.format(d=tmp_path)), caught.value


def test_a_link_inside_the_folder_is_packed_as_the_file_it_names(tmp_path: Path):
    folder = write(tmp_path / "code", {"real.py": "print(1)\n"})
    (folder / "alias.py").symlink_to(folder / "real.py")
    package = package_code(folder, LAUNCHER)
    assert members(package.body)["alias.py"].isfile() and members(package.body)["alias.py"].size == 9


def test_over_the_limit_names_the_largest_files(tmp_path: Path):
    folder = write(tmp_path / "code", {"a.bin": "x" * 3000, "b.bin": "x" * 2000, "c.py": "x" * 10})
    files, _ = gather(folder)
    with pytest.raises(InvalidInputError) as caught:
        code_package.check_size(files, folder, limit=4096)
    message = str(caught.value)
    assert message.startswith(f"--code {folder} is 0.0 MiB, over the 0 MiB limit; largest: a.bin (0.0 MiB)")
    assert "b.bin" in message and "--input" in message


def test_a_file_that_cannot_be_read_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = write(tmp_path / "code", {"run.py": "", "secret.key": "k"})
    monkeypatch.setattr(os, "access", lambda path, mode: not str(path).endswith("secret.key"))
    with pytest.raises(InvalidInputError, match=r"secret.key cannot be read \(permission denied\)"):
        gather(folder)


def test_the_code_in_words():
    code = {
        "digest": "4c5b0686fdfc" + "0" * 52,
        "files": 12,
        "bytes": 5_100_000,
        "commit": "1a2b3c4d5e",
        "dirty": True,
    }
    assert describe_code(code) == "4c5b0686fdfc (12 files, 5.1 MB; commit 1a2b3c4, uncommitted changes)"
    assert describe_code(None) == "the image's"
