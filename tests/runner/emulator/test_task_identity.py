"""The task identity server on its own (in moto's in-process backends): a task's token opens its
credentials and metadata and nothing else, keys are renewed before they expire, and a role that
is missing or does not trust ECS tasks is named in ECS's words. Memory is charged as a cgroup
would (each page once), and read ten times a second, not every tick."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import psutil
import pytest

from runner.emulator.executor import MEMORY_EVERY, TICK, Attempt, Executor, ExecutorSettings
from runner.emulator.persistence import Gate
from runner.emulator.task_identity import CANNOT_ASSUME, RENEW_BEFORE, TaskIdentity, trusts_ecs_tasks

TRUST_ECS = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
TRUST_EC2 = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def roles(mocked_aws: None) -> dict[str, str]:
    iam = boto3.client("iam", region_name="us-east-1")
    return {
        name: iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        for name, trust in (("job", TRUST_ECS), ("instance", TRUST_EC2))
    }


@pytest.fixture
def identity(roles: dict[str, str]) -> Iterator[tuple[TaskIdentity, Clock]]:
    clock = Clock()
    server = TaskIdentity("us-east-1", lifetime=timedelta(hours=1), clock=clock)
    server.start()
    yield server, clock
    server.shutdown()


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_task_gets_its_roles_keys_behind_its_token_and_nothing_without_it(identity, roles):
    server, _ = identity
    env = server.open("t1", roles["job"], {"Name": "default"}, {"Cluster": "c"})
    url, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    assert url.startswith("http://127.0.0.1:")  # loopback: what botocore accepts over http
    status, keys = get(url, token)
    assert status == 200 and keys["RoleArn"] == roles["job"] and keys["AccessKeyId"].startswith("ASIA")
    assert keys["AccessKeyId"] in server.issued and keys["Token"]
    assert get(url)[0] == 401  # no token: refused, as ECS does
    assert get(url, "wrong")[0] == 401
    other = server.open("t2", roles["job"], {}, {})
    assert get(url, other["AWS_CONTAINER_AUTHORIZATION_TOKEN"])[0] == 401  # another task's token
    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["Token"],
    )
    assert sts.get_caller_identity()["Arn"].endswith(":assumed-role/job/t1")
    server.close("t1")
    assert get(url, token)[0] == 401  # the attempt ended


def test_keys_are_renewed_before_they_expire(identity, roles):
    server, clock = identity
    env = server.open("t1", roles["job"], {}, {})
    url, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    first = get(url, token)[1]
    clock.now += timedelta(minutes=10)
    assert get(url, token)[1]["AccessKeyId"] == first["AccessKeyId"]  # still fresh: the same keys
    clock.now += timedelta(hours=1) - RENEW_BEFORE - timedelta(minutes=9)
    renewed = get(url, token)[1]
    assert renewed["AccessKeyId"] != first["AccessKeyId"]
    assert datetime.fromisoformat(renewed["Expiration"].replace("Z", "+00:00")) == clock.now + timedelta(
        hours=1
    )


def test_metadata_is_the_tasks_own_and_needs_its_token(identity, roles):
    server, _ = identity
    env = server.open("t1", None, {"Name": "default", "Image": "img"}, {"Cluster": "c", "TaskARN": "arn"})
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in env  # no role: no credentials, as on ECS
    v4 = env["ECS_CONTAINER_METADATA_URI_V4"]
    assert get(v4) == (200, {"Name": "default", "Image": "img"})
    assert get(v4 + "/task") == (
        200,
        {"Cluster": "c", "TaskARN": "arn", "Containers": [{"Name": "default", "Image": "img"}]},
    )
    base = v4.rsplit("/", 1)[0]
    assert get(base + "/not-a-token")[0] == 401


def test_a_role_missing_or_not_trusting_ecs_tasks_is_named(identity, roles):
    server, _ = identity
    assert server.role_problem(roles["job"]) is None
    assert server.role_problem(roles["instance"]) == CANNOT_ASSUME.format(role=roles["instance"])
    missing = roles["job"].replace("/job", "/gone")
    assert server.role_problem(missing) == CANNOT_ASSUME.format(role=missing)
    assert trusts_ecs_tasks(json.dumps(TRUST_ECS)) and not trusts_ecs_tasks(TRUST_EC2)


def test_a_credentials_request_waiting_out_a_snapshot_does_not_hold_up_the_executor(roles):
    """The deadlock a loaded restart once hit: a snapshot has the gate and waits for the
    executor's lock; the executor, under its lock, closes a session; a task asking for keys waits
    for the gate. The task must wait without holding what the executor needs."""
    gate, asking = Gate(), threading.Event()

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        asking.set()
        with gate.request():
            yield

    identity = TaskIdentity("us-east-1", guard=guard)
    identity.start()
    env = identity.open("t1", roles["job"], {}, {})
    with gate.alone():  # a snapshot in progress
        task = threading.Thread(
            target=identity.answer, args=("/v2/credentials/t1", env["AWS_CONTAINER_AUTHORIZATION_TOKEN"])
        )
        task.start()
        assert asking.wait(10)
        executor = threading.Thread(target=identity.close, args=("t1",))  # under the executor's lock
        executor.start()
        executor.join(10)
        closed = not executor.is_alive()
    task.join(10)
    identity.shutdown()
    assert closed, "the executor waited for a task that waited for the snapshot: a deadlock"
    assert not task.is_alive()


def bare_executor(work_dir: Path) -> Executor:
    """An executor that is never started: its supervision steps called one at a time."""
    return Executor(ExecutorSettings(slots=1, work_dir=work_dir, endpoint_url="", region="us-east-1"))


def test_memory_is_charged_once_per_page_over_the_process_tree(tmp_path):
    """Nine processes sharing 60 MiB copy-on-write: RSS counts it nine times, a cgroup once."""
    code = (
        "import os, time\n"
        "shared = bytearray(60 * 1024 * 1024)\n"
        "for i in range(0, len(shared), 4096): shared[i] = 1\n"
        "for _ in range(8):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(30); os._exit(0)\n"
        "print('ready', flush=True); time.sleep(30)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children()]
        assert len(tree) == 9
        rss = sum(p.memory_info().rss for p in tree) / 2**20
        charged = bare_executor(tmp_path)._memory_mib(process)
        assert rss > 9 * 60 and 60 < charged < rss / 3, (rss, charged)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()  # type: ignore[union-attr]


def test_a_running_tasks_memory_is_read_every_tenth_of_a_second_not_every_tick(tmp_path, monkeypatch):
    """Each read walks /proc (the tree, then each member's smaps): at every 10 ms tick it was a
    third of the emulator's time in a sweep."""
    executor = bare_executor(tmp_path)
    reads: list[float] = []
    monkeypatch.setattr(executor, "_memory_mib", lambda process: reads.append(0.0) or 0.0)
    process = subprocess.Popen(["sleep", "30"])
    try:
        attempt = Attempt(process, 1, "t1", 0.0, tmp_path / "out", 1)
        compute = SimpleNamespace(fargate=False)
        task = SimpleNamespace(attempt=attempt, terminate_reason=None, compute=compute, memory_mib=512)
        for tick in range(35):  # 0.34 s of ticks
            executor._supervise(task, tick * TICK)  # type: ignore[arg-type]
        assert len(reads) == 4 and MEMORY_EVERY == 0.1  # at 0 s, then about every 0.1 s
    finally:
        process.kill()
        process.wait()
