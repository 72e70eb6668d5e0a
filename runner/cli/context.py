"""What a command works against, from its options: the stack, its outputs, the AWS target.

Option precedence and target choice live here and nowhere else; the run service below gets the
result as plain values and callables, never this object.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from runner.aws.clients import AwsTarget, aws_errors, is_loopback
from runner.aws.run_records import RunRecords
from runner.aws.stack_outputs import (
    StackOutputs,
    find_project_dir,
    outputs_from_file,
    outputs_from_pulumi,
    selected_stack,
)
from runner.errors import RunnerError
from runner.local.process import identity_at, responds, running_server
from runner.local.state import JOINED, LocalState
from runner.runs.service import RunService, StackTarget
from runner.runs.store import RunRecord, RunStore, state_dir, utc_now

DEFAULT_LOCAL_STACK = "dev"
NOT_RUNNING = "the local emulator is not running; start it with `runner local up`"


@dataclass
class CliContext:
    """``--stack``, ``--outputs`` and ``--local`` as given (before or after the command name)."""

    stack_option: str | None = None
    outputs_file: Path | None = None
    local: bool = False
    root: Path = field(default_factory=state_dir)
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run
    now: Callable[[], datetime] = utc_now
    _outputs: StackOutputs | None = None

    _store: RunStore | None = None
    _emulators: dict[str, str | None] = field(default_factory=dict)

    @property
    def store(self) -> RunStore:
        """Run records, shared through the data bucket of the stack a run went to."""
        if self._store is None:
            self._store = RunStore(self.root, SharedRecords(self))
        return self._store

    @property
    def local_state(self) -> LocalState:
        return LocalState(self.root)

    def stack(self) -> str:
        if self.stack_option:
            return self.stack_option
        if self.local:
            deployed = self.local_state.deployed_stacks()
            return deployed[0] if len(deployed) == 1 else DEFAULT_LOCAL_STACK
        if self.outputs_file is not None:
            return self.outputs_file.stem
        return selected_stack(find_project_dir(), self.run)

    def outputs(self) -> StackOutputs:
        if self._outputs is None:
            stack = self.stack()
            if self.local:
                self.endpoint_url()  # a stopped emulator is the cause to report, not missing outputs
                self._outputs = self.local_state.outputs(stack)
            elif self.outputs_file is not None:
                self._outputs = outputs_from_file(self.outputs_file, stack)
            else:
                self._outputs = outputs_from_pulumi(stack, find_project_dir(), self.run)
        return self._outputs

    def endpoint_url(self) -> str | None:
        """The emulator's endpoint with --local (an error when it is not running), else None."""
        if not self.local:
            return None
        endpoint = self.emulator_endpoint()
        if endpoint is None:
            raise RunnerError(NOT_RUNNING)
        return endpoint

    def emulator_endpoint(self) -> str | None:
        """Where the local emulator answers now, or None when it is not running."""
        server = running_server(self.local_state)
        return server.endpoint_url if server else None

    def target(self) -> AwsTarget:
        return self.target_for(self.outputs().region, self.endpoint_url())

    def _pointed_elsewhere(self, endpoint_url: str) -> bool:
        """Whether ``endpoint_url`` is the emulator this command is pointed at (``AWS_ENDPOINT_URL``)
        and not this state folder's: a teammate using its owner's emulator with the keys the owner
        made for them."""
        return endpoint_url == os.environ.get("AWS_ENDPOINT_URL") and endpoint_url != self.emulator_endpoint()

    def _own_emulator(self) -> str | None:
        """This state folder's own local stack (its identity), when it has one (not a joined one)."""
        server = running_server(self.local_state)
        if server is not None and server.pid == JOINED:
            return None
        identity = self.local_state.identity(create=False)
        return identity.id if identity else None

    def emulator_at(self, endpoint_url: str) -> str | None:
        """Which local stack answers at ``endpoint_url`` (asked once per command)."""
        if endpoint_url not in self._emulators:
            own = self._own_emulator()
            if own is not None and endpoint_url == self.emulator_endpoint():
                self._emulators[endpoint_url] = own
            else:
                self._emulators[endpoint_url] = (
                    identity_at(endpoint_url) if is_loopback(endpoint_url) else None
                )
        return self._emulators[endpoint_url]

    def locate(self, record: RunRecord) -> str:
        """Where the emulator that ran a local run answers now: this state folder's own local stack
        (on whatever port it runs), the one joined or pointed at (a teammate's view of its owner's
        stack), or where it was; a one-line error when it answers nowhere."""
        assert record.endpoint_url is not None, "only local runs are located"
        if record.emulator is None:  # recorded before local stacks had an identity: by its endpoint
            if record.endpoint_url == self.emulator_endpoint() or (
                self._pointed_elsewhere(record.endpoint_url) and responds(record.endpoint_url)
            ):
                return record.endpoint_url
            raise RunnerError(
                f"run {record.run_id} ran on the local emulator at {record.endpoint_url}, which is no "
                "longer running, and its jobs went with it; `runner runs --prune` forgets such runs"
            )
        if record.emulator == self._own_emulator():
            endpoint = self.emulator_endpoint()
            if endpoint is None:
                raise RunnerError(
                    f"run {record.run_id} ran on this machine's local stack, which is not running; "
                    "`runner local up` starts it again with every run it holds"
                )
            return endpoint
        candidates = [self.emulator_endpoint(), os.environ.get("AWS_ENDPOINT_URL"), record.endpoint_url]
        for endpoint in dict.fromkeys(c.rstrip("/") for c in candidates if c):
            if self.emulator_at(endpoint) == record.emulator:
                return endpoint
        raise RunnerError(
            f"run {record.run_id} ran on another local stack ({record.emulator}, last at "
            f"{record.endpoint_url}), which answers nowhere now; its owner starts it with `runner local up` "
            "(a stack that was reset is gone: `runner runs --prune` forgets its runs)"
        )

    def emulator_gone(self, record: RunRecord) -> str | None:
        """Why a local run can never be reached again (its local stack was reset, or its emulator
        stopped before local stacks kept their data), or None."""
        if record.endpoint_url is None or (record.emulator and record.emulator == self._own_emulator()):
            return None  # on AWS, or on this folder's local stack, which keeps it while stopped
        try:
            self.locate(record)
        except RunnerError:
            where = record.emulator or record.endpoint_url
            return f"ran on a local stack that is gone ({where})"
        return None

    def target_for(self, region: str, endpoint_url: str | None) -> AwsTarget:
        """Real AWS, or the emulator: this state folder's signed with its keys; another one (the
        one AWS_ENDPOINT_URL points at) with the keys of the environment, as any SDK would."""
        if endpoint_url is None or self._pointed_elsewhere(endpoint_url):
            # the standard chain: that endpoint, those keys
            emulator = self.emulator_at(endpoint_url) if endpoint_url else None
            return AwsTarget(region, None, None, emulator=emulator)
        return AwsTarget(
            region, endpoint_url, self.local_state.credentials(), emulator=self.emulator_at(endpoint_url)
        )

    def home(self) -> StackTarget:
        """The stack the options name, and where to reach it."""
        return StackTarget(self.outputs(), self.target())

    @property
    def overrides_stack(self) -> bool:
        """Whether the options name a stack (for a retry: run it there, not where the run went)."""
        return bool(self.stack_option or self.outputs_file)

    @property
    def shared(self) -> SharedRecords:
        """The one way this command reaches shared run records (its clients and caller cached)."""
        shared = self.store.shared
        assert isinstance(shared, SharedRecords)
        return shared

    def shared_records(self) -> RunRecords | None:
        """The run records of the stack the options name, when it has a data bucket."""
        return self.shared.home()

    def identity(self) -> dict[str, str] | None:
        """Who is calling: {"arn", "user"} of the caller identity where the stack is."""
        home = self.home()
        return self.shared.caller(home.outputs.region, home.target.endpoint_url)

    def service(self) -> RunService:
        return RunService(self.store, self.target_for, self.locate, self.home)


pass_context = click.make_pass_decorator(CliContext)


@dataclass
class SharedRecords:
    """How the store reaches run records in a stack's data bucket, from the command's options."""

    context: CliContext
    _clients: dict[tuple[str, str | None], Any] = field(default_factory=dict)
    _who: dict[str, str] | None = None

    def _s3(self, region: str, endpoint_url: str | None) -> Any:
        key = (region, endpoint_url)
        if key not in self._clients:
            self._clients[key] = self.context.target_for(region, endpoint_url).client("s3")
        return self._clients[key]

    def records_for(self, record: RunRecord) -> RunRecords | None:
        data = record.stack_outputs.data
        if data is None:
            return None
        return RunRecords(self._s3(record.outputs["region"], self._endpoint_of(record)), data)

    def home(self) -> RunRecords | None:
        try:
            home = self.context.home()
        except RunnerError:
            return None  # no stack to look in: the run is only looked for here
        if home.outputs.data is None:
            return None
        return RunRecords(self._s3(home.outputs.region, home.target.endpoint_url), home.outputs.data)

    def who(self, record: RunRecord) -> dict[str, str] | None:
        return self.caller(record.outputs["region"], self._endpoint_of(record))

    def _endpoint_of(self, record: RunRecord) -> str | None:
        """Where a run's records are now (a local run's emulator may have moved); where it was
        when it is nowhere now (the call then says it cannot be reached)."""
        if record.endpoint_url is None:
            return None
        try:
            return self.context.locate(record)
        except RunnerError:
            return record.endpoint_url

    def caller(self, region: str, endpoint_url: str | None) -> dict[str, str] | None:
        if self._who is None:
            target = self.context.target_for(region, endpoint_url)
            try:
                with aws_errors():
                    arn = str(target.client("sts").get_caller_identity()["Arn"])
            except RunnerError:
                return None
            self._who = {"arn": arn, "user": short_user(arn)}
        return self._who


def short_user(arn: str) -> str:
    """A caller identity's short name: an IAM user's name, an assumed role's session name."""
    return arn.rsplit("/", 1)[-1] or arn
