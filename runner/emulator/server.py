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

from moto.batch.responses import BatchResponse
from moto.core.base_backend import BackendDict
from moto.core.exceptions import JsonRESTError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from runner.emulator.backend import LocalBatchBackend
from runner.emulator.executor import Executor, ExecutorSettings
from runner.emulator.gate import gate
from runner.emulator.iam import access_key_of, enforce_for, register_owner, user_secret
from runner.emulator.signing import signed_by
from runner.emulator.task_identity import TaskIdentity

LOOPBACK = "127.0.0.1"
local_backends = BackendDict(LocalBatchBackend, "batch")


def _backend(self: BatchResponse) -> Any:
    return local_backends[self.current_account][self.region]


class InvalidSignature(JsonRESTError):
    code = 403

    def __init__(self) -> None:
        super().__init__(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided "
            "(sign with the keys `runner local env` prints)",
        )


def _submit_job(self: BatchResponse) -> str:
    """moto's SubmitJob, plus the submitted retryStrategy and overrides, once its signature is
    checked: the emulator runs the command, so only a request signed with its own secret (or by an
    IAM user its owner made, with that user's secret) may."""
    credentials = LocalBatchBackend.executor.settings.credentials if LocalBatchBackend.executor else None
    body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body or "").encode()
    if credentials is not None:
        key = access_key_of(self.headers) or ""
        secret = credentials[1] if key == credentials[0] else user_secret(key)
        if secret is None or not signed_by(self.method, self.uri, dict(self.headers), body, key, secret):
            raise InvalidSignature()
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
        "--credentials", type=Path, help="JSON file with the keys SubmitJob must be signed with"
    )
    args = parser.parse_args(argv)

    credentials = None
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    if args.credentials:
        keys = json.loads(args.credentials.read_text())
        credentials = (keys["accessKeyId"], keys["secretAccessKey"])
        register_owner(credentials, getpass.getuser(), region)
    # Each task's job role keys and metadata, served on loopback; what they sign is held to IAM.
    identity = TaskIdentity(region)
    identity.start()
    enforce_for(identity.issued)
    executor = Executor(
        ExecutorSettings(
            slots=args.slots,
            work_dir=args.work_dir,
            endpoint_url=f"http://{LOOPBACK}:{args.port}",
            region=region,
            credentials=credentials,
            spot_rate=args.spot_interruptions,
            seed=args.seed,
            # Only the test suite lowers these (AWS's minimum attempt duration is 60 s).
            min_timeout_seconds=int(os.environ.get("RUNNER_EMULATOR_MIN_TIMEOUT", "60")),
            stop_grace_seconds=float(os.environ.get("RUNNER_EMULATOR_STOP_GRACE", "30")),
        ),
        identity,
    )
    LocalBatchBackend.executor = executor
    BatchResponse.batch_backend = property(_backend)  # type: ignore[assignment,method-assign]
    BatchResponse.submitjob = _submit_job  # type: ignore[method-assign]
    executor.start()

    def stop(_signum: int, _frame: Any) -> None:
        executor.shutdown()
        identity.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    access_key = credentials[0] if credentials else None
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        LOOPBACK,
        args.port,
        gate(app, lambda: access_key, lambda key: key in identity.issued or user_secret(key) is not None),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
