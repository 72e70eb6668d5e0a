"""The choices a stack's settings offer that the runner's output contract shares (no Pulumi import,
so the runner's CLI reads them without loading the Pulumi SDK)."""

from __future__ import annotations

from typing import Literal, get_args

PurchaseModel = Literal["spot", "on-demand"]
PURCHASE_MODELS: tuple[PurchaseModel, ...] = get_args(PurchaseModel)
# What the job role may do under the data prefix.
DataAccess = Literal["read", "read-write"]
DATA_ACCESS: tuple[DataAccess, ...] = get_args(DataAccess)
