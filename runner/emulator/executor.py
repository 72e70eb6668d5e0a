"""Runs each Batch job of the emulator as a local process, with AWS Batch's semantics.

``Executor`` (fed by ``runner.emulator.backend``) moves it through SUBMITTED -> PENDING ->
RUNNABLE -> STARTING -> RUNNING -> SUCCEEDED/FAILED, within the compute environment's maxVcpus and
the local slots; runs its command with Batch's environment in a fresh directory per attempt;
reports exit codes, OOM kills, timeouts and (on demand) Spot reclaims as Batch does; applies the
retry strategy; and writes each attempt's output to the CloudWatch stream Batch would use.
The image is not pulled: the command runs on this machine, inside the walls ``sandbox`` builds
(its own folder, /tmp and /proc; the owner's HOME and the emulator's state out of sight; no
capabilities, as the definition's ``user`` when the emulator runs as root) where the kernel allows.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
from moto.batch.models import Job
from moto.core.utils import unix_time_millis

from runner.emulator import sandbox
from runner.emulator.task_identity import TaskIdentity

TICK = 0.01  # how soon an exited task is noticed and its slot refilled
MEMORY_EVERY = 0.1  # seconds between reads of a task's memory (each walks /proc: not every tick)
HOST_RECLAIMED = "Host EC2 (instance i-{}) terminated."
FARGATE_SPOT = "Your Spot Task was interrupted."
EXITED = "Essential container in task exited"
OOM = "OutOfMemoryError: Container killed due to memory usage"
TIMED_OUT = "Job attempt duration exceeded timeout"
DEPENDENCY_FAILED = "Dependent Job failed"
EMULATOR_ERROR = "The emulator could not run this job"
RESOURCE_MISFIT = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory) is "
    "higher than that can be met by the CE(s) attached to the job queue."
)
# What an instance family's largest size offers, for "can this ever be placed".
MAX_MEMORY_PER_VCPU_MIB = 8 * 1024
# What a task gets of the emulator's own environment: PATH, so a command is found as in the shell
# that started the emulator (the image's PATH on AWS), and LANG, so text is decoded the same way.
# Nothing else: no keys, no AWS_PROFILE, no HOME of the owner's.
HOST_VARIABLES = ("PATH", "LANG")
ACCOUNT = "123456789012"
QUEUED = ("SUBMITTED", "PENDING", "RUNNABLE")
ACTIVE = ("STARTING", "RUNNING")
_REF = re.compile(r"Ref::([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class Compute:
    """Where a task runs: its queue's first compute environment, as the executor needs it."""

    name: str
    max_vcpus: int
    spot: bool
    fargate: bool
    environment: Any  # moto's ComputeEnvironment: its state is read at each placement

    @property
    def max_memory_mib(self) -> int:
        return self.max_vcpus * MAX_MEMORY_PER_VCPU_MIB


@dataclass(frozen=True)
class Walls:
    """How tasks are walled in (``runner.emulator.sandbox``): what they must not see, and what of
    it they run with (read-only)."""

    hide: tuple[Path, ...]
    expose: tuple[Path, ...]

    @classmethod
    def for_emulator(cls, work_dir: Path) -> Walls:
        """The owner's HOME and the emulator's state folder hidden; the Python the emulator runs
        on, and the PATH tasks get, visible."""
        python = Path(sys.executable)
        expose = [python.parent, python.resolve().parent, Path(sys.prefix), Path(sys.base_prefix)]
        expose += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
        hide = [Path.home(), work_dir.resolve().parents[1]]
        # A HOME of "/" (a service account's) would hide the whole machine: hide the state only.
        return cls(tuple(p for p in hide if p.resolve() != Path("/")), tuple(expose))

    def command(self, command: list[str], workdir: Path, user: tuple[int, int] | None) -> list[str]:
        """``command`` as started through the sandbox."""
        wrapped = [
            sys.executable,
            "-I",
            "-S",
            sandbox.__file__,
            "--workdir",
            str(workdir),
            "--keep",
            str(workdir),
        ]
        for path in self.hide:
            wrapped += ["--hide", str(path)]
        for path in self.expose:
            wrapped += ["--expose", str(path)]
        if user is not None:
            wrapped += ["--user", f"{user[0]}:{user[1]}"]
        return [*wrapped, "--", *command]


def run_as(name: str | None) -> tuple[int, int]:
    """The uid and gid a task runs as when the emulator runs as root: the job definition's
    ``user`` (a name or a number), else (or when this machine has no such user) nobody's."""
    import pwd

    for candidate in (name, "nobody"):
        if not candidate:
            continue
        if candidate.isdigit():
            return int(candidate), int(candidate)
        try:
            entry = pwd.getpwnam(candidate)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    return 65534, 65534


@dataclass(frozen=True)
class ExecutorSettings:
    slots: int
    work_dir: Path
    endpoint_url: str
    region: str
    spot_rate: float = 0.0
    seed: int | None = None
    min_timeout_seconds: int = 60
    stop_grace_seconds: float = 30.0
    # None: tasks run as plain processes of the owner (the kernel refused namespaces).
    walls: Walls | None = None


@dataclass
class Attempt:
    process: subprocess.Popen  # with walls: the sandbox, whose child (the namespace's init) runs the task
    number: int
    task_id: str
    started: float
    output: Path
    vcpus: int
    interrupt_at: float | None = None
    timeout_at: float | None = None
    stop_reason: str | None = None  # why the emulator is stopping it (OOM, timeout, reclaim, terminate)
    container_reason: str | None = None
    killed_at: float | None = None
    memory_read_at: float = float("-inf")


@dataclass
class Task:
    """A job the executor runs: a plain job or one array child."""

    job: Job
    compute: Compute
    vcpus: int
    memory_mib: int
    attempts_allowed: int
    exit_rules: list[dict[str, Any]]
    timeout: int | None
    unsupported: str | None = None  # why the emulator cannot run it: it fails at once, saying so
    attempt: Attempt | None = None
    cancel_reason: str | None = None
    terminate_reason: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def waits_for(job: Job) -> list[str]:
    """The jobs one job (or array child) waits for, by AWS Batch's dependency types.

    ``N_TO_N`` on an array job: child ``i`` waits for child ``i`` of the dependency only.
    ``SEQUENTIAL`` with no job id (or the array's own): child ``i`` waits for child ``i - 1``.
    Anything else waits for the whole job named (an array job ends when all its children have).
    """
    index = (job.array_properties or {}).get("index")
    parent = job.job_id.split(":")[0]
    ids = []
    for dependency in job.depends_on or []:
        kind, job_id = dependency.get("type"), dependency.get("jobId")
        if kind == "SEQUENTIAL" and job_id in (None, "", parent):
            if index is not None and index > 0:
                ids.append(f"{parent}:{index - 1}")
        elif kind == "N_TO_N" and index is not None and job_id and f"{job_id}:{index}" in job.all_jobs:
            ids.append(f"{job_id}:{index}")
        elif job_id:
            ids.append(job_id)
    return ids


def properties_user(job: Job) -> str | None:
    """The job definition's ``user`` (a container property), if any."""
    return (job.job_definition.container_properties or {}).get("user") or None


def exit_rule_action(
    rules: list[dict[str, Any]], status_reason: str, reason: str, exit_code: int | None
) -> str:
    """RETRY or EXIT by the first evaluateOnExit rule that matches (every given field must); none: RETRY."""
    for rule in rules:
        checks = [
            ("onStatusReason", status_reason),
            ("onReason", reason),
            ("onExitCode", "" if exit_code is None else str(exit_code)),
        ]
        if all(fnmatch.fnmatchcase(value, rule[key]) for key, value in checks if key in rule):
            return str(rule.get("action", "RETRY")).upper()
    return "RETRY"


PROCESS_FILE = "process.json"


def _write_process(home: Path, process: subprocess.Popen) -> None:
    """Which process an attempt is (its group's leader, and when it started), beside its folder,
    so an emulator that was killed can stop what it left running when it starts again."""
    try:
        started = psutil.Process(process.pid).create_time()
    except psutil.Error:
        return  # already gone
    (home / PROCESS_FILE).write_text(json.dumps({"pid": process.pid, "started": started}))


def stop_orphans(work_dir: Path) -> int:
    """Stop every task process a killed emulator left running (by the process files of its
    attempts' folders: the same pid and start time), then remove what the attempts left.
    Returns how many were stopped."""
    stopped = 0
    for path in work_dir.glob(f"*/*/{PROCESS_FILE}"):
        try:
            recorded = json.loads(path.read_text())
            leader = psutil.Process(int(recorded["pid"]))
            if abs(leader.create_time() - float(recorded["started"])) > 0.01:
                continue  # the pid was reused by another process
            members = [leader, *leader.children(recursive=True)]
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader.pid, signal.SIGKILL)
        for member in members:
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(members, timeout=5)
        stopped += 1
    if work_dir.exists():
        for entry in work_dir.iterdir():
            shutil.rmtree(entry, ignore_errors=True)
    return stopped


def task_memory_bytes(process: psutil.Process) -> int:
    """One process's share of the task's memory: its PSS (Linux), else its RSS."""
    try:
        return int(process.memory_full_info().pss)
    except (AttributeError, psutil.AccessDenied):
        return int(process.memory_info().rss)


class Executor:
    """Schedules and supervises every task of the emulator on one background thread.

    Tasks move through queues (arrivals, pending, runnable, running), so each tick touches the
    running tasks and only as many waiting ones as there are free slots: a slot freed by a task
    that exited is refilled in the same tick.
    """

    def __init__(self, settings: ExecutorSettings, identity: TaskIdentity | None = None) -> None:
        self.settings = settings
        # Serves each task its job role's keys and its metadata (None: tasks get neither).
        self.identity = identity
        self.tasks: dict[str, Task] = {}
        self.arrivals: list[Task] = []
        self.pending: list[Task] = []
        self.runnable: list[Task] = []
        self.running: list[Task] = []
        self.parents: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.random = random.Random(settings.seed)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batch-executor", daemon=True)
        # Called when a job moves on (the emulator's snapshots listen).
        self.changed: Callable[[], None] = lambda: None

    def start(self) -> None:
        self._thread.start()

    # --- Requests (from the server's threads) ---------------------------------------------------

    def add(self, task: Task) -> None:
        with self.lock:
            self.tasks[task.job.job_id] = task
            self.arrivals.append(task)
        self._wake.set()

    def add_parent(self, job: Job) -> None:
        with self.lock:
            self.parents[job.job_id] = job

    def resume(self, tasks: list[Task], parents: list[Job]) -> list[Task]:
        """The unfinished jobs of a restored emulator, handed back before it starts. Queued ones
        queue again. Those that were starting or running lost their host with the emulator: the
        attempt fails as AWS reports a terminated instance, and the retry strategy applies.
        Returns those."""
        lost = []
        with self.lock:
            for parent in parents:
                self.parents[parent.job_id] = parent
            for task in tasks:
                task.history = list(task.job.attempts or [])
                self.tasks[task.job.job_id] = task
                if task.job.status in ACTIVE:
                    lost.append(task)
                    self._lost_host(task)
                elif task.job.status in QUEUED:
                    task.job.status = "SUBMITTED"
                    self.arrivals.append(task)
        self._wake.set()
        return lost

    def _lost_host(self, task: Task) -> None:
        job = task.job
        reason = HOST_RECLAIMED.format(uuid.uuid4().hex[:17])
        task.history.append(
            {
                "container": {"networkInterfaces": []},
                "startedAt": int(unix_time_millis(job.job_started_at)),
                "stoppedAt": int(unix_time_millis()),
                "statusReason": reason,
            }
        )
        action = exit_rule_action(task.exit_rules, reason, "", None)
        if action == "RETRY" and len(task.history) < task.attempts_allowed:
            job.status = "RUNNABLE"
            job.attempts = list(task.history)
            self.runnable.append(task)
        else:
            self._finish(task, success=False, status_reason=reason)

    def cancel(self, job: Job, reason: str) -> None:
        """CancelJob: queued tasks fail with the reason at once; running ones carry on (as on AWS)."""
        with self.lock:
            for task in self._tasks_of(job):
                if task.job.status in QUEUED:
                    self._finish(task, success=False, status_reason=reason)
        self._wake.set()

    def terminate(self, job: Job, reason: str) -> None:
        """TerminateJob: queued tasks fail, running ones get SIGTERM, then SIGKILL."""
        with self.lock:
            for task in self._tasks_of(job):
                if task.job.status in QUEUED:
                    self._finish(task, success=False, status_reason=reason)
                elif task.job.status in ACTIVE:
                    task.terminate_reason = reason
        self._wake.set()

    def _tasks_of(self, job: Job) -> list[Task]:
        jobs = [job, *(job._child_jobs or [])]
        return [self.tasks[j.job_id] for j in jobs if j.job_id in self.tasks]

    # --- The loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                self.tick()
            self._wake.wait(TICK)
            self._wake.clear()

    def tick(self) -> None:
        now = time.monotonic()
        for task in list(self.running):
            self._guarded(task, self._supervise, task, now)
        self.running = [task for task in self.running if task.attempt is not None]
        self._admit()
        self._start_what_fits(now)

    def _guarded(self, task: Task, step: Callable[..., None], *args: Any) -> None:
        """One task's step; if it raises, that task fails (saying why) and the scheduler goes on."""
        try:
            step(*args)
        except Exception as err:
            traceback.print_exc()  # into the emulator's log
            if task.attempt is not None:
                self._signal(task.attempt.process, signal.SIGKILL)
                if self.identity is not None:
                    self.identity.close(task.attempt.task_id)
                task.attempt = None
            if task.job.status not in ("SUCCEEDED", "FAILED"):
                self._finish(
                    task, success=False, status_reason=f"{EMULATOR_ERROR}: {type(err).__name__}: {err}"
                )

    def _admit(self) -> None:
        """Arrivals become PENDING (waiting on dependsOn) or RUNNABLE; pending ones as they clear."""
        arrivals, self.arrivals = self.arrivals, []
        for task in arrivals:
            if task.job.status == "SUBMITTED":  # else cancelled while it waited
                self._guarded(task, self._arrive, task)
        still = []
        for task in self.pending:
            if task.job.status == "PENDING":
                self._guarded(task, self._check_dependencies, task)
            if task.job.status == "PENDING":
                still.append(task)
            elif task.job.status == "RUNNABLE":
                self.runnable.append(task)
        self.pending = still

    def _arrive(self, task: Task) -> None:
        if task.unsupported:
            self._finish(task, success=False, status_reason=task.unsupported)
        elif task.job.depends_on:
            task.job.status = "PENDING"
            self.pending.append(task)
        else:
            task.job.status = "RUNNABLE"
            self.runnable.append(task)
        self._touch_parent(task)

    def _start_what_fits(self, now: float) -> None:
        free_slots = self.settings.slots - len(self.running)
        used: dict[str, int] = {}
        for task in self.running:
            used[task.compute.name] = used.get(task.compute.name, 0) + task.vcpus
        waiting = []
        for position, task in enumerate(self.runnable):
            if task.job.status != "RUNNABLE":
                continue  # cancelled, or finished
            if free_slots <= 0:
                waiting.extend(self.runnable[position:])
                break
            if task.vcpus > task.compute.max_vcpus or task.memory_mib > task.compute.max_memory_mib:
                task.job.job_stopped_reason = RESOURCE_MISFIT  # stays RUNNABLE, as on AWS
                waiting.append(task)
                continue
            name = task.compute.name
            if task.job.job_queue.state != "ENABLED" or task.compute.environment.state != "ENABLED":
                waiting.append(task)  # a DISABLED queue or compute environment schedules nothing
                continue
            if used.get(name, 0) + task.vcpus > task.compute.max_vcpus:
                waiting.append(task)  # the compute environment is full: wait for capacity
                continue
            self._guarded(task, self._start, task, now)
            if task.attempt is not None:
                self.running.append(task)
                used[name] = used.get(name, 0) + task.vcpus
                free_slots -= 1
        self.runnable = waiting

    def _touch_parent(self, task: Task) -> None:
        """Keep an array parent's status current: PENDING while children run, then the outcome."""
        parent = self.parents.get(task.job.job_id.split(":")[0])
        if parent is None or parent.status in ("SUCCEEDED", "FAILED"):
            return
        if parent.status == "SUBMITTED":
            parent.status = "PENDING"
        if task.job.status in ("SUCCEEDED", "FAILED"):
            statuses = [child.status for child in parent._child_jobs or []]
            if all(s in ("SUCCEEDED", "FAILED") for s in statuses):
                parent.job_stopped = True
                parent.job_stopped_at = datetime.now()
                parent.status = "FAILED" if "FAILED" in statuses else "SUCCEEDED"

    def _check_dependencies(self, task: Task) -> None:
        """RUNNABLE once every job it waits for SUCCEEDED; FAILED as soon as one of them FAILED."""
        jobs = task.job.all_jobs
        statuses = [jobs[job_id].status if job_id in jobs else "FAILED" for job_id in waits_for(task.job)]
        if "FAILED" in statuses:
            self._finish(task, success=False, status_reason=DEPENDENCY_FAILED)
        elif all(s == "SUCCEEDED" for s in statuses):
            task.job.status = "RUNNABLE"

    # --- One attempt ----------------------------------------------------------------------------

    def _command(self, task: Task) -> list[str]:
        job = task.job
        properties = job.job_definition.container_properties or {}
        command = job.container_overrides.get("command") or properties.get("command") or []
        parameters = {**job.job_definition.parameters, **(job.parameters or {})}
        return [_REF.sub(lambda m: str(parameters.get(m.group(1), m.group(0))), part) for part in command]

    def _environment(self, task: Task, number: int, home: Path, identity: dict[str, str]) -> dict[str, str]:
        """Batch's and ECS's variables, the job's, and ``identity`` (where its role's keys and its
        metadata are); of the host's only HOST_VARIABLES."""
        job = task.job
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        env.update({name: os.environ[name] for name in HOST_VARIABLES if os.environ.get(name)})
        # The image's python3 is the emulator's own (it has boto3, as the image must).
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
        for entry in job._get_container_property("environment", []):
            env[entry["name"]] = str(entry["value"])
        env.update(
            AWS_BATCH_JOB_ID=job.job_id,
            AWS_BATCH_JOB_ATTEMPT=str(number),
            AWS_BATCH_JQ_NAME=job.job_queue.name,
            AWS_BATCH_CE_NAME=task.compute.name,
            AWS_EXECUTION_ENV="AWS_ECS_FARGATE" if task.compute.fargate else "AWS_ECS_EC2",
            AWS_ENDPOINT_URL=self.settings.endpoint_url,
            AWS_DEFAULT_REGION=self.settings.region,
            AWS_REGION=self.settings.region,
            # A container's only keys are its job role's: none from an instance profile.
            AWS_EC2_METADATA_DISABLED="true",
            HOME=str(home),
            **identity,
        )
        index = (job.array_properties or {}).get("index")
        if index is not None:
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        if self.settings.walls is None:  # no /tmp of its own: its temporary files stay in its folder
            env["TMPDIR"] = str(home.parent / "tmp")
        return env

    def _metadata(self, task: Task, task_id: str, stream: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The container and task documents of ECS's task metadata endpoint (v4), as tools read them."""
        job, region = task.job, self.settings.region
        properties = job.job_definition.container_properties or {}
        options = (properties.get("logConfiguration") or {}).get("options") or {}
        cluster = getattr(task.compute.environment, "ecs_arn", "") or (
            f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{task.compute.name}"
        )
        task_arn = f"arn:aws:ecs:{region}:{ACCOUNT}:task/{cluster.rsplit('/', 1)[-1]}/{task_id}"
        limits = {"CPU": task.vcpus * 1024, "Memory": task.memory_mib}
        container = {
            "DockerId": task_id,
            "Name": "default",
            "DockerName": f"ecs-{job.job_definition.name}-default-{task_id[:12]}",
            "Image": properties.get("image", ""),
            "ImageID": "",
            "Labels": {
                "com.amazonaws.ecs.cluster": cluster,
                "com.amazonaws.ecs.container-name": "default",
                "com.amazonaws.ecs.task-arn": task_arn,
                "com.amazonaws.ecs.task-definition-family": job.job_definition.name,
            },
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Limits": limits,
            "CreatedAt": datetime.now(timezone.utc).isoformat(),
            "StartedAt": datetime.now(timezone.utc).isoformat(),
            "Type": "NORMAL",
            "LogDriver": (properties.get("logConfiguration") or {}).get("logDriver", "awslogs"),
            "LogOptions": {
                "awslogs-group": options.get("awslogs-group", "/aws/batch/job"),
                "awslogs-region": options.get("awslogs-region", region),
                "awslogs-stream": stream,
            },
            "ContainerARN": f"arn:aws:ecs:{region}:{ACCOUNT}:container/{task_id}",
            "Networks": [{"NetworkMode": "host", "IPv4Addresses": ["127.0.0.1"]}],
        }
        document = {
            "Cluster": cluster,
            "TaskARN": task_arn,
            "Family": job.job_definition.name,
            "Revision": str(job.job_definition.revision),
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Limits": {"CPU": float(task.vcpus), "Memory": task.memory_mib},
            "AvailabilityZone": f"{region}a",
            "LaunchType": "FARGATE" if task.compute.fargate else "EC2",
        }
        return container, document

    def _start(self, task: Task, now: float) -> None:
        job = task.job
        number = len(task.history) + 1
        task_id = uuid.uuid4().hex
        home = self.settings.work_dir / job.job_id.replace(":", "-") / str(number)
        shutil.rmtree(home, ignore_errors=True)
        (home / "work").mkdir(parents=True)
        (home / "tmp").mkdir()
        output = home / "output.log"
        job.status = "STARTING"
        job.job_started_at = datetime.now()
        job.job_stopped_reason = None
        command = self._command(task)
        role = (job.job_definition.container_properties or {}).get("jobRoleArn") or None
        problem = self.identity.role_problem(role) if self.identity and role else None
        if problem is not None:  # ECS cannot start the task: it fails at once, naming the role
            self._failed_to_start(task, problem, status_reason=problem)
            return
        identity: dict[str, str] = {}
        if self.identity is not None:
            stream = self._stream_name(task, task_id)
            container, document = self._metadata(task, task_id, stream)
            identity = self.identity.open(task_id, role, container, document)
        argv = command or ["true"]
        if self.settings.walls is not None:
            user = run_as(properties_user(job)) if os.getuid() == 0 else None
            argv = self.settings.walls.command(argv, home / "work", user)
        try:
            with output.open("wb") as out:
                process = subprocess.Popen(
                    argv,
                    cwd=home / "work",
                    env=self._environment(task, number, home / "work", identity),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as err:
            output.write_text(f"{err}\n")
            if self.identity is not None:
                self.identity.close(task_id)
            self._failed_to_start(task, f"CannotStartContainerError: {err.strerror}")
            return
        attempt = Attempt(process, number, task_id, now, output, task.vcpus)
        if task.timeout:
            attempt.timeout_at = now + task.timeout
        if task.compute.spot and self.random.random() < self.settings.spot_rate:
            attempt.interrupt_at = now + self.random.uniform(0.05, 0.5)
        task.attempt = attempt
        job.status = "RUNNING"
        _write_process(home, process)
        self.changed()

    def _failed_to_start(self, task: Task, reason: str, status_reason: str = "Task failed to start") -> None:
        task.history.append(
            {
                "startedAt": unix_time_millis(),
                "stoppedAt": unix_time_millis(),
                "statusReason": status_reason,
                "container": {"reason": reason},
            }
        )
        self._finish(task, success=False, status_reason=status_reason, container_reason=reason)

    def _supervise(self, task: Task, now: float) -> None:
        attempt = task.attempt
        if attempt is None:
            return
        process = attempt.process
        if attempt.stop_reason is None:
            if task.terminate_reason:
                self._stop_attempt(attempt, task.terminate_reason, graceful=True, now=now)
            elif attempt.interrupt_at is not None and now >= attempt.interrupt_at:
                reason = (
                    FARGATE_SPOT if task.compute.fargate else HOST_RECLAIMED.format(uuid.uuid4().hex[:17])
                )
                self._stop_attempt(attempt, reason, graceful=False, now=now)
            elif attempt.timeout_at is not None and now >= attempt.timeout_at:
                self._stop_attempt(attempt, TIMED_OUT, graceful=True, now=now)
            elif now - attempt.memory_read_at >= MEMORY_EVERY and process.poll() is None:
                attempt.memory_read_at = now
                if self._memory_mib(process) > task.memory_mib:
                    attempt.container_reason = OOM
                    self._stop_attempt(attempt, EXITED, graceful=False, now=now)
        if attempt.killed_at is not None and process.poll() is None and now >= attempt.killed_at:
            self._signal(process, signal.SIGKILL)
        code = process.poll()
        if code is None:
            return
        if attempt.interrupt_at is not None and attempt.stop_reason is None:
            # Chosen to be reclaimed: the host went away as the task ended; its outcome is lost.
            attempt.stop_reason = (
                FARGATE_SPOT if task.compute.fargate else HOST_RECLAIMED.format(uuid.uuid4().hex[:17])
            )
        self._end_attempt(task, attempt, code)

    def _memory_mib(self, process: subprocess.Popen) -> float:
        """What a cgroup would charge the task: each page once. The proportional set size over its
        process tree (a page shared by N processes counts 1/N in each); RSS where PSS cannot be
        read, which counts shared pages once per process."""
        try:
            parent = psutil.Process(process.pid)
            members = [parent, *parent.children(recursive=True)]
            if self.settings.walls is not None:  # the sandbox and its init are not the task's
                members = [m for m in members[1:] if m.ppid() != parent.pid]
        except psutil.Error:
            return 0.0
        total = 0
        for member in members:
            try:
                total += task_memory_bytes(member)
            except psutil.Error:
                continue  # it exited while being read
        return total / (1024 * 1024)

    def _signal(self, process: subprocess.Popen, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)

    def _stop_attempt(self, attempt: Attempt, reason: str, *, graceful: bool, now: float) -> None:
        attempt.stop_reason = reason
        if graceful:
            self._signal(attempt.process, signal.SIGTERM)
            attempt.killed_at = now + self.settings.stop_grace_seconds
        else:
            self._signal(attempt.process, signal.SIGKILL)
            attempt.killed_at = now

    def _end_attempt(self, task: Task, attempt: Attempt, code: int) -> None:
        job = task.job
        if self.identity is not None:
            self.identity.close(attempt.task_id)
        exit_code = 128 - code if code < 0 else code  # killed by signal N: exit 128+N, as Docker reports
        reclaimed = attempt.stop_reason in (FARGATE_SPOT,) or str(attempt.stop_reason).startswith("Host EC2")
        stream = self._write_log(task, attempt)
        # Its output is in its log stream now: nothing of the attempt stays on disk.
        shutil.rmtree(attempt.output.parent, ignore_errors=True)
        container: dict[str, Any] = {
            "logStreamName": stream,
            "networkInterfaces": [],  # no network of its own: the task shares the host's
            "taskArn": f"arn:aws:ecs:{self.settings.region}:123456789012:task/{attempt.task_id}",
        }
        if not task.compute.fargate:  # on EC2 capacity AWS names the instance the task ran on
            instance = f"{task.compute.name}/{attempt.task_id[:17]}"
            container["containerInstanceArn"] = (
                f"arn:aws:ecs:{self.settings.region}:123456789012:container-instance/{instance}"
            )
        if not reclaimed:
            container["exitCode"] = exit_code
        if attempt.container_reason:
            container["reason"] = attempt.container_reason
        status_reason = attempt.stop_reason or EXITED
        task.history.append(
            {
                "container": container,
                "startedAt": int(unix_time_millis(job.job_started_at)),
                "stoppedAt": int(unix_time_millis()),
                "statusReason": status_reason,
            }
        )
        task.attempt = None
        job.log_stream_name = stream
        if not reclaimed and exit_code == 0 and attempt.stop_reason is None:
            self._finish(task, success=True, status_reason=EXITED, exit_code=0)
            return
        action = (
            "EXIT"
            if task.terminate_reason
            else exit_rule_action(
                task.exit_rules,
                status_reason,
                attempt.container_reason or "",
                None if reclaimed else exit_code,
            )
        )
        if action == "RETRY" and attempt.number < task.attempts_allowed:
            job.status = "RUNNABLE"
            job.attempts = list(task.history)
            self.runnable.append(task)
            self.changed()
            return
        self._finish(
            task,
            success=False,
            status_reason=status_reason,
            exit_code=None if reclaimed else exit_code,
            container_reason=attempt.container_reason,
        )

    def _finish(
        self,
        task: Task,
        *,
        success: bool,
        status_reason: str,
        exit_code: int | None = None,
        container_reason: str | None = None,
    ) -> None:
        job = task.job
        job.attempts = list(task.history)
        job.latest_attempt = task.history[-1] if task.history else None
        job.exit_code = exit_code
        job.job_stopped_reason = None if success else status_reason
        job.job_stopped = True
        job.job_stopped_at = datetime.now()
        job.status = "SUCCEEDED" if success else "FAILED"
        self._touch_parent(task)
        self.changed()

    @staticmethod
    def _log_options(task: Task) -> dict[str, str]:
        properties = task.job.job_definition.container_properties or {}
        return (properties.get("logConfiguration") or {}).get("options") or {}

    def _stream_name(self, task: Task, task_id: str) -> str:
        """The stream Batch names ``<prefix>/default/<task id>`` (prefix: the definition's name)."""
        prefix = self._log_options(task).get("awslogs-stream-prefix") or task.job.job_definition.name
        return f"{prefix}/default/{task_id}"

    def _write_log(self, task: Task, attempt: Attempt) -> str:
        """The attempt's output as events of its stream in the definition's log group."""
        job = task.job
        group = self._log_options(task).get("awslogs-group", "/aws/batch/job")
        stream = self._stream_name(task, attempt.task_id)
        logs = job.backend.logs_backend
        try:
            text = attempt.output.read_text(errors="replace")
        except OSError:
            text = ""
        stamp = int(unix_time_millis())
        events = [{"timestamp": stamp, "message": line} for line in text.splitlines()]
        try:
            if group not in logs.groups:
                logs.create_log_group(group, {})
            logs.create_log_stream(group, stream)
            if events:
                logs.put_log_events(group, stream, events)
        except Exception:
            pass
        return stream

    # --- Shutdown -------------------------------------------------------------------------------

    def shutdown(self, grace: float = 2.0) -> None:
        """Stop the loop and every task process: SIGTERM, then SIGKILL after ``grace`` seconds."""
        self._stop.set()
        with self.lock:
            processes = [t.attempt.process for t in self.running if t.attempt is not None]
        for process in processes:
            self._signal(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL)
                process.wait()
