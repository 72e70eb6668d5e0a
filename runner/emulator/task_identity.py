"""Who a task is, as ECS tells it: its job role's credentials and its task metadata, on loopback.

ECS gives a container temporary keys for its task role at ``AWS_CONTAINER_CREDENTIALS_FULL_URI``
(or the relative URI), behind ``AWS_CONTAINER_AUTHORIZATION_TOKEN``, and its metadata at
``ECS_CONTAINER_METADATA_URI_V4``; boto3, the AWS CLI and every SDK read them. This server does the
same for the emulator's tasks: keys for the job definition's ``jobRoleArn`` from moto's STS,
renewed before they expire, never the emulator owner's keys. The keys it issues are the ones
``runner.emulator.iam`` holds to the role's policies.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

LOOPBACK = "127.0.0.1"
ECS_TASKS = "ecs-tasks.amazonaws.com"
# ECS's own words when a task role cannot be used (missing, or not trusting ECS tasks).
CANNOT_ASSUME = (
    "ECS was unable to assume the role '{role}' that was provided for this task. Please verify that "
    "the role being passed has the proper trust relationship and permissions and that your IAM user "
    "has permissions to pass this role."
)
# ECS hands out task role keys for about six hours and renews them well before; so does this.
DEFAULT_LIFETIME = timedelta(hours=6)
RENEW_BEFORE = timedelta(minutes=30)


@dataclass
class TaskSession:
    """One task attempt's identity: its token, role and the metadata documents it may read."""

    task_id: str
    token: str
    role_arn: str | None
    container: dict[str, Any]
    task: dict[str, Any]
    keys: dict[str, str] | None = None
    expires: datetime | None = None


def trusts_ecs_tasks(document: str | dict[str, Any]) -> bool:
    """Whether a role's trust policy lets ECS tasks assume it (an Allow of sts:AssumeRole for the
    ecs-tasks service principal)."""
    policy = json.loads(document) if isinstance(document, str) else document
    statements = policy.get("Statement") or []
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        services = (statement.get("Principal") or {}).get("Service") or []
        services = [services] if isinstance(services, str) else services
        if (
            statement.get("Effect") == "Allow"
            and any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions)
            and ECS_TASKS in services
        ):
            return True
    return False


@dataclass
class TaskIdentity:
    """The credentials and metadata server, and the keys it has issued."""

    region: str
    lifetime: timedelta = DEFAULT_LIFETIME
    account_id: str = DEFAULT_ACCOUNT_ID
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    sessions: dict[str, TaskSession] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)  # access key ids of task sessions
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    # Held while a credentials request may have moto's STS issue keys, as a request holds it (the
    # emulator's snapshots wait). Taken before ``lock``, never while holding it: the executor opens
    # and closes sessions (``lock``) under its own lock, which a snapshot waits for under the gate.
    guard: Callable[[], AbstractContextManager[None]] = field(default=nullcontext)

    # --- Lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        identity = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = identity.answer(self.path, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                return  # the emulator's log is for jobs, not for every credentials refresh

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="task-identity", daemon=True).start()

    def shutdown(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def base_url(self) -> str:
        assert self.server is not None, "start() first"
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    # --- Sessions (the executor's side) ---------------------------------------------------------

    def role_problem(self, role_arn: str) -> str | None:
        """Why a task could not assume ``role_arn`` (ECS's words), or None."""
        try:
            role = iam_backends[self.account_id]["aws"].get_role_by_arn(role_arn)
        except Exception:
            return CANNOT_ASSUME.format(role=role_arn)
        if not trusts_ecs_tasks(role.assume_role_policy_document):
            return CANNOT_ASSUME.format(role=role_arn)
        return None

    def open(
        self, task_id: str, role_arn: str | None, container: dict[str, Any], task: dict[str, Any]
    ) -> dict[str, str]:
        """Register a task attempt; the variables that point it at its credentials and metadata.

        A job without a role gets metadata but no credentials, as on ECS.
        """
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.sessions[task_id] = TaskSession(task_id, token, role_arn, container, task)
        env = {
            "ECS_CONTAINER_METADATA_URI_V4": f"{self.base_url}/v4/{token}",
            "ECS_CONTAINER_METADATA_URI": f"{self.base_url}/v3/{token}",
        }
        if role_arn:
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"{self.base_url}/v2/credentials/{task_id}"
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
        return env

    def close(self, task_id: str) -> None:
        """The attempt ended: its endpoints answer no more (keys already issued run out as on AWS)."""
        with self.lock:
            self.sessions.pop(task_id, None)

    # --- Requests (the server's side) -----------------------------------------------------------

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        parts = [part for part in path.split("?")[0].split("/") if part]
        if len(parts) == 3 and parts[:2] == ["v2", "credentials"]:
            return self._credentials(parts[2], authorization)
        if len(parts) >= 2 and parts[0] in ("v3", "v4"):
            return self._metadata(parts[1], parts[2:])
        return 404, {"message": f"no such endpoint: {path}"}

    def _credentials(self, task_id: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        with self.guard(), self.lock:
            session = self.sessions.get(task_id)
            if session is None or not authorization or not hmac.compare_digest(authorization, session.token):
                return 401, {"message": "Unauthorized: the task's authorization token is missing or wrong"}
            if session.role_arn is None:
                return 404, {"message": "this task has no job role"}
            now = self.clock()
            if session.keys is None or session.expires is None or session.expires - now < RENEW_BEFORE:
                session.keys, session.expires = self._assume(session, now)
            keys, expires = dict(session.keys), session.expires
        return 200, {
            **keys,
            "RoleArn": session.role_arn,
            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _assume(self, session: TaskSession, now: datetime) -> tuple[dict[str, str], datetime]:
        assumed = sts_backends[self.account_id]["aws"].assume_role(
            region_name=self.region,
            role_session_name=session.task_id,
            role_arn=str(session.role_arn),
            policy="",
            duration=int(self.lifetime.total_seconds()),
            external_id="",
        )
        self.issued.add(assumed.access_key_id)
        keys = {
            "AccessKeyId": assumed.access_key_id,
            "SecretAccessKey": assumed.secret_access_key,
            "Token": assumed.session_token,
        }
        return keys, now + self.lifetime

    def _metadata(self, token: str, rest: list[str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            session = next((s for s in self.sessions.values() if hmac.compare_digest(s.token, token)), None)
        if session is None:
            return 401, {"message": "Unauthorized: unknown or ended task"}
        if rest == []:
            return 200, session.container
        if rest == ["task"]:
            return 200, {**session.task, "Containers": [session.container]}
        return 404, {"message": "not served by the emulator: the container and task documents are"}
