"""Typed, validated stack settings: the one place stack config is read and checked.

Each stack file holds structured objects under the project namespace (``batch-stacks:compute``,
``batch-stacks:job``, ...). They are read once, validated completely before any resource is
declared, and frozen. Every problem is one line naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import pulumi

from infra.choices import DATA_ACCESS, PURCHASE_MODELS, DataAccess, PurchaseModel
from infra.limits import (
    MAX_ATTEMPTS,
    MAX_JOB_VCPUS,
    MAX_MEMORY_MIB,
    MAX_TIMEOUT_SECONDS,
    MIN_ATTEMPTS,
    MIN_MEMORY_MIB,
    MIN_TIMEOUT_SECONDS,
)

PROJECT = "batch-stacks"

Platform = Literal["ec2", "fargate"]
PLATFORMS: tuple[Platform, ...] = get_args(Platform)
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
    0,
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
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


ImagePlatform = Literal["linux/amd64", "linux/arm64"]
IMAGE_PLATFORMS: tuple[ImagePlatform, ...] = get_args(ImagePlatform)


@dataclass(frozen=True)
class ImageBuild:
    """A task image ``pulumi up`` builds from a Dockerfile and pushes to the stack's ECR repository."""

    context: str  # a folder, relative to the project
    dockerfile: str  # relative to the project; default ``<context>/Dockerfile``
    platform: ImagePlatform = "linux/amd64"


@dataclass(frozen=True)
class JobSettings:
    """The job definition every submitted job starts from: an image by reference, or built."""

    image: str | None
    vcpus: int = 1
    memory_mib: int = 2048
    command: tuple[str, ...] = ()
    retry_attempts: int = 3
    timeout_seconds: int = 3600
    build: ImageBuild | None = None


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
    # Other s3://bucket/prefix locations the job role may read: where staged inputs (--input) live.
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogSettings:
    retention_days: int = 14
    # Keep the log group (and the logs in it) when the resource is deleted or replaced.
    retain_on_delete: bool = False


# us-east-1 on-demand list price of c6i/m6i (c6i.xlarge: $0.17/h for 4 vCPUs), November 2026.
DEFAULT_ON_DEMAND_USD_PER_VCPU_HOUR = 0.0425
# Typical Spot savings for these families in AWS's Spot Instance Advisor (60%: pay 40%).
DEFAULT_SPOT_DISCOUNT = 0.6


@dataclass(frozen=True)
class CostSettings:
    """What a vCPU-hour costs on this stack, for estimates and burn rates; and a budget if any."""

    on_demand_usd_per_vcpu_hour: float = DEFAULT_ON_DEMAND_USD_PER_VCPU_HOUR
    spot_discount: float = DEFAULT_SPOT_DISCOUNT
    hourly_budget_usd: float | None = None

    @property
    def spot_usd_per_vcpu_hour(self) -> float:
        return round(self.on_demand_usd_per_vcpu_hour * (1 - self.spot_discount), 6)

    def usd_per_vcpu_hour(self, purchase_model: str) -> float:
        return self.spot_usd_per_vcpu_hour if purchase_model == "spot" else self.on_demand_usd_per_vcpu_hour


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
    cost: CostSettings = field(default_factory=CostSettings)

    @property
    def tags(self) -> dict[str, str]:
        """Tags for every resource: project and stack (for cost allocation) plus configured ones."""
        return {**self.extra_tags, "project": PROJECT, "stack": self.stack}


_MISSING = object()


class Problems:
    """Every problem found in a stack's settings, one line each, so all are reported at once."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def mark(self) -> int:
        """A point to ask later whether anything was found since (``since(mark)``)."""
        return len(self.lines)

    def since(self, mark: int) -> bool:
        return len(self.lines) > mark

    def raise_if_any(self) -> None:
        if self.lines:
            raise SettingsError("\n".join(self.lines))


class _Section:
    """Reads one structured config object; each bad key is recorded and its default used.

    Unknown keys are recorded first, so a misspelling is the first line the user reads.
    """

    def __init__(self, name: str, raw: Any, known: Sequence[str], problems: Problems) -> None:
        self.name = f"{PROJECT}:{name}"
        self.problems = problems
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.add(f"{self.name}: expected an object of settings ({', '.join(known)}), got {raw!r}")
            raw = {}
        for key in raw:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(known)}"
                problems.add(f"{self.name}.{key}: unknown setting; {hint}")
        self.raw = {key: value for key, value in raw.items() if key in known}

    def fail(self, key: str, value: Any, allowed: str) -> None:
        self.problems.add(f"{self.name}.{key}: {value!r} is not allowed; {allowed}")

    def integer(
        self, key: str, default: Any = _MISSING, *, minimum: int = 0, maximum: int | None = None
    ) -> Any:
        value = self.raw.get(key, default)
        if value is _MISSING:
            self.problems.add(f"{self.name}.{key} is required (a whole number)")
            return minimum
        if value is None:
            return None
        span = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        is_whole = isinstance(value, int) and not isinstance(value, bool)
        if not is_whole or value < minimum or (maximum is not None and value > maximum):
            self.fail(key, value, f"use a whole number {span}")
            return minimum if default in (_MISSING, None) else default
        return value

    def number(self, key: str, default: Any, *, minimum: float, maximum: float) -> Any:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value <= maximum:
            self.fail(key, value, f"use a number from {minimum:g} to {maximum:g}")
            return default
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, value, "use true or false")
            return default
        return value

    def choice(self, key: str, default: Any, allowed: Sequence[str]) -> Any:
        value = self.raw.get(key, default)
        if value not in allowed:
            self.fail(key, value, f"use one of: {', '.join(allowed)}")
            return default if default in allowed else allowed[0]
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
            self.problems.add(f"{self.name}.{key} is required")
            return ""
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, value, "use a non-empty string")
            return None if default is _MISSING else default
        problem = check(value)
        if problem:
            self.fail(key, value, problem)
            return None if default is _MISSING else default
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
        if (
            isinstance(value, (str, bytes))
            or not isinstance(value, Sequence)
            or not all(
                isinstance(item, str) and item and not (pattern and not pattern.match(item)) for item in value
            )
        ):
            self.fail(key, value, allowed)
            return default
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


def _read_compute(raw: Any, problems: Problems) -> ComputeSettings:
    s = _Section(
        "compute",
        raw,
        (
            "purchaseModel",
            "platform",
            "minVcpus",
            "maxVcpus",
            "instanceTypes",
            "allocationStrategy",
            "bidPercentage",
            "onDemandFallback",
            "terminateJobsOnUpdate",
            "updateTimeoutMinutes",
        ),
        problems,
    )
    model_ok = problems.mark()
    model = s.choice("purchaseModel", "on-demand", PURCHASE_MODELS)
    model_known = not problems.since(model_ok)
    platform = s.choice("platform", "ec2", PLATFORMS)
    if platform == "fargate":
        for key in EC2_ONLY_KEYS:
            if key in s.raw:
                s.fail(key, s.raw[key], "remove it: it only applies to platform: ec2")
    vcpus_ok = problems.mark()
    min_vcpus = s.integer("minVcpus", 0, minimum=0, maximum=10_000)
    max_vcpus = s.integer("maxVcpus", 16, minimum=1, maximum=10_000)
    if not problems.since(vcpus_ok) and min_vcpus > max_vcpus:
        s.fail("minVcpus", min_vcpus, f"use at most maxVcpus ({max_vcpus})")
    bid = s.integer("bidPercentage", None, minimum=1, maximum=100)
    fallback = s.boolean("onDemandFallback", False)
    if model_known:  # which settings fit depends on the purchase model
        if bid is not None and model != "spot":
            s.fail("bidPercentage", bid, "only set it with purchaseModel: spot")
        if fallback and model != "spot":
            s.fail("onDemandFallback", fallback, "only set it with purchaseModel: spot")
    strategies = SPOT_STRATEGIES if model == "spot" else ON_DEMAND_STRATEGIES
    strategy = (
        s.choice("allocationStrategy", DEFAULT_STRATEGY[model], strategies)
        if model_known
        else DEFAULT_STRATEGY[model]
    )
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
        allocation_strategy=strategy,
        bid_percentage=bid,
        on_demand_fallback=fallback,
        terminate_jobs_on_update=s.boolean("terminateJobsOnUpdate", False),
        update_timeout_minutes=s.integer("updateTimeoutMinutes", 30, minimum=1, maximum=360),
    )


def _read_job(raw: Any, compute: ComputeSettings, compute_ok: bool, problems: Problems) -> JobSettings:
    s = _Section(
        "job",
        raw,
        ("image", "build", "vcpus", "memoryMiB", "command", "retryAttempts", "timeoutSeconds"),
        problems,
    )
    build = _read_build(s.raw.get("build"), problems)
    if build is not None and "image" in s.raw:
        problems.add(
            f"{PROJECT}:job: set either image (a pushed image) or build (one `pulumi up` builds), not both"
        )
    vcpus_ok = problems.mark()
    vcpus = s.integer("vcpus", 1, minimum=1, maximum=MAX_JOB_VCPUS)
    memory = s.integer("memoryMiB", 2048, minimum=MIN_MEMORY_MIB, maximum=MAX_MEMORY_MIB)
    # Checks against the compute settings only mean something when both sides are valid.
    if compute_ok and not problems.since(vcpus_ok):
        if vcpus > compute.max_vcpus:
            # A job larger than the environment's ceiling would sit in RUNNABLE forever.
            s.fail("vcpus", vcpus, f"use at most compute.maxVcpus ({compute.max_vcpus})")
        elif compute.fargate and vcpus not in FARGATE_MEMORY:
            s.fail("vcpus", vcpus, f"with platform fargate use one of {', '.join(map(str, FARGATE_MEMORY))}")
        elif compute.fargate:
            first, last, step = FARGATE_MEMORY[vcpus]
            if not (first <= memory <= last and (memory - first) % step == 0):
                s.fail(
                    "memoryMiB",
                    memory,
                    f"with platform fargate and {vcpus} vCPU use {first} to {last} in steps of {step}",
                )
    return JobSettings(
        image=s.text("image", None if build is not None else _MISSING, check=_image_problem),
        build=build,
        vcpus=vcpus,
        memory_mib=memory,
        command=s.strings("command", (), allowed="use a list of strings, e.g. [python, run.py]"),
        retry_attempts=s.integer("retryAttempts", 3, minimum=MIN_ATTEMPTS, maximum=MAX_ATTEMPTS),
        timeout_seconds=s.integer(
            "timeoutSeconds", 3600, minimum=MIN_TIMEOUT_SECONDS, maximum=MAX_TIMEOUT_SECONDS
        ),
    )


def _relative_path_problem(path: str) -> str | None:
    if path.startswith("/") or ".." in path.split("/"):
        return "use a path inside the project, relative to it, e.g. examples"
    return None


def _read_build(raw: Any, problems: Problems) -> ImageBuild | None:
    if raw is None:
        return None
    s = _Section("job.build", raw, ("context", "dockerfile", "platform"), problems)
    context = s.text("context", check=_relative_path_problem) or "."
    return ImageBuild(
        context=context,
        dockerfile=s.text("dockerfile", f"{context.rstrip('/')}/Dockerfile", check=_relative_path_problem),
        platform=s.choice("platform", "linux/amd64", IMAGE_PLATFORMS),
    )


def _read_queue(raw: Any, problems: Problems) -> QueueSettings:
    s = _Section("queue", raw, ("priority", "runnableTimeoutMinutes"), problems)
    return QueueSettings(
        priority=s.integer("priority", 1, minimum=0, maximum=1000),
        # Batch accepts 600..86400 s for job state time limit actions.
        runnable_timeout_minutes=s.integer("runnableTimeoutMinutes", 30, minimum=10, maximum=1440),
    )


def _read_network(
    raw: Any, compute: ComputeSettings, compute_ok: bool, problems: Problems
) -> NetworkSettings:
    s = _Section("network", raw, ("vpcId", "subnetIds", "securityGroupIds", "assignPublicIp"), problems)
    public_ip = s.raw.get("assignPublicIp")
    if public_ip is not None and not isinstance(public_ip, bool):
        s.fail("assignPublicIp", public_ip, "use true or false")
        public_ip = None
    if public_ip is not None and compute_ok and not compute.fargate:
        s.fail("assignPublicIp", public_ip, "remove it: it only applies to platform: fargate")
    return NetworkSettings(
        assign_public_ip=public_ip,
        vpc_id=s.text(
            "vpcId",
            None,
            check=lambda v: None if v.startswith("vpc-") else "use a VPC id (vpc-...)",
        ),
        subnet_ids=s.strings(
            "subnetIds",
            (),
            pattern=re.compile(r"^subnet-[0-9a-f]+$"),
            allowed="use a list of subnet ids (subnet-...)",
        ),
        security_group_ids=s.strings(
            "securityGroupIds",
            (),
            pattern=re.compile(r"^sg-[0-9a-f]+$"),
            allowed="use a list of security group ids (sg-...)",
        ),
    )


_INPUT_LOCATION = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^*?]*)?$")


def _read_data(raw: Any, problems: Problems) -> DataSettings:
    s = _Section("data", raw, ("bucket", "prefix", "access", "inputs"), problems)
    bucket = s.text("bucket", None, check=_bucket_problem)
    inputs = s.strings(
        "inputs",
        (),
        pattern=_INPUT_LOCATION,
        allowed="use a list of s3://bucket/prefix addresses without wildcards, e.g. [s3://lab-raw/reads/]",
    )
    if inputs and bucket is None:
        s.fail("inputs", list(inputs), "set data.bucket too: inputs are read beside the stack's data")
    return DataSettings(
        bucket=bucket,
        prefix=s.text("prefix", None, check=_prefix_problem) or "",
        access=s.choice("access", "read", DATA_ACCESS),
        inputs=inputs,
    )


def _read_logs(raw: Any, problems: Problems) -> LogSettings:
    s = _Section("logs", raw, ("retentionDays", "retainOnDelete"), problems)
    days = s.integer("retentionDays", 14, minimum=0)
    if days not in LOG_RETENTION_DAYS:
        s.fail("retentionDays", days, f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
        days = 14
    return LogSettings(retention_days=days, retain_on_delete=s.boolean("retainOnDelete", False))


def _read_tags(raw: Any, problems: Problems) -> dict[str, str]:
    if raw is None:
        return {}
    name = f"{PROJECT}:tags"
    if not isinstance(raw, Mapping):
        problems.add(f"{name}: {raw!r} is not allowed; use an object of key: value strings")
        return {}
    tags: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _TAG_KEY.match(key) or key.startswith("aws:"):
            problems.add(
                f"{name}.{key}: not a valid tag key; use 1-128 letters, digits, "
                "spaces or _.:/=+-@, not starting with 'aws:'"
            )
        elif not isinstance(value, str) or len(value) > 256:
            problems.add(f"{name}.{key}: {value!r} is not allowed; use a string of at most 256 characters")
        else:
            tags[key] = value
    return tags


def _read_cost(raw: Any, problems: Problems) -> CostSettings:
    s = _Section("cost", raw, ("onDemandUsdPerVcpuHour", "spotDiscount", "hourlyBudgetUsd"), problems)
    return CostSettings(
        on_demand_usd_per_vcpu_hour=s.number(
            "onDemandUsdPerVcpuHour", DEFAULT_ON_DEMAND_USD_PER_VCPU_HOUR, minimum=0.0001, maximum=100
        ),
        spot_discount=s.number("spotDiscount", DEFAULT_SPOT_DISCOUNT, minimum=0, maximum=0.95),
        hourly_budget_usd=s.number("hourlyBudgetUsd", None, minimum=0.01, maximum=1_000_000),
    )


SECTIONS = ("compute", "job", "queue", "network", "data", "logs", "tags", "cost")
# Keys of other namespaces (aws:region, pulumi:...) belong to providers and the engine.
FOREIGN_NAMESPACES = ("aws", "pulumi")


def unknown_keys(keys: Iterable[str]) -> list[str]:
    """One line per top-level ``batch-stacks:`` key that is not a section (a misspelling)."""
    lines = []
    for key in sorted(keys):
        namespace, _, section = key.partition(":")
        if namespace != PROJECT or section in SECTIONS:
            continue
        close = difflib.get_close_matches(section, SECTIONS, n=1)
        hint = f"did you mean '{PROJECT}:{close[0]}'?" if close else f"allowed: {', '.join(SECTIONS)}"
        lines.append(f"{key}: unknown setting; {hint}")
    return lines


def parse_settings(stack: str, read: Callable[[str], Any], keys: Iterable[str] = ()) -> StackSettings:
    """Build validated settings from ``read(section)``, which returns the parsed object or None.

    ``keys`` are every configured key, to catch a misspelled section. Raises SettingsError
    listing every problem found, one line each (unknown keys first).
    """
    problems = Problems()
    for line in unknown_keys(keys):
        problems.add(line)

    def section(name: str) -> Any:
        try:
            return read(name)
        except SettingsError as err:
            problems.add(str(err))
            return None

    mark = problems.mark()
    compute = _read_compute(section("compute"), problems)
    compute_ok = not problems.since(mark)
    settings = StackSettings(
        stack=stack,
        compute=compute,
        job=_read_job(section("job"), compute, compute_ok, problems),
        queue=_read_queue(section("queue"), problems),
        network=_read_network(section("network"), compute, compute_ok, problems),
        data=_read_data(section("data"), problems),
        logs=_read_logs(section("logs"), problems),
        extra_tags=_read_tags(section("tags"), problems),
        cost=_read_cost(section("cost"), problems),
    )
    problems.raise_if_any()
    return settings


def configured_keys() -> list[str]:
    """Every config key the engine handed the program (the CLI's, else PULUMI_CONFIG's)."""
    from pulumi.runtime import config as runtime_config  # the engine keeps them there, not in Config

    return sorted({*runtime_config.get_config_env(), *runtime_config.CONFIG.get()})


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

    return parse_settings(pulumi.get_stack(), read, configured_keys())
