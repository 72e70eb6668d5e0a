"""The user's code as a package the task unpacks: which files, in a byte-for-byte reproducible archive.

``--code PATH`` (a file or a folder) becomes one ``.tar.gz`` holding the code at its root and the
launcher at ``.batch-stacks/launcher.py``. Inside a git work tree the files are the ones git would
track (tracked, plus untracked but not ignored); elsewhere every file but the usual clutter
(``.git``, ``.venv``, ``__pycache__``...). A ``.runnerignore`` in PATH (gitignore syntax) leaves out
more in both cases.

The archive is reproducible (sorted names, no times, owners or modes beyond "executable or not",
a fixed gzip header), so the same code makes the same bytes and a second submit finds it in S3 by
its digest and uploads nothing. The code's own digest, over names, modes and contents, is what the
records show: it does not change when the runner (and so the launcher) does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import InvalidInputError, RunnerError

MAX_CODE_BYTES = 100 * 1024 * 1024
IGNORE_FILE = ".runnerignore"
# Where the launcher sits in a package; a user folder may not hold it.
RESERVED_FOLDER = ".batch-stacks"
LAUNCHER_NAME = f"{RESERVED_FOLDER}/launcher.py"
# Left out of a folder that is not in a git work tree (git's own ignore rules apply inside one).
DEFAULT_IGNORES = (
    ".git/",
    ".hg/",
    ".svn/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".tox/",
    "node_modules/",
    "*.egg-info/",
    ".DS_Store",
)
SHOWN_LARGEST = 3


@dataclass(frozen=True)
class CodeFile:
    """One file of the package: its name in the archive, where it is read from, and whether it runs."""

    name: str
    path: Path
    size: int
    executable: bool


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool


@dataclass(frozen=True)
class CodePackage:
    """The archive, its name-giving digest, and what records say of the code in it."""

    body: bytes
    sha256: str  # of ``body``: the package's name in S3
    code_digest: str | None  # of the user's files (names, modes, contents); None: launcher only
    files: int
    code_bytes: int
    source: str | None
    git: GitState | None

    @property
    def short_digest(self) -> str | None:
        return self.code_digest[:12] if self.code_digest else None

    def code_json(self) -> dict[str, Any] | None:
        """What a run record, its manifests and its report keep of the code (None: no --code)."""
        if self.code_digest is None:
            return None
        return {
            "digest": self.code_digest,
            "files": self.files,
            "bytes": self.code_bytes,
            "source": self.source,
            "commit": self.git.commit if self.git else None,
            "dirty": self.git.dirty if self.git else None,
        }


def _git(folder: Path, *args: str) -> str | None:
    """git's output in ``folder``; None when git is missing or says no (not a work tree)."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "surrogateescape") if done.returncode == 0 else None


def git_state(folder: Path, pathspec: str = ".") -> GitState | None:
    """The commit checked out, and whether the packaged files differ from it."""
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=normal", "--", pathspec)
    return GitState(commit.strip(), bool(status and status.strip()))


def _git_files(folder: Path) -> list[str] | None:
    """What git would track under ``folder`` (relative to it); None outside a work tree."""
    if (_git(folder, "rev-parse", "--is-inside-work-tree") or "").strip() != "true":
        return None
    listed = _git(folder, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
    if listed is None:
        return None
    return sorted({name for name in listed.split("\0") if name})


def _walk_files(folder: Path) -> list[str]:
    """Every file under ``folder`` but the usual clutter (no git to ask)."""
    import pathspec

    clutter = pathspec.GitIgnoreSpec.from_lines(DEFAULT_IGNORES)
    names = []
    for top, dirs, files in os.walk(folder):
        relative = Path(top).relative_to(folder).as_posix()
        base = "" if relative == "." else relative + "/"
        dirs[:] = sorted(d for d in dirs if not clutter.match_file(base + d + "/"))
        names += [base + f for f in files if not clutter.match_file(base + f)]
        names += [base + d for d in dirs if Path(top, d).is_symlink()]  # not followed: checked
    return sorted(names)


def _ignored_by_file(folder: Path, names: Iterable[str]) -> set[str]:
    """Names the folder's ``.runnerignore`` leaves out."""
    ignore = folder / IGNORE_FILE
    if not ignore.is_file():
        return set()
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(
        ignore.read_text(encoding="utf-8", errors="replace").splitlines()
    )
    return {name for name in names if spec.match_file(name)}


def _code_file(root: Path, name: str, source: Path) -> CodeFile | None:
    """One listed name as a file to pack; None for what git lists but the tree no longer has."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise InvalidInputError(
            f"--code {source}: the name '{shown}' is not UTF-8; rename it or list it in {IGNORE_FILE}"
        ) from None
    path = root / name
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(root.resolve()):
            raise InvalidInputError(
                f"--code {source}: {name} is a link to {target}, outside the folder; copy the file in "
                f"or list it in {IGNORE_FILE}"
            )
        if target.is_dir():
            raise InvalidInputError(
                f"--code {source}: {name} is a link to a folder; replace it with the folder or list "
                f"it in {IGNORE_FILE}"
            )
    try:
        info = path.stat()
    except FileNotFoundError:
        return None  # deleted since git last saw it
    if not stat.S_ISREG(info.st_mode):
        return None
    if not os.access(path, os.R_OK):
        raise InvalidInputError(
            f"--code {source}: {name} cannot be read (permission denied); fix or ignore it"
        )
    return CodeFile(name, path, info.st_size, bool(info.st_mode & 0o111))


def gather(source: Path) -> tuple[list[CodeFile], GitState | None]:
    """The files ``--code`` packs, checked: present, readable, inside PATH, within the size limit."""
    if not source.exists() and not source.is_symlink():
        raise InvalidInputError(f"--code {source} does not exist; name a script or a folder")
    if source.is_file():
        folder, names = source.parent, [source.name]
        git = git_state(folder, source.name)
    elif source.is_dir():
        folder = source
        listed = _git_files(folder)
        names = listed if listed is not None else _walk_files(folder)
        ignored = _ignored_by_file(folder, names)
        names = [n for n in names if n not in ignored]
        git = git_state(folder) if listed is not None else None
    else:
        raise InvalidInputError(f"--code {source} is neither a file nor a folder")
    if any(name == RESERVED_FOLDER or name.startswith(RESERVED_FOLDER + "/") for name in names):
        raise InvalidInputError(f"--code {source}: {RESERVED_FOLDER}/ is the runner's; rename that folder")
    files = [f for f in (_code_file(folder, name, source) for name in names) if f is not None]
    if not files:
        rules = "git ignores all of it (.gitignore)" if git is not None else "it has no files"
        raise InvalidInputError(
            f"--code {source} holds nothing to ship: {rules}, or {IGNORE_FILE} leaves every file out"
        )
    check_size(files, source)
    return files, git


def check_size(files: Sequence[CodeFile], source: Path, limit: int = MAX_CODE_BYTES) -> None:
    total = sum(f.size for f in files)
    if total <= limit:
        return
    largest = sorted(files, key=lambda f: (-f.size, f.name))[:SHOWN_LARGEST]
    named = ", ".join(f"{f.name} ({f.size / 2**20:.1f} MiB)" for f in largest)
    raise InvalidInputError(
        f"--code {source} is {total / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB limit; largest: "
        f"{named}: list data in {IGNORE_FILE} and stage it with --input, or put it in the image"
    )


def code_digest(files: Sequence[CodeFile], contents: Sequence[bytes]) -> str:
    """The code's identity: every name, whether it is executable, and its bytes."""
    digest = hashlib.sha256()
    for file, body in zip(files, contents, strict=True):
        digest.update(f"{file.name}\0{int(file.executable)}\0{len(body)}\0".encode())
        digest.update(body)
    return digest.hexdigest()


def _add(archive: tarfile.TarFile, name: str, body: bytes, executable: bool) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(body), 0, 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(body))


def build_package(
    files: Sequence[CodeFile], launcher: bytes, *, source: str | None, git: GitState | None
) -> CodePackage:
    """The reproducible archive: the code at its root (if any), the launcher in ``.batch-stacks/``."""
    contents = []
    for file in files:
        try:
            contents.append(file.path.read_bytes())
        except OSError as err:
            raise InvalidInputError(f"--code {source}: {file.name} cannot be read ({err.strerror})") from None
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for file, body in zip(files, contents, strict=True):
            _add(archive, file.name, body, file.executable)
        _add(archive, LAUNCHER_NAME, launcher, False)
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=6) as zipped:
        zipped.write(raw.getvalue())
    body = packed.getvalue()
    return CodePackage(
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        code_digest=code_digest(files, contents) if files else None,
        files=len(files),
        code_bytes=sum(len(c) for c in contents),
        source=source,
        git=git,
    )


def package_code(source: Path | None, launcher: bytes) -> CodePackage:
    """``--code PATH`` packed with the launcher; without a PATH, the launcher alone."""
    if source is None:
        return build_package([], launcher, source=None, git=None)
    files, git = gather(source)
    return build_package(files, launcher, source=str(source), git=git)


def code_drift(code: dict[str, Any] | None, run_id: str) -> str | None:
    """One line when the folder ``code`` was packaged from now holds other code (edited since):
    what a retry without ``--code`` runs, and how to run the folder's code instead. None when it is
    unchanged, or cannot be read from here."""
    source = (code or {}).get("source")
    if not source or not code or not Path(source).exists():
        return None
    try:
        files, _ = gather(Path(source))
        now = code_digest(files, [file.path.read_bytes() for file in files])
    except (RunnerError, OSError):
        return None
    if now == code.get("digest"):
        return None
    return (
        f"{source} has changed since run {run_id} packaged it ({short(code.get('digest'))}, now "
        f"{short(now)}); this retry runs {short(code.get('digest'))}: pass --code {source} to run what "
        "is there now"
    )


def describe_code(code: dict[str, Any] | None) -> str:
    """A run's code in a few words: ``3f2a9c1e0b7d (12 files, 5.0 MB; commit 1a2b3c4, uncommitted changes)``."""
    if not code:
        return "the image's"
    details = [f"{code.get('files', 0):,} file{'s' if code.get('files') != 1 else ''}"]
    details[0] += f", {size_text(int(code.get('bytes') or 0))}"
    if code.get("commit"):
        details.append(
            f"commit {str(code['commit'])[:7]}" + (", uncommitted changes" if code.get("dirty") else "")
        )
    return f"{short(code.get('digest'))} ({'; '.join(details)})"


def size_text(size: int) -> str:
    """Bytes as people read them: ``412 bytes``, ``3.2 kB``, ``5.0 MB``."""
    if size < 1000:
        return f"{size} bytes"
    return f"{size / 1e3:.1f} kB" if size < 1e6 else f"{size / 1e6:.1f} MB"


def short(digest: str | None) -> str:
    """A code digest as people compare them (12 hex digits); ``image`` for a run without --code."""
    return digest[:12] if digest else "image"
