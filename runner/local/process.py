"""Run moto's server as a background process on the loopback interface, by pid file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from runner.aws.clients import AwsTarget, aws_errors, is_loopback
from runner.aws.stack_outputs import StackOutputs
from runner.emulator_wire import IDENTITY_HEADER
from runner.errors import RunnerError
from runner.local.state import JOINED, LocalState, ServerInfo

LOOPBACK = "127.0.0.1"
# AWS-managed policies exist, so the instance role's attachment resolves. moto's config API does
# not take this one; the environment does. Stock AMIs are never used and slow every EC2 backend.
EMULATOR_ENV = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
EMULATOR_MODULE = "runner.emulator.server"
# The moto release the emulator is built and tested on (pyproject's `local` extra pins it).
TESTED_MOTO = "5.2.5"
START_TIMEOUT = 60.0
# The emulator saves everything it holds as it stops: a large stack takes seconds to write.
STOP_TIMEOUT = 60.0
PORT_SETTLE = 2.0  # seconds the port a killed emulator had may take to be free again
# Servers this process started: the emulator outlives `runner local up` by design, so the Popen
# objects are kept (not garbage-collected as "still running") and reaped if we stop them.
_STARTED: dict[int, subprocess.Popen] = {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether something listens on the port. Connections of an emulator just stopped, waiting
    out TIME_WAIT, do not count: the server binds with SO_REUSEADDR, and so does this check."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def port_frees(port: int, within: float = PORT_SETTLE, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Whether the port is free, or frees within ``within`` seconds: the listening socket of an
    emulator that was just killed outlives its process for a moment."""
    deadline = time.monotonic() + within
    while port_in_use(port):
        if time.monotonic() >= deadline:
            return False
        sleep(0.05)
    return True


def is_alive(pid: int) -> bool:
    """True for a running process (not a zombie); reaps it if it is our own exited child."""
    if pid in _STARTED:
        return _STARTED[pid].poll() is None
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: the normal case once `runner local up` has exited
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def is_emulator(pid: int) -> bool:
    """Guard against a recycled pid: only an emulator process is ever signalled."""
    try:
        return EMULATOR_MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return is_alive(pid)  # no /proc (macOS): trust the pid file


def warm_up(endpoint_url: str, credentials: tuple[str, str] | None = None) -> None:
    """Build moto's backends one at a time before anything else calls.

    The Pulumi engine creates resources from several threads; moto builds a service's backend on
    its first request (IAM loads every managed policy), and concurrent first requests can race
    into a 500. One call per service, in turn, avoids it.
    """
    target = AwsTarget("us-east-1", endpoint_url, credentials)
    with aws_errors():
        target.client("sts").get_caller_identity()
        target.client("iam").list_roles(MaxItems=1)
        target.client("ec2").describe_vpcs()
        target.client("logs").describe_log_groups(limit=1)
        target.client("batch").describe_compute_environments()


def responds(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/config", timeout=2) as response:
            return response.status < 500
    except (urllib.error.URLError, OSError):
        return False


def running_server(state: LocalState) -> ServerInfo | None:
    """The recorded server if it is alive; a stale record is removed."""
    info = state.server()
    if info is None:
        return None
    if info.pid == JOINED:  # another user's emulator on this machine: alive while it answers
        return info if responds(info.endpoint_url) else None
    if is_alive(info.pid) and is_emulator(info.pid):
        return info
    state.clear_server()
    return None


@dataclass(frozen=True)
class ExecutorOptions:
    """How the emulator runs tasks; None keeps the default (or what a running emulator has)."""

    slots: int | None = None
    spot_interruptions: float | None = None
    seed: int | None = None


def start_server(
    state: LocalState,
    port: int | None = None,
    options: ExecutorOptions = ExecutorOptions(),
    *,
    sleep: Callable[[float], None] = time.sleep,
    persist: bool = True,
) -> tuple[ServerInfo, bool]:
    """Start the emulator (or reuse the running one). Returns its info and whether it was started.

    ``persist=False`` (the benchmark's comparison only) keeps nothing across restarts."""
    existing = running_server(state)
    if existing is not None:
        if port is not None and port != existing.port:
            raise RunnerError(
                f"the emulator already runs on port {existing.port}; stop it with `runner local down` "
                "or omit --port"
            )
        for name, asked, running in (
            ("--slots", options.slots, existing.slots),
            ("--spot-interruptions", options.spot_interruptions, existing.spot_interruptions),
            ("--seed", options.seed, existing.seed),
        ):
            if asked is not None and asked != running:
                raise RunnerError(
                    f"the emulator already runs with {name} {running}; `runner local down` first to change it"
                )
        return existing, False

    check_moto()
    slots = options.slots or os.cpu_count() or 1
    rate = options.spot_interruptions or 0.0
    state.credentials()  # made before the emulator reads them
    identity = state.identity()
    if port is None:
        # The port it had, if it is free: the endpoint teammates and scripts were given stays good.
        port = identity.port if identity.port and port_frees(identity.port) else free_port()
    if port_in_use(port):
        raise RunnerError(f"port {port} on {LOOPBACK} is in use; pick another with --port")
    state.root.mkdir(parents=True, exist_ok=True)
    state.restored_file.unlink(missing_ok=True)
    endpoint = f"http://{LOOPBACK}:{port}"
    seed = ["--seed", str(options.seed)] if options.seed is not None else []
    command = [
        sys.executable,
        "-m",
        EMULATOR_MODULE,
        "--port",
        str(port),
        "--slots",
        str(slots),
        "--spot-interruptions",
        str(rate),
        "--work-dir",
        str(state.work_dir),
        "--isolation-file",
        str(state.isolation_file),
        "--credentials",
        str(state.credentials_file),
        *(["--snapshot", str(state.snapshot_file)] if persist else []),
        "--restored-file",
        str(state.restored_file),
        "--identity",
        identity.id,
        *seed,
    ]
    with state.log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **EMULATOR_ENV},
            start_new_session=True,  # Ctrl-C in the terminal must not take the emulator down
        )
    _STARTED[process.pid] = process
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not responds(endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = state.log_file.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise RunnerError(f"the emulator did not start ({tail[0]}); see {state.log_file}")
            sleep(0.1)
        warm_up(endpoint, state.credentials())
        info = ServerInfo(
            pid=process.pid,
            port=port,
            endpoint_url=endpoint,
            log_file=str(state.log_file),
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            slots=slots,
            spot_interruptions=rate,
            seed=options.seed,
        )
    except BaseException:
        # Failed or interrupted (Ctrl-C) before it was recorded: leave no emulator behind.
        _terminate(process.pid)
        raise
    state.save_server(info)
    state.prefer_port(port)
    return info, True


def check_moto(version: Callable[[str], str] | None = None) -> None:
    """The emulator runs on moto's internals: refuse, in one line, a moto it was not tested with."""
    from importlib import metadata

    try:
        installed = (version or metadata.version)("moto")
    except metadata.PackageNotFoundError:
        installed = None
    if installed != TESTED_MOTO:
        found = f"moto {installed} is installed" if installed else "moto is not installed"
        raise RunnerError(
            f"{found}; the emulator needs moto {TESTED_MOTO}: pip install 'batch-stacks[local]' "
            f"(or 'moto[server]=={TESTED_MOTO}')"
        )


def _terminate(pid: int, *, sleep: Callable[[float], None] = time.sleep) -> None:
    """SIGTERM, then SIGKILL after ``STOP_TIMEOUT``; returns once the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while is_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
        sleep(0.05)


def stop_server(state: LocalState, *, sleep: Callable[[float], None] = time.sleep) -> ServerInfo | None:
    """Stop the recorded emulator by its pid; None if none was running."""
    info = running_server(state)
    if info is None:
        return None
    if info.pid != JOINED:
        # It saves everything it holds as it stops (its data folder keeps it for the next start).
        _terminate(info.pid, sleep=sleep)
        # Every task is stopped with it: what their attempts left in their folders goes too.
        shutil.rmtree(state.work_dir, ignore_errors=True)
    else:  # a joined emulator is its owner's to stop: this only leaves it, and forgets its stacks
        for stack in state.deployed_stacks():
            state.forget_stack(stack)
    state.clear_server()
    return info


def identity_at(endpoint_url: str) -> str | None:
    """Which local stack the emulator at ``endpoint_url`` is (every answer names it); None when
    nothing answers there, or something that is not an emulator of batch-stacks."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/config", timeout=2) as response:
            return response.headers.get(IDENTITY_HEADER) or None
    except urllib.error.HTTPError as err:
        return err.headers.get(IDENTITY_HEADER) or None
    except (urllib.error.URLError, OSError):
        return None


def join_server(
    state: LocalState, endpoint_url: str, keys: tuple[str, str], stacks: dict[str, StackOutputs]
) -> ServerInfo:
    """Use the emulator another user of this machine runs, with the keys its owner made for you
    (an IAM user of the emulator) and the outputs of the stacks deployed in it."""
    if not is_loopback(endpoint_url) or not responds(endpoint_url):
        raise RunnerError(f"no emulator answers at {endpoint_url}; ask its owner for `runner local status`")
    if running_server(state) is not None:
        raise RunnerError("an emulator is already in use from this state folder; `runner local down` first")
    state.save_keys(keys)
    info = ServerInfo(
        JOINED,
        int(urlparse(endpoint_url).port or 0),
        endpoint_url,
        "",
        datetime.now(timezone.utc).isoformat(),
    )
    state.save_server(info)
    for stack, outputs in stacks.items():
        state.save_stack_outputs(stack, outputs)
    return info
