"""What a run cost, as an estimate with its basis, and what it would have cost the other way.

Prices come from the stack's ``costModel`` output (its settings' ``batch-stacks:cost``), from list
prices for stacks deployed before it existed, or from ``--vcpu-hour-price``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

# Only for stacks that predate the costModel output: the settings' own defaults.
LIST_ON_DEMAND_USD_PER_VCPU_HOUR = 0.0425
LIST_SPOT_USD_PER_VCPU_HOUR = 0.017
OTHER_MODEL = {"spot": "on-demand", "on-demand": "spot"}


@dataclass(frozen=True)
class Prices:
    purchase_model: str
    usd_per_vcpu_hour: float
    on_demand: float
    spot: float
    source: str

    @property
    def alternative_model(self) -> str:
        return OTHER_MODEL.get(self.purchase_model, "spot")

    @property
    def alternative_price(self) -> float:
        return self.spot if self.alternative_model == "spot" else self.on_demand


def stack_prices(
    model: str, cost_model: Mapping[str, Any] | None = None, override: float | None = None
) -> Prices:
    """A stack's prices from its purchase model and ``costModel`` output (list prices without one);
    ``override`` (``--vcpu-hour-price``) replaces this stack's own."""
    if cost_model:
        on_demand, spot = float(cost_model["onDemandUsdPerVcpuHour"]), float(cost_model["spotUsdPerVcpuHour"])
        own, source = float(cost_model["usdPerVcpuHour"]), "the stack's costModel"
    else:
        on_demand, spot = LIST_ON_DEMAND_USD_PER_VCPU_HOUR, LIST_SPOT_USD_PER_VCPU_HOUR
        own = spot if model == "spot" else on_demand
        source = "list prices; redeploy the stack for its costModel"
    if override is not None:
        own, source = override, "--vcpu-hour-price"
    return Prices(model, own, on_demand, spot, source)


@dataclass(frozen=True)
class CostEstimate:
    """An estimate: vCPU-hours x price, what reclaimed attempts wasted, and the other model's cost."""

    purchase_model: str
    usd_per_vcpu_hour: float
    vcpu_hours: float
    estimated_usd: float
    wasted_usd: float
    basis: str
    alternative_model: str
    alternative_usd_per_vcpu_hour: float
    alternative_usd: float

    def to_json(self) -> dict[str, Any]:
        return {
            "purchaseModel": self.purchase_model,
            "usdPerVcpuHour": self.usd_per_vcpu_hour,
            "vcpuHours": self.vcpu_hours,
            "estimatedUsd": self.estimated_usd,
            "wastedUsd": self.wasted_usd,
            "basis": self.basis,
            "alternative": {
                "purchaseModel": self.alternative_model,
                "usdPerVcpuHour": self.alternative_usd_per_vcpu_hour,
                "estimatedUsd": self.alternative_usd,
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CostEstimate:
        alternative = data.get("alternative") or {}
        return cls(
            purchase_model=data.get("purchaseModel", "on-demand"),
            usd_per_vcpu_hour=data["usdPerVcpuHour"],
            vcpu_hours=data.get("vcpuHours", 0.0),
            estimated_usd=data["estimatedUsd"],
            wasted_usd=data.get("wastedUsd", 0.0),
            basis=data["basis"],
            alternative_model=alternative.get("purchaseModel", "on-demand"),
            alternative_usd_per_vcpu_hour=alternative.get("usdPerVcpuHour", 0.0),
            alternative_usd=alternative.get("estimatedUsd", 0.0),
        )


def estimate(
    vcpu_hours: float, wasted_vcpu_hours: float, prices: Prices, attempts_basis: str
) -> CostEstimate:
    """The run's estimated cost on its stack, and on the other purchase model.

    On on-demand capacity nothing is reclaimed, so a Spot run's alternative leaves out the
    vCPU-hours its reclaimed attempts wasted; the other way round nothing is known to add.
    """
    alternative_hours = vcpu_hours - wasted_vcpu_hours if prices.purchase_model == "spot" else vcpu_hours
    return CostEstimate(
        purchase_model=prices.purchase_model,
        usd_per_vcpu_hour=prices.usd_per_vcpu_hour,
        vcpu_hours=vcpu_hours,
        estimated_usd=vcpu_hours * prices.usd_per_vcpu_hour,
        wasted_usd=wasted_vcpu_hours * prices.usd_per_vcpu_hour,
        basis=f"estimate: {attempts_basis} x {prices.source}",
        alternative_model=prices.alternative_model,
        alternative_usd_per_vcpu_hour=prices.alternative_price,
        alternative_usd=alternative_hours * prices.alternative_price,
    )


def reprice(cost: CostEstimate, prices: Prices, wasted_vcpu_hours: float) -> CostEstimate:
    """The same vCPU-hours at other prices (``--vcpu-hour-price`` on a cached summary)."""
    attempts_basis = cost.basis.removeprefix("estimate: ").split(" x ")[0]
    return estimate(cost.vcpu_hours, wasted_vcpu_hours, prices, attempts_basis)


def add(first: CostEstimate, second: CostEstimate) -> CostEstimate:
    """Two runs' costs together (a run and its retries: each was paid for)."""
    return replace(
        first,
        vcpu_hours=first.vcpu_hours + second.vcpu_hours,
        estimated_usd=first.estimated_usd + second.estimated_usd,
        wasted_usd=first.wasted_usd + second.wasted_usd,
        alternative_usd=first.alternative_usd + second.alternative_usd,
    )
