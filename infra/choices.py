"""The choices a stack's settings offer that the runner's output contract shares (no Pulumi import,
so the runner's CLI reads them without loading the Pulumi SDK)."""

from __future__ import annotations

from typing import Literal, get_args

PurchaseModel = Literal["spot", "on-demand"]
PURCHASE_MODELS: tuple[PurchaseModel, ...] = get_args(PurchaseModel)
# What the job role may do under the data prefix.
DataAccess = Literal["read", "read-write"]
DATA_ACCESS: tuple[DataAccess, ...] = get_args(DataAccess)
# Where the runner keeps each run's record beside its data, and the stack's index of runs: the
# users' to write, never the job role's (infra/policies.py denies it).
RUN_RECORD_NAME = "run.json"
RUN_INDEX_FOLDER = "index/"
