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

from runner.aws.clients import AwsTarget, aws_errors
from runner.aws.run_records import RunRecords
from runner.aws.stack_outputs import (
    StackOutputs,
    find_project_dir,
    outputs_from_file,
    outputs_from_pulumi,
    selected_stack,
)
from runner.errors import RunnerError
from runner.local.process import responds, running_server
from runner.local.state import LocalState
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

    def emulator_answers(self, endpoint_url: str) -> bool:
        """Whether the emulator at ``endpoint_url`` (where a local run went) is there to ask: this
        state folder's, or the one this command is pointed at."""
        if endpoint_url == self.emulator_endpoint():
            return True
        return self._pointed_elsewhere(endpoint_url) and responds(endpoint_url)

    def target_for(self, region: str, endpoint_url: str | None) -> AwsTarget:
        """Real AWS, or the emulator: this state folder's signed with its keys; another one (the
        one AWS_ENDPOINT_URL points at) with the keys of the environment, as any SDK would."""
        if endpoint_url is None or self._pointed_elsewhere(endpoint_url):
            return AwsTarget(region, None, None)  # the standard chain: that endpoint, those keys
        return AwsTarget(region, endpoint_url, self.local_state.credentials())

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
        return RunService(self.store, self.target_for, self.emulator_answers, self.home)


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
        return RunRecords(self._s3(record.outputs["region"], record.endpoint_url), data)

    def home(self) -> RunRecords | None:
        try:
            home = self.context.home()
        except RunnerError:
            return None  # no stack to look in: the run is only looked for here
        if home.outputs.data is None:
            return None
        return RunRecords(self._s3(home.outputs.region, home.target.endpoint_url), home.outputs.data)

    def who(self, record: RunRecord) -> dict[str, str] | None:
        return self.caller(record.outputs["region"], record.endpoint_url)

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
