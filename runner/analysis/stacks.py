"""Every stack of the project side by side: capacity, job size, retries, prices and burn rates.

Read from the ``Pulumi.<stack>.yaml`` files through the same settings code the program uses, so
what is shown is what ``pulumi up`` would build. A stack file with a bad value is that stack's
one-line error; the others still show.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.stack_files import StackFileError, load_stack_config, stack_names
from runner.errors import RunnerError

if TYPE_CHECKING:
    from infra.settings import StackSettings


@dataclass(frozen=True)
class Workload:
    """How much work to estimate: N tasks of M minutes each."""

    tasks: int
    minutes: float


@dataclass(frozen=True)
class StackRow:
    stack: str
    settings: StackSettings | None = None
    error: str | None = None

    @property
    def usd_per_vcpu_hour(self) -> float | None:
        if self.settings is None:
            return None
        return self.settings.cost.usd_per_vcpu_hour(self.settings.compute.purchase_model)

    def estimate(self, work: Workload) -> dict[str, float] | None:
        """vCPU-hours, wall time (waves of tasks at full scale) and cost of ``work`` on this stack."""
        if self.settings is None or self.usd_per_vcpu_hour is None:
            return None
        job, compute = self.settings.job, self.settings.compute
        vcpu_hours = work.tasks * job.vcpus * work.minutes / 60
        at_once = max(1, compute.max_vcpus // job.vcpus)
        return {
            "vcpuHours": vcpu_hours,
            "wallMinutes": math.ceil(work.tasks / at_once) * work.minutes,
            "estimatedUsd": vcpu_hours * self.usd_per_vcpu_hour,
        }

    def to_json(self, work: Workload | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {"stack": self.stack, "error": self.error}
        names = (
            "purchaseModel",
            "platform",
            "allocationStrategy",
            "minVcpus",
            "maxVcpus",
            "jobVcpus",
            "jobMemoryMiB",
            "retryAttempts",
            "runnableTimeoutMinutes",
            "usdPerVcpuHour",
            "maxBurnUsdPerHour",
            "idleUsdPerHour",
            "hourlyBudgetUsd",
        )
        row.update(dict.fromkeys(names))
        s = self.settings
        if s is not None and self.usd_per_vcpu_hour is not None:
            price = self.usd_per_vcpu_hour
            ec2 = not s.compute.fargate
            row.update(
                purchaseModel=s.compute.purchase_model,
                platform=s.compute.platform,
                allocationStrategy=s.compute.allocation_strategy if ec2 else None,
                minVcpus=s.compute.min_vcpus if ec2 else 0,
                maxVcpus=s.compute.max_vcpus,
                jobVcpus=s.job.vcpus,
                jobMemoryMiB=s.job.memory_mib,
                retryAttempts=s.job.retry_attempts,
                runnableTimeoutMinutes=s.queue.runnable_timeout_minutes,
                usdPerVcpuHour=price,
                maxBurnUsdPerHour=s.compute.max_vcpus * price,
                idleUsdPerHour=(s.compute.min_vcpus if ec2 else 0) * price,
                hourlyBudgetUsd=s.cost.hourly_budget_usd,
            )
        if work is not None:
            row["estimate"] = self.estimate(work)
        return row


def read_stack(project_dir: Path, stack: str) -> StackRow:
    """One stack's settings, or its problems joined into one line.

    The settings code is the program's, which loads the Pulumi SDK: imported here, when needed.
    """
    from infra.settings import PROJECT, SettingsError, parse_settings

    try:
        config = load_stack_config(project_dir, stack)
    except StackFileError as err:
        return StackRow(stack, error=str(err))

    def read(section: str) -> Any:
        value = config.get(f"{PROJECT}:{section}")
        if value is None:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # a plain string where an object belongs: the settings say so

    try:
        return StackRow(stack, parse_settings(stack, read, config.keys()))
    except SettingsError as err:
        lines = str(err).splitlines()
        more = (
            f" (and {len(lines) - 1} more; `runner local up --stack {stack}` lists them)"
            if len(lines) > 1
            else ""
        )
        return StackRow(stack, error=f"Pulumi.{stack}.yaml: {lines[0]}{more}")


def read_stacks(project_dir: Path) -> list[StackRow]:
    names = stack_names(project_dir)
    if not names:
        raise RunnerError(f"no Pulumi.<stack>.yaml files in {project_dir}")
    return [read_stack(project_dir, name) for name in names]
