"""Cost arithmetic: both purchase models, reclaimed attempts, the stack's model or an override."""

from __future__ import annotations

import pytest

from runner.analysis.cost import add, estimate, reprice, stack_prices
from runner.analysis.summary import summarize
from tests.fakes import PagingBatch

COST_MODEL = {
    "purchaseModel": "spot",
    "usdPerVcpuHour": 0.02,
    "onDemandUsdPerVcpuHour": 0.05,
    "spotUsdPerVcpuHour": 0.02,
    "hourlyBudgetUsd": None,
}


@pytest.mark.parametrize(
    ("outputs", "override", "expected"),
    [
        (
            {"purchaseModel": "spot", "costModel": COST_MODEL},
            None,
            (0.02, "on-demand", 0.05, "the stack's costModel"),
        ),
        (
            {"purchaseModel": "on-demand", "costModel": {**COST_MODEL, "usdPerVcpuHour": 0.05}},
            None,
            (0.05, "spot", 0.02, "the stack's costModel"),
        ),
        (
            {"purchaseModel": "spot"},
            None,
            (0.017, "on-demand", 0.0425, "list prices; redeploy the stack for its costModel"),
        ),
        (
            {"purchaseModel": "spot", "costModel": COST_MODEL},
            0.5,
            (0.5, "on-demand", 0.05, "--vcpu-hour-price"),
        ),
    ],
)
def test_prices_come_from_the_stack_then_list_prices_and_an_override_wins(outputs, override, expected):
    prices = stack_prices(outputs["purchaseModel"], outputs.get("costModel"), override)
    assert (
        prices.usd_per_vcpu_hour,
        prices.alternative_model,
        prices.alternative_price,
        prices.source,
    ) == expected


@pytest.mark.parametrize(
    ("model", "hours", "wasted", "usd", "wasted_usd", "alternative_usd"),
    [
        ("spot", 100.0, 0.0, 2.0, 0.0, 5.0),
        ("spot", 100.0, 10.0, 2.0, 0.2, 4.5),  # on-demand would not have lost the reclaimed 10 h
        ("on-demand", 100.0, 0.0, 5.0, 0.0, 2.0),
        ("on-demand", 0.0, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_estimate_on_each_model_with_reclaimed_attempts(
    model, hours, wasted, usd, wasted_usd, alternative_usd
):
    prices = stack_prices(
        model,
        {**COST_MODEL, "purchaseModel": model, "usdPerVcpuHour": 0.02 if model == "spot" else 0.05},
    )
    cost = estimate(hours, wasted, prices, "every attempt of every task")
    assert (cost.estimated_usd, cost.wasted_usd, cost.alternative_usd) == pytest.approx(
        (usd, wasted_usd, alternative_usd)
    )
    assert cost.basis == "estimate: every attempt of every task x the stack's costModel"
    assert cost.to_json()["alternative"]["purchaseModel"] == ("on-demand" if model == "spot" else "spot")


def test_a_run_and_its_retry_add_up_and_reprice_keeps_the_hours():
    prices = stack_prices("spot", COST_MODEL)
    total = add(estimate(10, 1, prices, "x"), estimate(5, 0, prices, "x"))
    assert (total.vcpu_hours, total.estimated_usd, total.wasted_usd) == pytest.approx((15, 0.3, 0.02))
    repriced = reprice(total, stack_prices("spot", COST_MODEL, 1.0), 1)
    assert (repriced.estimated_usd, repriced.basis) == (15.0, "estimate: x x --vcpu-hour-price")


def test_every_attempt_counts_reclaimed_attempts_in_the_vcpu_hours():
    # Two failed Spot tasks per 1,000, each with a reclaimed 600 s attempt before their last one.
    batch = PagingBatch([1_000], fail_every=500)
    latest = summarize(batch, batch.shards, prices=stack_prices("spot"))
    every = summarize(batch, batch.shards, prices=stack_prices("spot"), all_attempts=True)
    reclaimed_hours = 600 / 3600  # logical 0 is the one Spot failure (500 exited non-zero)
    assert every.vcpu_hours == pytest.approx(latest.vcpu_hours)  # failed tasks' attempts are in both
    assert latest.cost.wasted_usd == pytest.approx(every.cost.wasted_usd)
    assert latest.spot.vcpu_hours >= reclaimed_hours
    assert every.cost.basis.startswith("estimate: every attempt of every task x ")
