"""A task's walls on the emulator's own machine: what a container would not see stays out of sight.

On AWS a task sees its image and its own folder, never the host's files. The emulator runs a task
as a local process, so it starts it through this module (``python -m runner.emulator.sandbox``),
which on Linux puts it in namespaces of its own before its command runs:

- a mount namespace where the emulator's state folder (its keys, every other task's folder) and
  the owner's HOME (``~/.aws``, ``~/.ssh``, the project) are empty, /tmp is the task's own, and only
  the task's folder (read-write) and the Python and the PATH entries it runs with (read-only) are
  put back;
- a PID namespace with its own /proc: no other process of the machine can be seen, signalled or
  read through ``/proc/<pid>/root``;
- its command runs without any capability: as the owner in a user namespace of its own (an
  ordinary user), or, when the emulator runs as root, as the job definition's ``user`` (nobody).
  It cannot undo the mounts: those it inherits are locked, and the processes that made them are
  not dumpable.

The network is the host's (a task reaches the emulator and its credentials server on loopback).
Where the kernel refuses namespaces (no user namespaces, macOS) ``probe`` says why, and the
emulator runs tasks unisolated and says so at ``runner local up``.

This module imports nothing but the standard library, and little of it (no argparse, no pathlib:
10 ms of a task's start): it starts once per task attempt.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
import warnings  # noqa: F401  (os.execvp imports it lazily, once the walls may hide the stdlib)
from collections.abc import Sequence

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_DUMPABLE = 4
# What the task exits with when its walls cannot be built (Docker's "the container could not run").
CANNOT_RUN = 125
# Signals the walls' own processes take without dying: the task's process group gets them too.
PASSED_ON = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class SandboxError(Exception):
    """The walls could not be built: the task does not run."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(code)} (errno {code})")


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    encoded = [None if value is None else value.encode() for value in (source, target, kind, data)]
    _check(
        _libc().mount(encoded[0], encoded[1], encoded[2], flags, encoded[3]), f"mount {kind or ''} {target}"
    )


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def covered(path: str, hidden: Sequence[str]) -> bool:
    """Whether ``path`` is one of the hidden folders or inside one."""
    return any(path == h or path.startswith(h.rstrip("/") + "/") for h in hidden)


def outermost(paths: Sequence[str]) -> list[str]:
    """The existing folders of ``paths``, resolved, without those inside another one."""
    found = sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)}, key=lambda p: p.count("/"))
    kept: list[str] = []
    for path in found:
        if not covered(path, kept):
            kept.append(path)
    return kept


def _ancestors(path: str) -> list[str]:
    """The folders above ``path``, outermost first: ``/a/b/c`` -> ``/``, ``/a``, ``/a/b``."""
    parts = os.path.realpath(path).split("/")[1:-1]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def closed_to(user: tuple[int, int], paths: Sequence[str]) -> list[str]:
    """The folders above ``paths`` that ``user`` cannot pass through (root's 0700 HOME holding
    the Python the emulator runs on): emptied and the paths put back, so the task's user can reach
    exactly them."""
    closed = []
    for path in paths:
        for folder in _ancestors(path):
            try:
                info = os.stat(folder)
            except OSError:
                break
            if info.st_uid == user[0]:
                allowed = info.st_mode & 0o100
            elif info.st_gid == user[1]:
                allowed = info.st_mode & 0o010
            else:
                allowed = info.st_mode & 0o001
            if not allowed:
                closed.append(folder)
                break
    return closed


def enter() -> None:
    """Unshare the namespaces: mount and PID, and (unless root, who needs none to mount) a user
    namespace mapping the caller's ids to themselves."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWPID | (0 if uid == 0 else CLONE_NEWUSER)
    _check(_libc().unshare(flags), "unshare")
    if flags & CLONE_NEWUSER:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")


def build_walls(
    hide: Sequence[str], keep: Sequence[str], expose: Sequence[str], user: tuple[int, int] | None = None
) -> None:
    """Inside the new mount namespace: empty the hidden folders and /tmp, put back what is kept
    (read-write) and exposed (read-only), and a /proc of the task's own PID namespace."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    hidden = outermost([*hide, *(closed_to(user, [*keep, *expose]) if user else [])])
    back = [(os.path.realpath(p), False) for p in keep] + [(p, True) for p in outermost(expose)]
    back = [(path, read_only) for path, read_only in back if covered(path, [*hidden, "/tmp"])]
    # Opened before anything is covered; bound back from these handles afterwards.
    handles = [(os.open(path, os.O_PATH | os.O_DIRECTORY), path, ro) for path, ro in back]
    for path in hidden:
        _mount("none", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    _mount("none", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")  # anyone's, as /tmp is
    for handle, path, read_only in handles:
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC)
        if read_only:
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
        os.close(handle)
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except SandboxError:
        # The kernel will not mount a proc here (a container with masked /proc): hide the host's.
        _mount("none", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=555")


def _ignore(_signum: int, _frame: object) -> None:
    """The walls' processes outlive the signals the task's group is sent; the task decides."""


def _status(status: int) -> int:
    """A child's wait status as an exit code: a signal N as 128+N, as a shell reports it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run_command(command: Sequence[str], workdir: str, user: tuple[int, int] | None) -> None:
    """The task's command, in its folder, as ``user`` (when root drops to it); never returns."""
    try:
        if user is not None:
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
        os.chdir(workdir)
        for signum in PASSED_ON:
            signal.signal(signum, signal.SIG_DFL)
        os.execvp(command[0], list(command))
    except OSError as err:
        sys.stderr.write(f"{command[0]}: {err.strerror}\n")
        os._exit(127 if err.errno == errno.ENOENT else 126)


def init(command: Sequence[str], workdir: str, user: tuple[int, int] | None) -> int:
    """PID 1 of the task's namespace: start the command, reap every orphan, end with the command."""
    os.chdir(workdir)
    child = os.fork()
    if child == 0:
        run_command(command, workdir, user)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return CANNOT_RUN
        if pid == child:
            return _status(status)


def sandboxed(
    command: Sequence[str],
    *,
    workdir: str,
    hide: Sequence[str],
    keep: Sequence[str],
    expose: Sequence[str],
    user: tuple[int, int] | None,
) -> int:
    """Run ``command`` inside the walls; its exit code (CANNOT_RUN if they cannot be built)."""
    for signum in PASSED_ON:
        signal.signal(signum, _ignore)
    root = os.getuid() == 0
    try:
        if root and user is not None:
            for path in keep:
                for top, dirs, files in os.walk(path):
                    os.chown(top, *user)
                    for name in dirs + files:
                        os.lchown(os.path.join(top, name), *user)
        enter()
    except (OSError, SandboxError) as err:
        sys.stderr.write(f"CannotStartContainerError: the task's sandbox: {err}\n")
        return CANNOT_RUN
    first = os.fork()
    if first == 0:  # PID 1 of the new namespace
        code = CANNOT_RUN
        try:
            _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
            build_walls(hide, keep, expose, user if root else None)
            code = init(command, workdir, user if root else None)
        except (OSError, SandboxError) as err:
            sys.stderr.write(f"CannotStartContainerError: the task's sandbox: {err}\n")
        finally:
            os._exit(code)
    while True:
        try:
            _, status = os.waitpid(first, 0)
            return _status(status)
        except ChildProcessError:
            return CANNOT_RUN


def probe() -> str | None:
    """Why tasks cannot be walled in on this machine, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"{sys.platform} has no Linux namespaces"
    pid = os.fork()
    if pid == 0:
        try:
            enter()
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            _mount("none", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
        except (OSError, SandboxError):
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if _status(status) != 0:
        return "the kernel refuses user and mount namespaces to this user (kernel.unprivileged_userns_clone, or an AppArmor restriction)"
    return None


USAGE = (
    "usage: python -m runner.emulator.sandbox --workdir DIR [--keep DIR] [--hide DIR]... "
    "[--expose DIR]... [--user UID:GID] -- COMMAND..."
)


def parse(argv: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """``--name VALUE`` pairs (repeatable) up to ``--``, then the command (the emulator builds
    these arguments: ``runner.emulator.executor.Walls.command``)."""
    options: dict[str, list[str]] = {"workdir": [], "keep": [], "hide": [], "expose": [], "user": []}
    args = list(argv)
    while args and args[0] != "--":
        name = args.pop(0).removeprefix("--")
        if name not in options or not args:
            raise SystemExit(USAGE)
        options[name].append(args.pop(0))
    command = args[1:]
    if len(options["workdir"]) != 1 or not command:
        raise SystemExit(USAGE)
    return options, command


def main(argv: Sequence[str] | None = None) -> int:
    options, command = parse(sys.argv[1:] if argv is None else argv)
    user = tuple(int(part) for part in options["user"][0].split(":")) if options["user"] else None
    return sandboxed(
        command,
        workdir=options["workdir"][0],
        hide=options["hide"],
        keep=options["keep"],
        expose=options["expose"],
        user=user,  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    sys.exit(main())
