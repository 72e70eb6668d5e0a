"""The emulator's process: moto's server with this project's Batch backend that runs tasks.

Started by ``runner local up`` as ``python -m runner.emulator.server``; listens on 127.0.0.1 only.
Everything but Batch job execution is moto's own.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from moto import backends
from moto.batch.models import batch_backends
from moto.batch.responses import BatchResponse
from moto.core.base_backend import BackendDict
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from runner.emulator import sandbox
from runner.emulator.backend import LocalBatchBackend
from runner.emulator.executor import Executor, ExecutorSettings, Walls, stop_orphans
from runner.emulator.gate import gate
from runner.emulator.iam import enforce, issued, register_owner
from runner.emulator.persistence import Gate, Snapshots, restore, serving
from runner.emulator.task_identity import TaskIdentity

LOOPBACK = "127.0.0.1"
local_backends = BackendDict(LocalBatchBackend, "batch")


def _backend(self: BatchResponse) -> Any:
    return local_backends[self.current_account][self.region]


# Jobs complete at once, without Docker, in moto's own Batch; this backend runs them instead.
MOTO_CONFIG = {"batch": {"use_docker": False}}
# Opens moto's own API (reset, seed, state dump) for the conformance suite, which resets between tests.
MOTO_API_ENV = "RUNNER_EMULATOR_MOTO_API"


def list_moto_modules_once() -> None:
    """moto's dispatcher lists its package's folders (a stat each, about 150) for every request,
    and the gate routes each request with it too: list them once, as they do not change."""
    modules = frozenset(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]


def _submit_job(self: BatchResponse) -> str:
    """moto's SubmitJob, plus the submitted retryStrategy and overrides. Who signed it was checked
    before it got here (the gate, then moto's signature check on every request)."""
    name, job_id, arn = self.batch_backend.submit_job(
        self._get_param("jobName"),
        self._get_param("jobDefinition"),
        self._get_param("jobQueue"),
        depends_on=self._get_param("dependsOn"),
        container_overrides=self._get_param("containerOverrides"),
        timeout=self._get_param("timeout"),
        array_properties=self._get_param("arrayProperties", {}),
        parameters=self._get_param("parameters"),
        tags=self._get_param("tags"),
        retry_strategy=self._get_param("retryStrategy"),
        eks_properties_override=self._get_param("eksPropertiesOverride"),
    )
    return json.dumps({"jobId": job_id, "jobName": name, "jobArn": arn})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runner.emulator.server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slots", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--spot-interruptions", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument(
        "--isolation-file",
        type=Path,
        help="where to say whether tasks are walled in (`runner local up` reads it)",
    )
    parser.add_argument(
        "--credentials", type=Path, help="JSON file with the owner's keys (an IAM user of the emulator)"
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        help="the file the emulator keeps its state in across restarts (default: none, it is lost)",
    )
    parser.add_argument(
        "--restored-file",
        type=Path,
        help="where to say what was restored at start (`runner local up` reads it)",
    )
    parser.add_argument("--identity", default="", help="which local stack this is (in every response)")
    args = parser.parse_args(argv)

    credentials = None
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    owner = getpass.getuser()
    moto_api_backend.set_config(MOTO_CONFIG)
    list_moto_modules_once()
    snapshot = args.snapshot
    restored = restore(snapshot) if snapshot else None
    if args.credentials:
        keys = json.loads(args.credentials.read_text())
        credentials = (keys["accessKeyId"], keys["secretAccessKey"])
        register_owner(credentials, owner, region)
    # Before any thread starts (the probe forks): can tasks be walled in here?
    refused = sandbox.probe()
    walls = None if refused else Walls.for_emulator(args.work_dir)
    if args.isolation_file:
        args.isolation_file.write_text(
            json.dumps({"isolated": walls is not None, "why": refused, "root": os.getuid() == 0})
        )
    # Each task's job role keys and metadata, served on loopback; every request's signature is
    # verified, and what a role's keys sign is held to the role's policies.
    identity = TaskIdentity(region)
    identity.start()
    enforce()
    executor = Executor(
        ExecutorSettings(
            slots=args.slots,
            work_dir=args.work_dir,
            endpoint_url=f"http://{LOOPBACK}:{args.port}",
            region=region,
            spot_rate=args.spot_interruptions,
            seed=args.seed,
            # Only the test suite lowers these (AWS's minimum attempt duration is 60 s).
            min_timeout_seconds=int(os.environ.get("RUNNER_EMULATOR_MIN_TIMEOUT", "60")),
            stop_grace_seconds=float(os.environ.get("RUNNER_EMULATOR_STOP_GRACE", "30")),
            walls=walls,
        ),
        identity,
    )
    LocalBatchBackend.executor = executor
    BatchResponse.batch_backend = property(_backend)  # type: ignore[assignment,method-assign]
    BatchResponse.submitjob = _submit_job  # type: ignore[method-assign]
    if restored is not None:
        # What a killed emulator left running is stopped; its jobs lost their host (AWS's words).
        restored.orphans_stopped = stop_orphans(args.work_dir)
        lost = []
        for account, regions in batch_backends.items():
            for region_name in list(regions):
                tasks, parents = local_backends[account][region_name].unfinished()
                lost += executor.resume(tasks, parents)
        restored.jobs_lost_host = len(lost)
    gate_lock = Gate()
    identity.guard = gate_lock.request
    snapshots = Snapshots(snapshot, gate_lock, executor.lock) if snapshot else None
    if snapshots is not None:
        executor.changed = snapshots.changed
        snapshots.save()  # what the restart changed, and the proof that the folder takes writes
        snapshots.start()
    if args.restored_file and restored is not None:
        args.restored_file.write_text(json.dumps(restored.to_json()))
    executor.start()

    def stop(_signum: int, _frame: Any) -> None:
        executor.shutdown()
        if snapshots is not None:
            try:
                snapshots.stop()  # everything, after the last task stopped
            except Exception as err:  # the previous snapshot stays whole; say why in the log
                print(f"the emulator could not save its state as it stopped: {err}", file=sys.stderr)
        identity.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    access_key = credentials[0] if credentials else None

    def after_reset() -> None:
        if credentials is not None:
            register_owner(credentials, owner, region)
        moto_api_backend.set_config(MOTO_CONFIG)

    app = DomainDispatcherApplication(create_backend_app)
    guarded = gate(
        app,
        lambda: access_key,
        issued,
        moto_api=os.environ.get(MOTO_API_ENV) == "1",
        after_reset=after_reset,
    )
    run_simple(
        LOOPBACK,
        args.port,
        serving(guarded, gate_lock, snapshots.changed if snapshots else None, args.identity),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
