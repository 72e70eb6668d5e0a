"""Where the local emulator keeps its lock, pid, endpoint, data and each locally deployed stack.

Files under ``<state dir>/local``: ``lock`` (held by whoever starts, deploys into or stops the
emulator, so there is one emulator per state directory), ``server.json`` (while it runs),
``identity.json`` (which local stack this is, for good, and the port it prefers), ``data/`` (what
the emulator holds, kept across restarts: ``runner local reset`` wipes it) and, per stack,
``stacks/<stack>.json`` (its outputs) and ``stacks/<stack>.deploy.json`` (what was created, and
from which stack file and program, so a second ``local up`` can keep or replace it).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, overload

from runner.aws.stack_outputs import StackOutputs, parse_outputs
from runner.errors import RunnerError
from runner.json_files import JsonFileError, read_json, write_json

LOCK_TIMEOUT = 180.0


# The pid recorded for an emulator another user of this machine runs (``runner local join``).
JOINED = 0


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    port: int
    endpoint_url: str
    log_file: str
    started_at: str
    slots: int = 1
    spot_interruptions: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class Deployment:
    """What ``local up`` created for a stack: (type, physical id) in creation order."""

    fingerprint: str
    created: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Isolation:
    """Whether the running emulator walls its tasks in, as it found at start (``isolation.json``)."""

    isolated: bool
    why: str | None = None  # why not
    root: bool = False  # the emulator runs as root: tasks run as the definition's user

    def describe(self) -> str:
        """One sentence for ``local up`` and ``local status``."""
        if not self.isolated:
            return (
                f"Warning: tasks are NOT isolated ({self.why}): they run as you, and can read your files "
                "and the emulator's keys."
            )
        who = "as the job definition's user" if self.root else "as you, with no privileges"
        return (
            f"Each task runs {who} in namespaces of its own: your HOME and the emulator's state are "
            "out of sight, /tmp and /proc are its own."
        )


@dataclass(frozen=True)
class Identity:
    """Which local stack a state folder holds: an id made once (a reset makes a new one), which
    its emulator names in every answer and every run it ran records, and the port it prefers."""

    id: str
    port: int | None = None


@dataclass(frozen=True)
class Restored:
    """What the emulator found in its data folder at start (``restored.json``)."""

    backends: int
    size: int
    seconds: float
    error: str | None
    set_aside: str | None
    orphans_stopped: int
    jobs_lost_host: int

    def describe(self) -> str | None:
        """One or two sentences for ``local up``; None when there was nothing to restore."""
        if self.error:
            return (
                f"Warning: the emulator's saved state could not be loaded ({self.error}); it was set aside "
                f"as {self.set_aside} and the emulator started empty."
            )
        if not self.backends:
            return None
        said = f"Restored the local stack's state ({self.size / 1e6:.1f} MB in {self.seconds:.1f} s)."
        if self.jobs_lost_host:
            said += (
                f" {self.jobs_lost_host} task(s) running when it stopped lost their host, as on AWS: "
                "retried where their retry strategy allows, else failed"
                + (
                    f"; {self.orphans_stopped} left-over process group(s) stopped."
                    if self.orphans_stopped
                    else "."
                )
            )
        return said


class LocalStateError(RunnerError):
    """A file of the emulator's state cannot be read."""


class LocalState:
    def __init__(self, root: Path) -> None:
        self.root = root / "local"

    @property
    def server_file(self) -> Path:
        return self.root / "server.json"

    @property
    def log_file(self) -> Path:
        return self.root / "moto.log"

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def data_dir(self) -> Path:
        """What the emulator holds (``--data-dir``), kept across restarts."""
        return self.root / "data"

    @property
    def snapshot_file(self) -> Path:
        """Everything the emulator holds, as its last snapshot (``--snapshot``)."""
        return self.data_dir / "emulator.snapshot"

    @property
    def identity_file(self) -> Path:
        return self.root / "identity.json"

    @property
    def restored_file(self) -> Path:
        """Where the emulator says what it restored at start (``--restored-file``)."""
        return self.root / "restored.json"

    @overload
    def identity(self) -> Identity: ...
    @overload
    def identity(self, *, create: Literal[False]) -> Identity | None: ...
    def identity(self, *, create: bool = True) -> Identity | None:
        """This local stack's identity, made on first use (unless ``create`` is False)."""
        try:
            raw = self._read(self.identity_file, "delete it; earlier local runs will no longer be found")
        except FileNotFoundError:
            if not create:
                return None
            identity = Identity("ls-" + secrets.token_hex(8))
            write_json(self.identity_file, asdict(identity))
            return identity
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise LocalStateError(
                f"{self.identity_file} does not name a local stack; delete it (earlier local runs will "
                "no longer be found)"
            )
        port = raw.get("port")
        return Identity(raw["id"], port if isinstance(port, int) else None)

    def prefer_port(self, port: int) -> None:
        """The port the emulator runs on, to be taken again at the next start if it is free."""
        write_json(self.identity_file, asdict(Identity(self.identity().id, port)))

    def restored(self) -> Restored | None:
        try:
            raw = json.loads(self.restored_file.read_text())
            return Restored(
                int(raw["backends"]),
                int(raw["bytes"]),
                float(raw["seconds"]),
                raw.get("error") if isinstance(raw.get("error"), str) else None,
                raw.get("setAside") if isinstance(raw.get("setAside"), str) else None,
                int(raw.get("orphansStopped") or 0),
                int(raw.get("jobsLostHost") or 0),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def wipe(self) -> None:
        """Everything the local stack holds, and its identity: a new one is made at the next start."""
        import shutil

        for folder in (self.data_dir, self.work_dir, self.root / "stacks"):
            shutil.rmtree(folder, ignore_errors=True)
        for path in (self.identity_file, self.restored_file):
            path.unlink(missing_ok=True)

    @property
    def isolation_file(self) -> Path:
        """Where the emulator says, at start, whether it walls its tasks in (``--isolation-file``)."""
        return self.root / "isolation.json"

    def isolation(self) -> Isolation | None:
        """What the running emulator found; None before it wrote it (or if it cannot be read)."""
        try:
            raw = json.loads(self.isolation_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("isolated"), bool):
            return None
        why = raw.get("why") if isinstance(raw.get("why"), str) else None
        return Isolation(raw["isolated"], why, raw.get("root") is True)

    def credentials(self) -> tuple[str, str]:
        """The emulator's access key pair, made on first use, readable by its owner only."""
        path = self.credentials_file
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            keys = {
                "accessKeyId": "LKIA" + secrets.token_hex(8).upper(),
                "secretAccessKey": secrets.token_urlsafe(30),
            }
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                json.dump(keys, out)
        raw = self._read(path, "delete it; `runner local up` makes new keys")
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("accessKeyId"), str)
            or not isinstance(raw.get("secretAccessKey"), str)
        ):
            raise LocalStateError(
                f"{path} does not hold the emulator's keys; delete it and run `runner local up`"
            )
        if path.stat().st_mode & 0o077:
            raise LocalStateError(f"{path} is readable by others; `chmod 600 {path}` (or delete it)")
        return raw["accessKeyId"], raw["secretAccessKey"]

    def stack_file(self, stack: str) -> Path:
        return self.root / "stacks" / f"{stack}.json"

    def deployment_file(self, stack: str) -> Path:
        return self.root / "stacks" / f"{stack}.deploy.json"

    @contextmanager
    def lock(
        self, *, timeout: float = LOCK_TIMEOUT, sleep: Callable[[float], None] = time.sleep
    ) -> Iterator[None]:
        """Exclusive use of the emulator's state; a second ``local up`` waits for the first."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RunnerError(
                            f"another `runner local` command has held {self.lock_file} for {timeout:.0f} s; "
                            "wait for it to finish, or stop it"
                        ) from None
                    sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, path: Path, fix: str) -> Any:
        try:
            return read_json(path, fix)
        except JsonFileError as err:
            raise LocalStateError(str(err)) from None

    def save_keys(self, keys: tuple[str, str]) -> None:
        """The keys this state signs with (``runner local join``: those the emulator's owner made
        for you), readable by you only."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.credentials_file.unlink(missing_ok=True)
        descriptor = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump({"accessKeyId": keys[0], "secretAccessKey": keys[1]}, out)

    def save_stack_outputs(self, stack: str, outputs: StackOutputs) -> None:
        """A stack deployed in a joined emulator: its outputs only (its owner deployed it)."""
        write_json(self.stack_file(stack), outputs.to_json())

    def save_server(self, info: ServerInfo) -> None:
        write_json(self.server_file, asdict(info))

    def server(self) -> ServerInfo | None:
        fix = "stop any emulator left running (`pkill -f runner.emulator.server`) and delete the file"
        try:
            raw = self._read(self.server_file, fix)
        except FileNotFoundError:
            return None
        required = {"pid": int, "port": int, "endpoint_url": str, "log_file": str, "started_at": str}
        optional = {"slots": int, "spot_interruptions": (int, float), "seed": (int, type(None))}
        valid = isinstance(raw, dict) and all(isinstance(raw.get(k), t) for k, t in required.items())
        if not valid or not all(isinstance(raw[k], t) for k, t in optional.items() if k in raw):
            raise LocalStateError(f"{self.server_file} does not describe an emulator; {fix}")
        names = {f.name for f in fields(ServerInfo)}
        return ServerInfo(**{k: v for k, v in raw.items() if k in names})

    def clear_server(self) -> None:
        """The emulator stopped: its stacks stay (its data folder keeps them for the next start)."""
        self.server_file.unlink(missing_ok=True)

    def save_stack(self, stack: str, outputs: StackOutputs, deployment: Deployment) -> None:
        write_json(self.deployment_file(stack), asdict(deployment))
        write_json(self.stack_file(stack), outputs.to_json())

    def forget_stack(self, stack: str) -> None:
        self.stack_file(stack).unlink(missing_ok=True)
        self.deployment_file(stack).unlink(missing_ok=True)

    def deployed_stacks(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "stacks").glob("*.json") if not p.stem.endswith(".deploy"))

    def deployment(self, stack: str) -> Deployment | None:
        """What was created for ``stack``; None when unknown (then it cannot be kept or replaced)."""
        try:
            raw = self._read(self.deployment_file(stack), "run `runner local down` and `runner local up`")
        except FileNotFoundError:
            return None
        try:
            return Deployment(str(raw["fingerprint"]), [(str(t), str(i)) for t, i in raw["created"]])
        except (KeyError, TypeError, ValueError):
            raise LocalStateError(
                f"{self.deployment_file(stack)} does not describe a deployment; "
                "run `runner local down` and `runner local up`"
            ) from None

    def outputs(self, stack: str) -> StackOutputs:
        path = self.stack_file(stack)
        try:
            raw = self._read(path, f"deploy it again with `runner local up --stack {stack}`")
        except FileNotFoundError:
            deployed = ", ".join(self.deployed_stacks()) or "none"
            raise RunnerError(
                f"stack '{stack}' is not deployed locally (deployed: {deployed}); "
                f"run `runner local up --stack {stack}`"
            ) from None
        return parse_outputs(stack, raw, str(path))
