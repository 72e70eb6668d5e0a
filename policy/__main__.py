"""The batch-stacks guardrails policy pack: `pulumi preview --policy-pack policy`."""

from batch_guardrails import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="batch-stacks-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=list(POLICIES),
)
