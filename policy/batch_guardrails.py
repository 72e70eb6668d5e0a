"""Guardrails any AWS Batch stack can be held to: cost rules for lab stacks, safety rules for prod.

Each rule reads only a resource's inputs (and, for the stack's name, its URN), so it holds for any
Pulumi program that declares these resources, in any language. A rule that cannot decide (a value
that is unknown until the resource exists, during a preview) passes. Everything a rule can be
told is in its ``config_schema``; a key left out takes the default written there.

This module imports nothing but the standard library and ``pulumi_policy``: the pack is usable
without this project's code.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

COMPUTE_ENVIRONMENT = "aws:batch/computeEnvironment:ComputeEnvironment"
JOB_QUEUE = "aws:batch/jobQueue:JobQueue"
JOB_DEFINITION = "aws:batch/jobDefinition:JobDefinition"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
IAM_POLICY = "aws:iam/policy:Policy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

DEFAULT_LAB_STACKS = ["dev", "lab*", "*-lab"]
DEFAULT_PROD_STACKS = ["prod*"]
DEFAULT_VCPU_CAPS = [
    *({"stack": pattern, "maxVcpus": 64} for pattern in DEFAULT_LAB_STACKS),
    {"stack": "*", "maxVcpus": 1024},
]
DEFAULT_TAG_KEYS = ["project", "stack"]
SPOT_TYPES = ("SPOT", "FARGATE_SPOT")
ROOT_USERS = ("root", "0")
# AWS-managed policies that grant everything on a service (or everything at all).
BROAD_MANAGED_POLICY = ("*FullAccess", "AdministratorAccess")

Validator = Callable[[ResourceValidationArgs, ReportViolation], None]


def _patterns(description: str, default: list[str]) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string"},
        "default": default,
        "description": description,
    }


LAB_STACKS = _patterns("Stack names (shell patterns) that are cost-tuned labs.", DEFAULT_LAB_STACKS)
PROD_STACKS = _patterns("Stack names (shell patterns) that are production.", DEFAULT_PROD_STACKS)


def stack_of(urn: str) -> str:
    """The stack a resource belongs to: ``urn:pulumi:<stack>::<project>::<type>::<name>``."""
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:")


def matches(stack: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(stack, pattern) for pattern in patterns)


def setting(args: ResourceValidationArgs, key: str, default: Any) -> Any:
    """A configured value, or the schema's default when the pack runs without configuration."""
    value = args.get_config().get(key)
    return default if value is None else value


def decides_or_passes(check: Validator) -> Validator:
    """A rule that meets a value unknown until the resource exists (a preview) lets it pass."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        try:
            check(args, report)
        except UnknownValueError:
            return

    validate.__doc__ = check.__doc__
    return validate


def for_types(*types: str) -> Callable[[Validator], Validator]:
    """Run the check only on resources of these types; others pass."""

    def decorate(check: Validator) -> Validator:
        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type in types:
                check(args, report)

        validate.__doc__ = check.__doc__
        return decides_or_passes(validate)

    return decorate


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _json(value: Any) -> Any:
    """A JSON document given as a string (as pulumi-aws takes them) or already as an object."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


def _as_list(value: Any) -> list[Any]:
    """A list as given (the engine hands lists over as sequences), a lone value as a list of one."""
    if value is None:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


# --- Compute environments ---------------------------------------------------------------------


@for_types(COMPUTE_ENVIRONMENT)
def _lab_compute_on_spot(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Lab stacks buy Spot capacity that scales to zero."""
    if not matches(stack_of(args.urn), setting(args, "labStacks", DEFAULT_LAB_STACKS)):
        return
    if str(args.props.get("type") or "MANAGED").upper() == "UNMANAGED":
        return  # capacity the owner runs: nothing here to buy
    resources = args.props.get("computeResources")
    if not isinstance(resources, Mapping):
        return  # a managed environment always has them: not known yet
    kind = str(resources.get("type") or "").upper()
    if kind and kind not in SPOT_TYPES:
        report(
            f"a lab stack's compute environment uses {kind} capacity; use SPOT (or FARGATE_SPOT) "
            "and let the job definition retry reclaimed attempts"
        )
    minimum = _number(resources.get("minVcpus"))
    if minimum:
        report(
            f"a lab stack's compute environment keeps minVcpus {minimum:g}; set it to 0 so idle costs nothing"
        )
    desired = _number(resources.get("desiredVcpus"))
    if desired:
        report(
            f"a lab stack's compute environment sets desiredVcpus {desired:g}; leave it unset "
            "(Batch scales from 0 with the queue)"
        )


@for_types(COMPUTE_ENVIRONMENT)
def _max_vcpus_cap(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No compute environment can grow past its stack's cap."""
    resources = args.props.get("computeResources")
    maximum = _number(resources.get("maxVcpus")) if isinstance(resources, Mapping) else None
    if maximum is None:
        return
    stack = stack_of(args.urn)
    for cap in setting(args, "caps", DEFAULT_VCPU_CAPS):
        if fnmatch.fnmatchcase(stack, str(cap["stack"])):
            if maximum > cap["maxVcpus"]:
                report(
                    f"maxVcpus {maximum:g} is above the cap of {cap['maxVcpus']:,} for stack '{stack}' "
                    f"(pattern '{cap['stack']}'); lower compute.maxVcpus or raise the cap in the pack's config"
                )
            return


@for_types(COMPUTE_ENVIRONMENT)
def _prod_keeps_jobs_on_update(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Production updates never kill running jobs."""
    if not matches(stack_of(args.urn), setting(args, "prodStacks", DEFAULT_PROD_STACKS)):
        return
    policy = args.props.get("updatePolicy")
    if isinstance(policy, Mapping) and policy.get("terminateJobsOnUpdate") is True:
        report(
            "a production compute environment sets updatePolicy.terminateJobsOnUpdate: true, so an "
            "update kills running jobs; set it to false (and give jobExecutionTimeoutMinutes time to drain)"
        )


# --- Job definitions --------------------------------------------------------------------------


@for_types(JOB_DEFINITION)
def _job_timeout(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Every attempt has a time limit, so a hung task stops paying."""
    timeout = args.props.get("timeout")
    seconds = _number(timeout.get("attemptDurationSeconds")) if isinstance(timeout, Mapping) else None
    if not seconds:
        report("the job definition has no timeout; set timeout.attemptDurationSeconds (at least 60)")


def _catch_all_exit(rule: Any) -> bool:
    if not isinstance(rule, Mapping) or str(rule.get("action") or "").upper() != "EXIT":
        return False
    patterns = [rule.get(key) for key in ("onExitCode", "onReason", "onStatusReason")]
    given = [pattern for pattern in patterns if pattern is not None]
    return bool(given) and all(pattern == "*" for pattern in given)


@for_types(JOB_DEFINITION)
def _retry_ends_in_exit(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Retries are for lost capacity, not for application errors."""
    strategy = args.props.get("retryStrategy")
    rules = _as_list(strategy.get("evaluateOnExits")) if isinstance(strategy, Mapping) else []
    if not rules or not _catch_all_exit(rules[-1]):
        report(
            "the job definition's retryStrategy does not end in a catch-all EXIT rule, so failures "
            "are retried blindly; retry what you mean (e.g. onStatusReason 'Host EC2*'), then add "
            "{action: EXIT, onReason: '*'} last"
        )


def _container(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    container = _json(args.props.get("containerProperties"))
    return container if isinstance(container, Mapping) else None


@for_types(JOB_DEFINITION)
def _not_root(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Containers run as an unprivileged user."""
    container = _container(args)
    if container is None:
        return  # not a container job, or not known yet
    user = container.get("user")
    if user is None or str(user).strip() in ("", *ROOT_USERS):
        report(
            "the job definition's container runs as root; set containerProperties.user to an "
            "unprivileged user (e.g. 'nobody' or a UID your image owns)"
        )
    if container.get("privileged") is True:
        report("the job definition's container is privileged; drop privileged: true")


# --- Job queues -------------------------------------------------------------------------------


@for_types(JOB_QUEUE)
def _runnable_time_limit(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Jobs that can never be placed are cancelled instead of waiting forever."""
    actions = _as_list(args.props.get("jobStateTimeLimitActions"))
    if not any(isinstance(a, Mapping) and a.get("state") == "RUNNABLE" for a in actions):
        report(
            "the job queue has no jobStateTimeLimitActions for RUNNABLE jobs, so a job no compute "
            "environment can run waits forever; add a CANCEL action for "
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT and the other unschedulable reasons"
        )


# --- IAM --------------------------------------------------------------------------------------


def _broad_managed_policy(arn: Any) -> bool:
    if not isinstance(arn, str) or ":iam::aws:policy/" not in arn:
        return False  # customer-managed: its document is checked where it is declared
    name = arn.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in BROAD_MANAGED_POLICY)


def _too_broad(document: Any) -> str | None:
    """What an Allow statement grants too broadly: s3:* on anything, or * on *."""
    document = _json(document)
    statements = _as_list(document.get("Statement")) if isinstance(document, Mapping) else []
    for statement in statements:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        actions = {str(a).lower() for a in _as_list(statement.get("Action"))}
        resources = {str(r) for r in _as_list(statement.get("Resource"))}
        if "s3:*" in actions:
            return "s3:*"
        if "*" in actions and "*" in resources:
            return "* on *"
    return None


@for_types(ROLE, ROLE_POLICY, ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT, IAM_POLICY)
def _least_privilege(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Roles get no AWS-managed *FullAccess policy and no policy allowing s3:* or * on *."""
    props = args.props
    arns = []
    documents = []
    if args.resource_type == ROLE:
        arns = _as_list(props.get("managedPolicyArns"))
        documents = [p.get("policy") for p in _as_list(props.get("inlinePolicies")) if isinstance(p, Mapping)]
    elif args.resource_type == POLICY_ATTACHMENT:
        arns = [props.get("policyArn")] if _as_list(props.get("roles")) else []
    elif args.resource_type == ROLE_POLICY_ATTACHMENT:
        arns = [props.get("policyArn")]
    else:
        documents = [props.get("policy")]
    for arn in arns:
        if _broad_managed_policy(arn):
            report(
                f"{arn} grants a whole service (or everything) to a role; attach a policy that "
                "names the actions and resources the role needs"
            )
    for document in documents:
        grant = _too_broad(document)
        if grant:
            report(f"a policy allows {grant}; list the actions and the bucket/prefix ARNs the role needs")


# --- Logs and tags ----------------------------------------------------------------------------


@for_types(LOG_GROUP)
def _log_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Logs expire, so a sweep's millions of streams do not cost forever."""
    days = _number(args.props.get("retentionInDays"))
    if not days:
        report("the log group keeps logs forever; set retentionInDays (e.g. 7 in a lab, 365 in prod)")


@for_types(COMPUTE_ENVIRONMENT, JOB_QUEUE, JOB_DEFINITION)
def _cost_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Batch resources carry the cost-allocation tags, so the bill splits by project and stack."""
    tags = args.props.get("tags")
    present = set(tags) if isinstance(tags, Mapping) else set()
    missing = [key for key in setting(args, "tagKeys", DEFAULT_TAG_KEYS) if key not in present]
    if missing:
        report(
            f"the resource lacks the cost-allocation tag(s) {', '.join(missing)}; add them to its tags "
            "(provider defaultTags are not seen by this rule)"
        )


def _schema(**properties: dict[str, Any]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=properties)


def _policy(
    name: str,
    check: Validator,
    *,
    level: EnforcementLevel = EnforcementLevel.MANDATORY,
    schema: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=(check.__doc__ or name).strip(),
        validate=check,
        enforcement_level=level,
        config_schema=schema,
    )


VCPU_CAPS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"stack": {"type": "string"}, "maxVcpus": {"type": "integer", "minimum": 0}},
        "required": ["stack", "maxVcpus"],
    },
    "default": DEFAULT_VCPU_CAPS,
    "description": "Caps on maxVcpus by stack name pattern; the first matching entry applies.",
}
TAG_KEYS = {
    "type": "array",
    "items": {"type": "string"},
    "default": DEFAULT_TAG_KEYS,
    "description": "Tag keys every Batch compute environment, queue and job definition carries.",
}

POLICIES: Sequence[ResourceValidationPolicy] = (
    _policy("batch-lab-compute-on-spot", _lab_compute_on_spot, schema=_schema(labStacks=LAB_STACKS)),
    _policy("batch-max-vcpus-cap", _max_vcpus_cap, schema=_schema(caps=VCPU_CAPS)),
    _policy(
        "batch-prod-keeps-jobs-on-update", _prod_keeps_jobs_on_update, schema=_schema(prodStacks=PROD_STACKS)
    ),
    _policy("batch-job-timeout", _job_timeout),
    _policy("batch-job-retry-ends-in-exit", _retry_ends_in_exit),
    _policy("batch-container-not-root", _not_root),
    _policy("batch-queue-runnable-time-limit", _runnable_time_limit, level=EnforcementLevel.ADVISORY),
    _policy("iam-least-privilege", _least_privilege),
    _policy("logs-finite-retention", _log_retention, level=EnforcementLevel.ADVISORY),
    _policy("batch-cost-allocation-tags", _cost_tags, schema=_schema(tagKeys=TAG_KEYS)),
)
