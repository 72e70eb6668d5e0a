"""The emulator's state on disk: every moto backend in use, as one consistent snapshot.

Everything the local stack holds lives in moto's backends (S3 objects with their metadata and
ETags, IAM users, roles and keys, STS sessions, EC2, Batch compute environments, queues,
definitions and jobs with their attempts, CloudWatch log events). ``Snapshots`` pickles them all in
one pass, so references between services survive (a job's log backend is the Logs backend), while
no request is being served and the executor is between ticks: a snapshot is a moment of the
emulator, never half a request. It is written beside the last one and renamed over it after an
fsync, so a kill at any moment leaves the previous snapshot or the new one, whole.

A change (any request but a read, or a job moving on) schedules a snapshot ``DELAY`` seconds later;
the changes of that interval go into one. What a ``kill -9`` (or a power cut) can lose is what was
acknowledged after the last snapshot began: at most ``DELAY`` plus the time one snapshot takes,
and one snapshot waits at least ``DUTY`` times as long as the last one held the emulator, so
saving never takes more than a fifth of its time. A stop by SIGTERM (``runner local down``) saves
everything.

Only this user's own snapshot is ever loaded: unpickling runs code, so a file another user could
have written is refused.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import pickle
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.batch.models import Job
from moto.core.base_backend import BackendDict, BaseBackend
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy

from runner.emulator_wire import IDENTITY_HEADER

# What a restart must not depend on: thread state, which ``threading.Thread.__init__`` rebuilds.
_THREAD_ATTRIBUTES = frozenset(threading.Thread(target=None).__dict__)
FORMAT = 1
DELAY = 0.2  # seconds from a change to the snapshot that holds it
DUTY = 4.0  # the pause after a snapshot, as a multiple of how long it held the emulator


class SnapshotError(Exception):
    """A snapshot that cannot be loaded (damaged, from another moto, or not this user's)."""


def _rebuild_job(cls: type, state: dict[str, Any]) -> Job:
    job = cls.__new__(cls)
    threading.Thread.__init__(job, name=state.get("name") or "MOTO-BATCH", daemon=True)
    job.__dict__.update(state)
    return job


def _reduce_job(job: Job) -> tuple[Callable[..., Job], tuple[type, dict[str, Any]]]:
    """A Batch job is a ``threading.Thread`` in moto (locks cannot be pickled): its own fields only."""
    state = {k: v for k, v in job.__dict__.items() if k not in _THREAD_ATTRIBUTES}
    state["name"] = job.name
    return _rebuild_job, (type(job), state)


def _delegate(cls: type, account_id: str, region_name: str) -> Any:
    """The live wrapper backend of ``cls`` for an account and region (see ``_delegates``)."""
    module = sys.modules[cls.__module__]
    backends = next(v for v in vars(module).values() if isinstance(v, BackendDict) and v.backend is cls)
    return backends[account_id][region_name]


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Job):
            return _reduce_job(obj)
        if isinstance(obj, BaseBackend) and _delegates(type(obj)):  # a job's back-reference to it
            return _delegate, (type(obj), obj.account_id, obj.region_name)
        return NotImplemented

    def persistent_id(self, obj: Any) -> Any:
        # AWS's managed policies (over a thousand per partition, 24 MB) are moto's data, not the
        # stack's: a snapshot names them, and how many attachments each has.
        if isinstance(obj, AWSManagedPolicy):
            return ("aws-managed-policy", obj.account_id, obj.partition, obj.arn, obj.attachment_count)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self._policies: dict[tuple[str, str], dict[str, AWSManagedPolicy]] = {}

    def persistent_load(self, pid: Any) -> Any:
        kind, account, partition, arn, attachments = pid
        if kind != "aws-managed-policy":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        if (account, partition) not in self._policies:
            self._policies[account, partition] = {
                policy.arn: policy
                for policy in (
                    AWSManagedPolicy.from_data(name, account, partition, document)
                    for name, document in _aws_policies().items()
                )
            }
        policy = self._policies[account, partition].get(arn)
        if policy is None:
            raise pickle.UnpicklingError(f"moto no longer has the AWS managed policy {arn}")
        policy.attachment_count = attachments
        return policy


@functools.cache
def _aws_policies() -> dict[str, Any]:
    return json.loads(aws_managed_policies_data)


@dataclass(frozen=True)
class Where:
    """A module-level ``BackendDict`` by its module and name, so a loaded snapshot refills the very
    dictionaries moto's responses read."""

    module: str
    name: str

    def backends(self) -> BackendDict:
        found = getattr(importlib.import_module(self.module), self.name)
        assert isinstance(found, BackendDict)
        return found


def _delegates(backend: type) -> bool:
    """Whether a backend class hands every attribute to another backend (moto's ``batch_simple``,
    the emulator's own Batch): it holds nothing of its own to save."""
    return any("__getattribute__" in vars(cls) for cls in backend.__mro__ if cls is not object)


def backends_in_use() -> dict[Where, BackendDict]:
    """Every moto ``BackendDict`` a request has reached that holds state, by where it is declared."""
    found: dict[Where, BackendDict] = {}
    for backends in list(BackendDict._instances):
        if not len(backends) or _delegates(backends.backend):
            continue
        module = sys.modules.get(backends.backend.__module__)
        names = [n for n, v in vars(module or object()).items() if v is backends]
        if module is None or not names:
            continue
        found[Where(module.__name__, names[0])] = backends
    return found


def dump(backends: dict[Where, BackendDict]) -> bytes:
    """Every backend of ``backends`` as one pickle: (account, region) -> backend, per dictionary."""
    payload = {
        where: {account: dict(regions) for account, regions in by_account.items()}
        for where, by_account in backends.items()
    }
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump({"format": FORMAT, "backends": payload})
    return buffer.getvalue()


def load(data: bytes) -> int:
    """Put a snapshot's backends in place of moto's; returns how many it held."""
    try:
        snapshot = _Unpickler(data).load()
    except Exception as err:  # any unpickling failure: damaged, or another moto's classes
        raise SnapshotError(f"{type(err).__name__}: {err}") from None
    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        raise SnapshotError("it is not a snapshot of this version of the emulator")
    count = 0
    for where, by_account in snapshot["backends"].items():
        target = where.backends()
        for account, regions in by_account.items():
            holder = target[account]  # moto makes the account's dictionary
            for region, backend in regions.items():
                dict.__setitem__(holder, region, backend)
                count += 1
    return count


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path``, or the previous file untouched: written aside, synced, renamed over."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_own(path: Path) -> bytes | None:
    """The snapshot's bytes; None when there is none. Refused when another user could have
    written it (loading a pickle runs its code)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    if status.st_uid != os.getuid() or status.st_mode & 0o022:
        raise SnapshotError(f"{path} is not yours alone (owner uid {status.st_uid}, mode {status.st_mode:o})")
    parent = path.parent.stat()
    if parent.st_uid != os.getuid() or parent.st_mode & 0o022:
        raise SnapshotError(f"{path.parent} may be written by others")
    return path.read_bytes()


class Gate:
    """Requests share the emulator; a snapshot has it alone (requests in flight finish first, new
    ones wait)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._serving = 0
        self._exclusive = False

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        with self._condition:
            while self._exclusive:
                self._condition.wait()
            self._serving += 1
        try:
            yield
        finally:
            with self._condition:
                self._serving -= 1
                if not self._serving:
                    self._condition.notify_all()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        with self._condition:
            while self._exclusive:
                self._condition.wait()
            self._exclusive = True  # new requests wait from here
            while self._serving:
                self._condition.wait()
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


@dataclass
class Saved:
    """What the last snapshot took: bytes, seconds the emulator waited for it, seconds to disk."""

    size: int = 0
    held: float = 0.0
    written: float = 0.0
    count: int = 0


class Snapshots:
    """Saves the emulator's backends at ``path`` after each change (see the module's docstring)."""

    def __init__(
        self,
        path: Path,
        gate: Gate,
        executor_lock: threading.RLock,
        *,
        delay: float = DELAY,
    ) -> None:
        self.path = path
        self.gate = gate
        self.executor_lock = executor_lock
        self.delay = delay
        self.saved = Saved()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="snapshots", daemon=True)

    def changed(self) -> None:
        self._changed.set()

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._changed.wait(0.5):
                continue
            time.sleep(self.delay)  # the changes of this interval go into one snapshot
            if self._stop.is_set():
                return
            self._changed.clear()
            try:
                self.save()
            except Exception as err:  # a full disk: say so in the log, and try again at the next change
                print(f"the emulator could not save its state to {self.path}: {err}", file=sys.stderr)
            time.sleep(self.saved.held * DUTY)

    def save(self) -> Saved:
        """One snapshot, now: taken while nothing else runs, written while requests go on."""
        with self._write_lock:
            began = time.monotonic()
            with self.gate.alone(), self.executor_lock:
                data = dump(backends_in_use())
            held = time.monotonic() - began
            write_atomically(self.path, data)
            self.saved = Saved(len(data), held, time.monotonic() - began - held, self.saved.count + 1)
            return self.saved

    def stop(self) -> None:
        """No more background snapshots, and one last one of everything."""
        self._stop.set()
        self._changed.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        self.save()


@dataclass
class Restored:
    """What the emulator found in its data folder at start."""

    backends: int = 0
    size: int = 0
    seconds: float = 0.0
    error: str | None = None  # the snapshot could not be loaded: it was set aside, and this is why
    set_aside: str | None = None
    orphans_stopped: int = 0
    jobs_lost_host: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "backends": self.backends,
            "bytes": self.size,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "setAside": self.set_aside,
            "orphansStopped": self.orphans_stopped,
            "jobsLostHost": self.jobs_lost_host,
        }


def restore(path: Path) -> Restored:
    """Load the snapshot at ``path`` into moto, if there is one. One that cannot be loaded is set
    aside (renamed, never deleted) and the emulator starts empty, saying why."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    began = time.monotonic()
    try:
        data = read_own(path)
        if data is None:
            return Restored()
        count = load(data)
    except SnapshotError as err:
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        return Restored(error=str(err), set_aside=str(aside))
    return Restored(count, len(data), time.monotonic() - began)


# Operations that only read: S3's (and any REST API's) GET and HEAD, Batch's Describe and List,
# and the JSON protocols' Describe, List and Get (by X-Amz-Target). Anything else may change state.
_READ_TARGET = re.compile(r"\.(Describe|List|Get|Filter)[A-Za-z]*$")
_READ_BATCH = re.compile(r"^/v1/(describe|list)[a-z]*$")


def is_read(environ: dict[str, Any]) -> bool:
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return True
    if _READ_BATCH.match(environ.get("PATH_INFO") or ""):
        return True
    return bool(_READ_TARGET.search(environ.get("HTTP_X_AMZ_TARGET") or ""))


def serving(
    app: Callable[..., Any], gate: Gate, changed: Callable[[], None] | None, identity: str
) -> Callable[..., Any]:
    """``app`` with each request inside ``gate`` (never during a snapshot), a snapshot scheduled
    after each one that may have changed something, and the emulator's identity on every answer."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*headers, (IDENTITY_HEADER, identity)], *exc_info)

        with gate.request():
            # moto builds each answer whole: it is done with the backends when this returns.
            answer = app(environ, start)
            try:
                result = list(answer)
            finally:
                if hasattr(answer, "close"):
                    answer.close()
        if changed is not None and not is_read(environ):
            changed()
        return result

    return wsgi
