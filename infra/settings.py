"""Typed, validated stack settings: the one place stack config is read and checked.

Each stack file holds structured objects under the project namespace (``batch-stacks:compute``,
``batch-stacks:job``, ...). They are read once, validated completely before any resource is
declared, and frozen. Every problem is one line naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pulumi

PROJECT = "batch-stacks"

PurchaseModel = Literal["spot", "on-demand"]
Platform = Literal["ec2", "fargate"]
DataAccess = Literal["read", "read-write"]

PURCHASE_MODELS: tuple[str, ...] = ("spot", "on-demand")
PLATFORMS: tuple[str, ...] = ("ec2", "fargate")
# Settings that only mean something when Batch manages EC2 instances.
EC2_ONLY_KEYS = ("minVcpus", "instanceTypes", "allocationStrategy", "bidPercentage")
# Fargate's whole-vCPU sizes and the memory (MiB) each allows: (first, last, step).
FARGATE_MEMORY: dict[int, tuple[int, int, int]] = {
    1: (2048, 8192, 1024),
    2: (4096, 16384, 1024),
    4: (8192, 30720, 1024),
    8: (16384, 61440, 4096),
    16: (32768, 122880, 8192),
}
# BEST_FIT is left out for Spot: it needs a Spot Fleet role this program does not create.
SPOT_STRATEGIES = ("SPOT_PRICE_CAPACITY_OPTIMIZED", "SPOT_CAPACITY_OPTIMIZED", "BEST_FIT_PROGRESSIVE")
ON_DEMAND_STRATEGIES = ("BEST_FIT_PROGRESSIVE", "BEST_FIT")
DEFAULT_STRATEGY = {"spot": "SPOT_PRICE_CAPACITY_OPTIMIZED", "on-demand": "BEST_FIT_PROGRESSIVE"}
# Several current families keep Spot capacity available and let Batch bin-pack well.
DEFAULT_INSTANCE_TYPES = ("c6i", "m6i", "r6i", "c5", "m5", "r5")
# The values CloudWatch Logs accepts for retentionInDays (0 means never expire).
LOG_RETENTION_DAYS = (
    0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
MAX_JOB_VCPUS = 192  # the largest EC2 instances Batch can place a single container on
MIN_MEMORY_MIB = 128
MAX_MEMORY_MIB = 1_572_864  # 1.5 TiB, the largest memory-optimised instances Batch uses
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_INSTANCE_TYPE = re.compile(r"^(optimal|default_x86_64|default_arm64|[a-z0-9]+(\.[a-z0-9]+)?)$")
_TAG_KEY = re.compile(r"^[\w.:/=+@ -]{1,128}$")


class SettingsError(pulumi.RunError):
    """A stack setting is missing or invalid; the message is one line that says what to do.

    A ``pulumi.RunError`` so that ``pulumi up`` prints the message without a traceback.
    """


@dataclass(frozen=True)
class ComputeSettings:
    """The managed compute environment(s) behind the queue."""

    purchase_model: PurchaseModel = "on-demand"
    platform: Platform = "ec2"
    min_vcpus: int = 0
    max_vcpus: int = 16
    instance_types: tuple[str, ...] = DEFAULT_INSTANCE_TYPES
    allocation_strategy: str = DEFAULT_STRATEGY["on-demand"]
    bid_percentage: int | None = None
    on_demand_fallback: bool = False
    terminate_jobs_on_update: bool = False
    update_timeout_minutes: int = 30

    def on_demand_counterpart(self) -> ComputeSettings:
        """The same environment bought on demand: the fallback tried after Spot."""
        return replace(
            self,
            purchase_model="on-demand",
            allocation_strategy=DEFAULT_STRATEGY["on-demand"],
            bid_percentage=None,
            on_demand_fallback=False,
        )

    @property
    def fargate(self) -> bool:
        return self.platform == "fargate"


@dataclass(frozen=True)
class JobSettings:
    """The job definition every submitted job starts from."""

    image: str
    vcpus: int = 1
    memory_mib: int = 2048
    command: tuple[str, ...] = ()
    retry_attempts: int = 3
    timeout_seconds: int = 3600


@dataclass(frozen=True)
class QueueSettings:
    """The job queue in front of the compute environment(s)."""

    priority: int = 1
    runnable_timeout_minutes: int = 30


@dataclass(frozen=True)
class NetworkSettings:
    """Where instances run; empty means the default VPC and a dedicated egress-only group."""

    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    # Fargate only. None means: yes in the default VPC (public subnets, no NAT), no otherwise.
    assign_public_ip: bool | None = None

    @property
    def public_ip(self) -> bool:
        return self.assign_public_ip if self.assign_public_ip is not None else not self.subnet_ids


@dataclass(frozen=True)
class DataSettings:
    """The S3 location jobs may use; no bucket means the job role gets no S3 access."""

    bucket: str | None = None
    prefix: str = ""
    access: DataAccess = "read"


@dataclass(frozen=True)
class LogSettings:
    retention_days: int = 14


@dataclass(frozen=True)
class StackSettings:
    """Everything one stack needs, validated."""

    stack: str
    compute: ComputeSettings
    job: JobSettings
    queue: QueueSettings = field(default_factory=QueueSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    data: DataSettings = field(default_factory=DataSettings)
    logs: LogSettings = field(default_factory=LogSettings)
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def tags(self) -> dict[str, str]:
        """Tags for every resource: project and stack (for cost allocation) plus configured ones."""
        return {**self.extra_tags, "project": PROJECT, "stack": self.stack}


_MISSING = object()


class _Section:
    """Reads one structured config object, rejecting unknown keys before anything else."""

    def __init__(self, name: str, raw: Any, known: Sequence[str]) -> None:
        self.name = f"{PROJECT}:{name}"
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise SettingsError(
                f"{self.name}: expected an object of settings ({', '.join(known)}), got {raw!r}"
            )
        for key in raw:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(known)}"
                raise SettingsError(f"{self.name}.{key}: unknown setting; {hint}")
        self.raw = raw

    def _fail(self, key: str, value: Any, allowed: str) -> SettingsError:
        return SettingsError(f"{self.name}.{key}: {value!r} is not allowed; {allowed}")

    def integer(
        self, key: str, default: Any = _MISSING, *, minimum: int = 0, maximum: int | None = None
    ) -> Any:
        value = self.raw.get(key, default)
        if value is _MISSING:
            raise SettingsError(f"{self.name}.{key} is required (a whole number)")
        if value is None:
            return None
        span = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        is_whole = isinstance(value, int) and not isinstance(value, bool)
        if not is_whole or value < minimum or (maximum is not None and value > maximum):
            raise self._fail(key, value, f"use a whole number {span}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, value, "use true or false")
        return value

    def choice(self, key: str, default: Any, allowed: Sequence[str]) -> Any:
        value = self.raw.get(key, default)
        if value not in allowed:
            raise self._fail(key, value, f"use one of: {', '.join(allowed)}")
        return value

    def text(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        check: Callable[[str], str | None] = lambda _: None,
    ) -> Any:
        value = self.raw.get(key, default)
        if value is _MISSING:
            raise SettingsError(f"{self.name}.{key} is required")
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, value, "use a non-empty string")
        problem = check(value)
        if problem:
            raise self._fail(key, value, problem)
        return value

    def strings(
        self,
        key: str,
        default: tuple[str, ...],
        *,
        pattern: re.Pattern[str] | None = None,
        allowed: str = "use a list of strings",
    ) -> tuple[str, ...]:
        value = self.raw.get(key, default)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise self._fail(key, value, allowed)
        for item in value:
            if not isinstance(item, str) or not item or (pattern and not pattern.match(item)):
                raise self._fail(key, value, allowed)
        return tuple(value)


def _bucket_problem(name: str) -> str | None:
    rules = "use an S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens"
    if not _BUCKET_NAME.match(name) or ".." in name or ".-" in name or "-." in name:
        return rules
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return None
    return rules + ", not an IP address"


def _prefix_problem(prefix: str) -> str | None:
    if prefix.startswith("/") or "*" in prefix or "?" in prefix:
        return "use a key prefix without a leading '/' or wildcards, e.g. 'runs/'"
    return None


def _image_problem(image: str) -> str | None:
    if any(ch.isspace() for ch in image):
        return "use a container image reference such as 123456789012.dkr.ecr.REGION.amazonaws.com/repo:tag"
    return None


def _read_compute(raw: Any) -> ComputeSettings:
    s = _Section(
        "compute",
        raw,
        (
            "purchaseModel", "platform", "minVcpus", "maxVcpus", "instanceTypes", "allocationStrategy",
            "bidPercentage", "onDemandFallback", "terminateJobsOnUpdate", "updateTimeoutMinutes",
        ),
    )  # fmt: skip
    model = s.choice("purchaseModel", "on-demand", PURCHASE_MODELS)
    platform = s.choice("platform", "ec2", PLATFORMS)
    if platform == "fargate":
        for key in EC2_ONLY_KEYS:
            if key in s.raw:
                raise s._fail(key, s.raw[key], "remove it: it only applies to platform: ec2")
    min_vcpus = s.integer("minVcpus", 0, minimum=0, maximum=10_000)
    max_vcpus = s.integer("maxVcpus", 16, minimum=1, maximum=10_000)
    if min_vcpus > max_vcpus:
        raise s._fail("minVcpus", min_vcpus, f"use at most maxVcpus ({max_vcpus})")
    strategies = SPOT_STRATEGIES if model == "spot" else ON_DEMAND_STRATEGIES
    bid = s.integer("bidPercentage", None, minimum=1, maximum=100)
    if bid is not None and model != "spot":
        raise s._fail("bidPercentage", bid, "only set it with purchaseModel: spot")
    fallback = s.boolean("onDemandFallback", False)
    if fallback and model != "spot":
        raise s._fail("onDemandFallback", fallback, "only set it with purchaseModel: spot")
    return ComputeSettings(
        purchase_model=model,
        platform=platform,
        min_vcpus=min_vcpus,
        max_vcpus=max_vcpus,
        instance_types=s.strings(
            "instanceTypes",
            DEFAULT_INSTANCE_TYPES,
            pattern=_INSTANCE_TYPE,
            allowed="use a list of instance types or families, e.g. [c6i, m6i.2xlarge]",
        ),
        allocation_strategy=s.choice("allocationStrategy", DEFAULT_STRATEGY[model], strategies),
        bid_percentage=bid,
        on_demand_fallback=fallback,
        terminate_jobs_on_update=s.boolean("terminateJobsOnUpdate", False),
        update_timeout_minutes=s.integer("updateTimeoutMinutes", 30, minimum=1, maximum=360),
    )


def _read_job(raw: Any, compute: ComputeSettings) -> JobSettings:
    s = _Section(
        "job",
        raw,
        ("image", "vcpus", "memoryMiB", "command", "retryAttempts", "timeoutSeconds"),
    )
    vcpus = s.integer("vcpus", 1, minimum=1, maximum=MAX_JOB_VCPUS)
    if vcpus > compute.max_vcpus:
        # A job larger than the environment's ceiling would sit in RUNNABLE forever.
        raise s._fail("vcpus", vcpus, f"use at most compute.maxVcpus ({compute.max_vcpus})")
    memory = s.integer("memoryMiB", 2048, minimum=MIN_MEMORY_MIB, maximum=MAX_MEMORY_MIB)
    if compute.fargate:
        if vcpus not in FARGATE_MEMORY:
            raise s._fail(
                "vcpus", vcpus, f"with platform fargate use one of {', '.join(map(str, FARGATE_MEMORY))}"
            )
        first, last, step = FARGATE_MEMORY[vcpus]
        if not (first <= memory <= last and (memory - first) % step == 0):
            raise s._fail(
                "memoryMiB",
                memory,
                f"with platform fargate and {vcpus} vCPU use {first} to {last} in steps of {step}",
            )
    return JobSettings(
        image=s.text("image", check=_image_problem),
        vcpus=vcpus,
        memory_mib=memory,
        command=s.strings("command", (), allowed="use a list of strings, e.g. [python, run.py]"),
        retry_attempts=s.integer("retryAttempts", 3, minimum=1, maximum=10),
        timeout_seconds=s.integer("timeoutSeconds", 3600, minimum=60, maximum=14 * 24 * 3600),
    )


def _read_queue(raw: Any) -> QueueSettings:
    s = _Section("queue", raw, ("priority", "runnableTimeoutMinutes"))
    return QueueSettings(
        priority=s.integer("priority", 1, minimum=0, maximum=1000),
        # Batch accepts 600..86400 s for job state time limit actions.
        runnable_timeout_minutes=s.integer("runnableTimeoutMinutes", 30, minimum=10, maximum=1440),
    )


def _read_network(raw: Any, compute: ComputeSettings) -> NetworkSettings:
    s = _Section("network", raw, ("vpcId", "subnetIds", "securityGroupIds", "assignPublicIp"))
    public_ip = s.raw.get("assignPublicIp")
    if public_ip is not None and not isinstance(public_ip, bool):
        raise s._fail("assignPublicIp", public_ip, "use true or false")
    if public_ip is not None and not compute.fargate:
        raise s._fail("assignPublicIp", public_ip, "remove it: it only applies to platform: fargate")
    return NetworkSettings(
        assign_public_ip=public_ip,
        vpc_id=s.text(
            "vpcId",
            None,
            check=lambda v: None if v.startswith("vpc-") else "use a VPC id (vpc-...)",
        ),
        subnet_ids=s.strings(
            "subnetIds", (), pattern=re.compile(r"^subnet-[0-9a-f]+$"),
            allowed="use a list of subnet ids (subnet-...)",
        ),
        security_group_ids=s.strings(
            "securityGroupIds", (), pattern=re.compile(r"^sg-[0-9a-f]+$"),
            allowed="use a list of security group ids (sg-...)",
        ),
    )  # fmt: skip


def _read_data(raw: Any) -> DataSettings:
    s = _Section("data", raw, ("bucket", "prefix", "access"))
    return DataSettings(
        bucket=s.text("bucket", None, check=_bucket_problem),
        prefix=s.text("prefix", None, check=_prefix_problem) or "",
        access=s.choice("access", "read", ("read", "read-write")),
    )


def _read_logs(raw: Any) -> LogSettings:
    s = _Section("logs", raw, ("retentionDays",))
    days = s.integer("retentionDays", 14, minimum=0)
    if days not in LOG_RETENTION_DAYS:
        raise s._fail("retentionDays", days, f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
    return LogSettings(retention_days=days)


def _read_tags(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    name = f"{PROJECT}:tags"
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{name}: {raw!r} is not allowed; use an object of key: value strings")
    for key, value in raw.items():
        if not isinstance(key, str) or not _TAG_KEY.match(key) or key.startswith("aws:"):
            raise SettingsError(
                f"{name}.{key}: not a valid tag key; use 1-128 letters, digits, "
                "spaces or _.:/=+-@, not starting with 'aws:'"
            )
        if not isinstance(value, str) or len(value) > 256:
            raise SettingsError(
                f"{name}.{key}: {value!r} is not allowed; use a string of at most 256 characters"
            )
    return dict(raw)


SECTIONS = ("compute", "job", "queue", "network", "data", "logs", "tags")


def parse_settings(stack: str, read: Callable[[str], Any]) -> StackSettings:
    """Build validated settings from ``read(section)``, which returns the parsed object or None.

    Raises SettingsError (one line) for the first problem found.
    """
    compute = _read_compute(read("compute"))
    return StackSettings(
        stack=stack,
        compute=compute,
        job=_read_job(read("job"), compute),
        queue=_read_queue(read("queue")),
        network=_read_network(read("network"), compute),
        data=_read_data(read("data")),
        logs=_read_logs(read("logs")),
        extra_tags=_read_tags(read("tags")),
    )


def load_settings() -> StackSettings:
    """Read and validate the current stack's settings from Pulumi config."""
    config = pulumi.Config(PROJECT)

    def read(section: str) -> Any:
        try:
            return config.get_object(section)
        except (ValueError, TypeError) as err:
            raise SettingsError(
                f"{PROJECT}:{section}: not valid structured config ({err}); "
                "write it as a YAML object in the stack file"
            ) from None

    return parse_settings(pulumi.get_stack(), read)
