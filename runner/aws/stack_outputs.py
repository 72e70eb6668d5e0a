"""The stack-output contract between the Pulumi program and the runner, and where it is read.

Outputs come from a JSON file (as ``pulumi stack output --json`` prints) or from the Pulumi CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from infra.choices import DATA_ACCESS, PURCHASE_MODELS, DataAccess, PurchaseModel
from runner.errors import StackOutputsError
from runner.json_files import JsonFileError, read_json, type_name


class Kind(Enum):
    """What a contract value must be."""

    TEXT = "a non-empty string"
    COUNT = "a whole number >= 1"
    PURCHASE_MODEL = " or ".join(repr(model) for model in PURCHASE_MODELS)
    ARNS = "a non-empty list of ARNs"


# The contract, declared once: (output key, StackOutputs attribute, kind), in export order.
CONTRACT: tuple[tuple[str, str, Kind], ...] = (
    ("region", "region", Kind.TEXT),
    ("jobQueueName", "job_queue_name", Kind.TEXT),
    ("jobQueueArn", "job_queue_arn", Kind.TEXT),
    ("jobDefinitionName", "job_definition_name", Kind.TEXT),
    ("jobDefinitionArn", "job_definition_arn", Kind.TEXT),
    ("computeEnvironmentArns", "compute_environment_arns", Kind.ARNS),
    ("jobRoleArn", "job_role_arn", Kind.TEXT),
    ("logGroupName", "log_group_name", Kind.TEXT),
    ("purchaseModel", "purchase_model", Kind.PURCHASE_MODEL),
    ("maxVcpus", "max_vcpus", Kind.COUNT),
    ("jobVcpus", "job_vcpus", Kind.COUNT),
    ("jobMemoryMiB", "job_memory_mib", Kind.COUNT),
)
CONTRACT_KEYS: tuple[str, ...] = tuple(key for key, _, _ in CONTRACT)
# Outputs a stack may lack (deployed by an older program); checked when present.
COST_MODEL_KEY = "costModel"
DATA_KEY = "data"
# What tasks run (job.image, or the image the stack built, by digest); informational.
JOB_IMAGE_KEY = "jobImage"
COST_MODEL_PRICES = ("usdPerVcpuHour", "onDemandUsdPerVcpuHour", "spotUsdPerVcpuHour")

Run = Callable[..., subprocess.CompletedProcess]


@dataclass(frozen=True)
class DataLocation:
    """The stack's data bucket: tasks read under ``s3://bucket/prefix`` and, with ``read-write``
    access, write there too."""

    bucket: str
    prefix: str
    access: DataAccess
    # Further s3:// locations the job role may read (``data.inputs``): where staged inputs may live.
    inputs: tuple[str, ...] = ()

    @property
    def writable(self) -> bool:
        return self.access == "read-write"

    @property
    def readable(self) -> tuple[str, ...]:
        """Every ``s3://`` address prefix the job role may read."""
        return (self.uri(), *self.inputs)

    def uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{''.join(parts)}"

    def key(self, *parts: str) -> str:
        return f"{self.prefix}{''.join(parts)}"

    def to_json(self) -> dict[str, Any]:
        located: dict[str, Any] = {"bucket": self.bucket, "prefix": self.prefix, "access": self.access}
        if self.inputs:
            located["inputs"] = list(self.inputs)
        return located


@dataclass(frozen=True)
class StackOutputs:
    """What the runner needs from a deployed stack."""

    stack: str
    region: str
    job_queue_name: str
    job_queue_arn: str
    job_definition_name: str
    job_definition_arn: str
    compute_environment_arns: tuple[str, ...]
    job_role_arn: str
    log_group_name: str
    purchase_model: PurchaseModel
    max_vcpus: int
    job_vcpus: int
    job_memory_mib: int
    # Exported by stacks deployed since the cost model; older ones fall back to list prices.
    cost_model: dict[str, Any] | None = None
    # Exported since per-task data; None for a stack without a data bucket (or an older program).
    data: DataLocation | None = None
    # Exported since stacks could build their image; None from an older program.
    job_image: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The outputs by their contract names, as ``pulumi stack output --json`` prints them."""
        contract: dict[str, Any] = {}
        for key, attribute, _ in CONTRACT:
            value = getattr(self, attribute)
            contract[key] = list(value) if isinstance(value, tuple) else value
        if self.cost_model is not None:
            contract[COST_MODEL_KEY] = self.cost_model
        if self.data is not None:
            contract[DATA_KEY] = self.data.to_json()
        if self.job_image is not None:
            contract[JOB_IMAGE_KEY] = self.job_image
        return contract


def _contract_value(kind: Kind, value: Any) -> Any:
    """The value in its contract type, or None when it is not of ``kind``."""
    if kind is Kind.TEXT:
        return value if isinstance(value, str) and value.strip() else None
    if kind is Kind.COUNT:
        # Pulumi hands numbers over as floats; 32.0 is the whole number 32.
        whole = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
        return int(value) if whole and value >= 1 else None
    if kind is Kind.PURCHASE_MODEL:
        return value if value in PURCHASE_MODELS else None
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    return None


def parse_outputs(stack: str, raw: Any, source: str) -> StackOutputs:
    """Check ``raw`` against the typed contract; every problem is named at once.

    A missing key means the stack is not deployed (or deployed by an older program); keys beyond
    the contract are the stack's own business and are ignored.
    """
    if not isinstance(raw, Mapping):
        raise StackOutputsError(f"{source} is not a JSON object of stack outputs (got {type_name(raw)})")
    missing = [key for key in CONTRACT_KEYS if key not in raw]
    if missing:
        raise StackOutputsError(
            f"stack '{stack}' outputs lack {', '.join(missing)}; "
            f"run `pulumi up -s {stack}` first (read from {source})"
        )
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, attribute, kind in CONTRACT:
        values[attribute] = _contract_value(kind, raw[key])
        if values[attribute] is None:
            problems.append(f"{key} should be {kind.value}, got {json.dumps(raw[key])[:60]}")
    cost_model = raw.get(COST_MODEL_KEY)
    if cost_model is not None and not _is_cost_model(cost_model):
        problems.append(
            f"costModel should be an object with usdPerVcpuHour, got {json.dumps(cost_model)[:60]}"
        )
    data, data_problem = _data_location(raw.get(DATA_KEY))
    if data_problem:
        problems.append(data_problem)
    if problems:
        raise StackOutputsError(
            f"{source}: {'; '.join(problems)}; save the outputs again with "
            f"`pulumi stack output --json -s {stack}`"
        )
    image = raw.get(JOB_IMAGE_KEY)
    return StackOutputs(
        stack,
        **values,
        cost_model=dict(cost_model) if cost_model else None,
        data=data,
        job_image=image if isinstance(image, str) and image else None,
    )


def _data_location(value: Any) -> tuple[DataLocation | None, str | None]:
    """The ``data`` output (absent or null: no data bucket), or a problem saying what was expected."""
    if value is None:
        return None, None
    fields = value if isinstance(value, Mapping) else {}
    bucket, prefix, access = fields.get("bucket"), fields.get("prefix", ""), fields.get("access")
    inputs = fields.get("inputs") or []
    good_inputs = isinstance(inputs, list) and all(
        isinstance(i, str) and i.startswith("s3://") for i in inputs
    )
    if (
        isinstance(bucket, str)
        and bucket
        and isinstance(prefix, str)
        and access in DATA_ACCESS
        and good_inputs
    ):
        return DataLocation(bucket, prefix, access, tuple(inputs)), None
    expected = f"{{bucket, prefix, access ({' or '.join(DATA_ACCESS)}), inputs (s3:// addresses)}} or null"
    return None, f"data should be {expected}, got {json.dumps(value)[:60]}"


def _is_cost_model(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(value.get(k), (int, float)) and not isinstance(value.get(k), bool) and value[k] >= 0
        for k in COST_MODEL_PRICES
    )


def outputs_from_file(path: Path, stack: str) -> StackOutputs:
    """Outputs saved with ``pulumi stack output --json > FILE`` (any shell's encoding)."""
    fix = f"save it again with `pulumi stack output --json -s {stack} > {path}`"
    try:
        raw = read_json(path, fix)
    except FileNotFoundError:
        raise StackOutputsError(
            f"outputs file {path} does not exist; "
            f"save it with `pulumi stack output --json -s {stack} > {path}`"
        ) from None
    except JsonFileError as err:
        raise StackOutputsError(str(err)) from None
    return parse_outputs(stack, raw, str(path))


def find_project_dir(start: Path | None = None) -> Path:
    """``RUNNER_PROJECT_DIR``, else the nearest ancestor of ``start`` holding Pulumi.yaml."""
    configured = os.environ.get("RUNNER_PROJECT_DIR")
    if configured:
        path = Path(configured).expanduser()
        if not (path / "Pulumi.yaml").is_file():
            raise StackOutputsError(
                f"RUNNER_PROJECT_DIR={configured} holds no Pulumi.yaml; point it at the project"
            )
        return path
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise StackOutputsError(
        "no Pulumi.yaml here or above; run inside the project, set RUNNER_PROJECT_DIR, or pass --outputs FILE"
    )


def _pulumi(args: list[str], project_dir: Path, run: Run) -> str:
    if shutil.which("pulumi") is None:
        raise StackOutputsError(
            "the `pulumi` CLI is not on PATH; install it, or pass --outputs FILE "
            "(saved with `pulumi stack output --json`), or use --local"
        )
    try:
        done = run(
            ["pulumi", *args, "--non-interactive"],
            cwd=project_dir,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            check=False,
        )
    except OSError as err:
        raise StackOutputsError(f"cannot run pulumi: {err}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit code {done.returncode}"
        raise StackOutputsError(f"`pulumi {' '.join(args)}` failed: {reason.strip()}")
    return done.stdout


def selected_stack(project_dir: Path, run: Run = subprocess.run) -> str:
    """The stack ``pulumi stack select`` chose in this project."""
    name = _pulumi(["stack", "--show-name"], project_dir, run).strip()
    if not name:
        raise StackOutputsError("no Pulumi stack is selected; pass --stack NAME or set RUNNER_STACK")
    return name


def outputs_from_pulumi(stack: str, project_dir: Path, run: Run = subprocess.run) -> StackOutputs:
    """``pulumi stack output --json --show-secrets --stack STACK`` in the project directory."""
    try:
        text = _pulumi(["stack", "output", "--json", "--show-secrets", "--stack", stack], project_dir, run)
    except StackOutputsError as err:
        if "no stack named" in str(err).lower() or "not found" in str(err).lower():
            raise StackOutputsError(
                f"unknown stack '{stack}'; list stacks with `pulumi stack ls`, "
                f"create it with `pulumi stack init {stack}` and `pulumi up`"
            ) from None
        raise
    try:
        raw = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise StackOutputsError(f"pulumi printed non-JSON outputs for stack '{stack}'") from None
    return parse_outputs(stack, raw, f"`pulumi stack output -s {stack}`")
