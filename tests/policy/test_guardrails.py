"""The policy pack, without the Pulumi CLI: every validator on what our program declares under the
mock engine (both stacks pass), on mutated copies (each rule fires with its fix), and on resources
shaped as other programs declare them."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc
import pytest
from batch_guardrails import (
    COMPUTE_ENVIRONMENT,
    IAM_POLICY,
    JOB_DEFINITION,
    JOB_QUEUE,
    LOG_GROUP,
    POLICIES,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    stack_of,
)
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, ResourceValidationArgs
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from tests.infra.conftest import PROJECT_DIR, deploy

PACK_DIR = PROJECT_DIR / "policy"
EXAMPLE_CONFIG = json.loads((PACK_DIR / "config.example.json").read_text())
BY_NAME = {policy.name: policy for policy in POLICIES}
Declared = list[tuple[str, str, dict[str, Any]]]  # (type, name, inputs)


def urn(stack: str, resource_type: str, name: str = "r") -> str:
    return f"urn:pulumi:{stack}::batch-stacks::{resource_type}::{name}"


def violations(
    resource_type: str, props: Mapping[str, Any], *, stack: str, config: Mapping[str, Any] | None = None
) -> dict[str, list[str]]:
    """Every policy's messages for one resource (policy name -> messages, only those that fired)."""
    found: dict[str, list[str]] = {}
    for policy in POLICIES:
        policy_config = (config or {}).get(policy.name)
        args = ResourceValidationArgs(
            resource_type,
            props,
            urn(stack, resource_type),
            "r",
            None,  # type: ignore[arg-type]
            None,
            config=policy_config if isinstance(policy_config, dict) else {},
        )
        messages: list[str] = []
        policy.validate(args, lambda message, _urn=None, sink=messages: sink.append(message))
        if messages:
            found[policy.name] = messages
    return found


@pytest.fixture(scope="module")
def declared() -> dict[str, Declared]:
    """What our program declares for each stack, as the engine hands it to a policy pack."""
    stacks = {}
    for stack in ("dev", "prod"):
        resources = deploy(stack).mocks.resources
        stacks[stack] = [(r.type, r.name, r.inputs) for r in resources if r.type.startswith("aws:")]
    return stacks


def one(resources: Declared, resource_type: str) -> dict[str, Any]:
    (inputs,) = [inputs for typ, _, inputs in resources if typ == resource_type]
    return copy.deepcopy(inputs)


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("config", [None, EXAMPLE_CONFIG], ids=["defaults", "example-config"])
def test_our_program_passes_every_rule(declared: dict[str, Declared], stack: str, config):
    checked = set()
    for resource_type, name, inputs in declared[stack]:
        assert violations(resource_type, inputs, stack=stack, config=config) == {}, name
        checked.add(resource_type)
    assert {COMPUTE_ENVIRONMENT, JOB_QUEUE, JOB_DEFINITION, ROLE, LOG_GROUP} <= checked


def _spot_to_on_demand(ce: dict[str, Any]) -> None:
    ce["computeResources"]["type"] = "EC2"


def _min_vcpus(ce: dict[str, Any]) -> None:
    ce["computeResources"]["minVcpus"] = 8


def _desired(ce: dict[str, Any]) -> None:
    ce["computeResources"]["desiredVcpus"] = 4


def _huge(ce: dict[str, Any]) -> None:
    ce["computeResources"]["maxVcpus"] = 4096


def _terminate(ce: dict[str, Any]) -> None:
    ce["updatePolicy"]["terminateJobsOnUpdate"] = True


def _no_timeout(jd: dict[str, Any]) -> None:
    jd.pop("timeout")


def _blind_retries(jd: dict[str, Any]) -> None:
    jd["retryStrategy"]["evaluateOnExits"] = jd["retryStrategy"]["evaluateOnExits"][:-1]


def _container(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(jd: dict[str, Any]) -> None:
        container = json.loads(jd["containerProperties"])
        change(container)
        jd["containerProperties"] = json.dumps(container)

    return mutate


def _no_time_limit(queue: dict[str, Any]) -> None:
    queue.pop("jobStateTimeLimitActions")


def _forever(group: dict[str, Any]) -> None:
    group["retentionInDays"] = 0


def _no_stack_tag(resource: dict[str, Any]) -> None:
    resource["tags"].pop("stack")


def _s3_star(policy: dict[str, Any]) -> None:
    document = json.loads(policy["policy"])
    document["Statement"][1]["Action"] = "s3:*"
    policy["policy"] = json.dumps(document)


@pytest.mark.parametrize(
    ("stack", "resource_type", "mutate", "policy", "message"),
    [
        (
            "dev",
            COMPUTE_ENVIRONMENT,
            _spot_to_on_demand,
            "batch-lab-compute-on-spot",
            "uses EC2 capacity; use SPOT",
        ),
        (
            "dev",
            COMPUTE_ENVIRONMENT,
            _min_vcpus,
            "batch-lab-compute-on-spot",
            "keeps minVcpus 8; set it to 0",
        ),
        (
            "dev",
            COMPUTE_ENVIRONMENT,
            _desired,
            "batch-lab-compute-on-spot",
            "sets desiredVcpus 4; leave it unset",
        ),
        ("dev", COMPUTE_ENVIRONMENT, _huge, "batch-max-vcpus-cap", "maxVcpus 4096 is above the cap of 64"),
        (
            "prod",
            COMPUTE_ENVIRONMENT,
            _huge,
            "batch-max-vcpus-cap",
            "maxVcpus 4096 is above the cap of 1,024",
        ),
        ("prod", COMPUTE_ENVIRONMENT, _terminate, "batch-prod-keeps-jobs-on-update", "set it to false"),
        ("dev", JOB_DEFINITION, _no_timeout, "batch-job-timeout", "set timeout.attemptDurationSeconds"),
        ("prod", JOB_DEFINITION, _blind_retries, "batch-job-retry-ends-in-exit", "add {action: EXIT"),
        (
            "dev",
            JOB_DEFINITION,
            _container(lambda c: c.update(user="root")),
            "batch-container-not-root",
            "runs as root; set containerProperties.user",
        ),
        (
            "dev",
            JOB_DEFINITION,
            _container(lambda c: c.pop("user")),
            "batch-container-not-root",
            "runs as root",
        ),
        (
            "prod",
            JOB_DEFINITION,
            _container(lambda c: c.update(user="0", privileged=True)),
            "batch-container-not-root",
            "runs as root",
        ),
        ("dev", JOB_QUEUE, _no_time_limit, "batch-queue-runnable-time-limit", "add a CANCEL action"),
        ("prod", LOG_GROUP, _forever, "logs-finite-retention", "set retentionInDays"),
        (
            "dev",
            JOB_QUEUE,
            _no_stack_tag,
            "batch-cost-allocation-tags",
            "lacks the cost-allocation tag(s) stack",
        ),
        ("prod", ROLE_POLICY, _s3_star, "iam-least-privilege", "a policy allows s3:*; list the actions"),
    ],
)
def test_each_rule_fires_on_a_mutated_copy_with_its_fix(
    declared: dict[str, Declared], stack, resource_type, mutate, policy, message
):
    inputs = one(declared[stack], resource_type)
    mutate(inputs)
    found = violations(resource_type, inputs, stack=stack)
    assert list(found) == [policy]
    assert any(message in line for line in found[policy]), found[policy]


def test_a_privileged_container_is_reported_beside_root(declared: dict[str, Declared]):
    inputs = one(declared["prod"], JOB_DEFINITION)
    _container(lambda c: c.update(privileged=True))(inputs)
    assert violations(JOB_DEFINITION, inputs, stack="prod") == {
        "batch-container-not-root": ["the job definition's container is privileged; drop privileged: true"]
    }


def test_rules_that_advise_and_rules_that_block():
    advisory = {p.name for p in POLICIES if p.enforcement_level == EnforcementLevel.ADVISORY}
    assert advisory == {"batch-queue-runnable-time-limit", "logs-finite-retention"}
    assert all(p.description and not p.description.startswith("batch-") for p in POLICIES)


def test_stack_names_come_from_the_urn():
    assert stack_of(urn("team-lab", COMPUTE_ENVIRONMENT)) == "team-lab"


def test_configuration_overrides_the_defaults(declared: dict[str, Declared]):
    ce = one(declared["prod"], COMPUTE_ENVIRONMENT)  # on-demand, maxVcpus 256
    assert violations(COMPUTE_ENVIRONMENT, ce, stack="qa") == {}
    qa_is_a_lab = {"batch-lab-compute-on-spot": {"labStacks": ["qa"]}}
    assert list(violations(COMPUTE_ENVIRONMENT, ce, stack="qa", config=qa_is_a_lab)) == [
        "batch-lab-compute-on-spot"
    ]
    # The default lab patterns: dev, lab*, *-lab.
    assert list(violations(COMPUTE_ENVIRONMENT, ce, stack="gpu-lab")) == [
        "batch-lab-compute-on-spot",
        "batch-max-vcpus-cap",
    ]
    small = {"batch-max-vcpus-cap": {"caps": [{"stack": "prod*", "maxVcpus": 128}]}}
    assert violations(COMPUTE_ENVIRONMENT, ce, stack="prod-eu", config=small)["batch-max-vcpus-cap"] == [
        "maxVcpus 256 is above the cap of 128 for stack 'prod-eu' (pattern 'prod*'); lower "
        "compute.maxVcpus or raise the cap in the pack's config"
    ]
    team = {"batch-cost-allocation-tags": {"tagKeys": ["team"]}}
    assert violations(COMPUTE_ENVIRONMENT, ce, stack="prod", config=team) == {
        "batch-cost-allocation-tags": [
            "the resource lacks the cost-allocation tag(s) team; add them to its tags "
            "(provider defaultTags are not seen by this rule)"
        ]
    }
    staging_is_prod = {"batch-prod-keeps-jobs-on-update": {"prodStacks": ["staging"]}}
    ce["updatePolicy"]["terminateJobsOnUpdate"] = True
    assert violations(COMPUTE_ENVIRONMENT, ce, stack="prod-eu", config=staging_is_prod) == {}
    assert list(violations(COMPUTE_ENVIRONMENT, ce, stack="staging", config=staging_is_prod)) == [
        "batch-prod-keeps-jobs-on-update"
    ]


@pytest.mark.parametrize(
    ("resource_type", "props", "expected"),
    [
        # Another program's unmanaged environment: no computeResources, no tags.
        (COMPUTE_ENVIRONMENT, {"type": "UNMANAGED"}, {"batch-cost-allocation-tags"}),
        (COMPUTE_ENVIRONMENT, {"type": "MANAGED"}, {"batch-cost-allocation-tags"}),
        (JOB_QUEUE, {"priority": 1}, {"batch-queue-runnable-time-limit", "batch-cost-allocation-tags"}),
        (
            JOB_DEFINITION,
            {"type": "multinode", "nodeProperties": "{}"},
            {"batch-job-timeout", "batch-job-retry-ends-in-exit", "batch-cost-allocation-tags"},
        ),
        (
            ROLE,
            {"managedPolicyArns": ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]},
            {"iam-least-privilege"},
        ),
        (ROLE, {"assumeRolePolicy": "{}"}, set()),
        (
            ROLE,
            {
                "inlinePolicies": [
                    {
                        "name": "all",
                        "policy": '{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}',
                    }
                ]
            },
            {"iam-least-privilege"},
        ),
        (
            ROLE_POLICY_ATTACHMENT,
            {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            {"iam-least-privilege"},
        ),
        (
            ROLE_POLICY_ATTACHMENT,
            {"policyArn": "arn:aws:iam::123456789012:policy/MyFullAccess"},
            set(),  # customer-managed: judged by its own document
        ),
        (
            POLICY_ATTACHMENT,
            {"policyArn": "arn:aws:iam::aws:policy/AmazonEC2FullAccess", "roles": ["r"]},
            {"iam-least-privilege"},
        ),
        (
            POLICY_ATTACHMENT,
            {"policyArn": "arn:aws:iam::aws:policy/AmazonEC2FullAccess", "users": ["u"]},
            set(),
        ),
        (IAM_POLICY, {"policy": "not json"}, set()),
        (LOG_GROUP, {"name": "x"}, {"logs-finite-retention"}),
        ("aws:s3/bucket:Bucket", {}, set()),
    ],
)
def test_other_program_shapes_are_judged_without_error(resource_type, props, expected):
    assert set(violations(resource_type, props, stack="dev")) == expected


def test_a_value_unknown_during_preview_lets_the_rule_pass(declared: dict[str, Declared]):
    ce = one(declared["dev"], COMPUTE_ENVIRONMENT)
    ce["computeResources"]["type"] = UNKNOWN_STRING_VALUE
    ce["computeResources"]["maxVcpus"] = UNKNOWN_NUMBER_VALUE
    jd = one(declared["dev"], JOB_DEFINITION)
    jd["containerProperties"] = UNKNOWN_STRING_VALUE
    assert violations(COMPUTE_ENVIRONMENT, unknown_checking_proxy(ce), stack="dev") == {}
    assert violations(JOB_DEFINITION, unknown_checking_proxy(jd), stack="dev") == {}
    # Known values behind the proxy are still judged.
    jd["timeout"] = {}
    assert list(violations(JOB_DEFINITION, unknown_checking_proxy(jd), stack="dev")) == ["batch-job-timeout"]


def test_the_pack_needs_nothing_of_this_project():
    tree = ast.parse((PACK_DIR / "batch_guardrails.py").read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported <= {"__future__", "fnmatch", "json", "collections", "typing", "pulumi_policy"}
    assert (PACK_DIR / "PulumiPolicy.yaml").is_file()
    assert "pulumi-policy" in (PACK_DIR / "requirements.txt").read_text()
    names = set(BY_NAME)
    assert set(EXAMPLE_CONFIG) <= names and len(names) == len(POLICIES) == 10


@pytest.fixture
def pack() -> Iterator[Any]:
    """The pack as the Pulumi CLI runs it: its own process, answering the analyzer protocol."""
    with subprocess.Popen(
        [sys.executable, "__main__.py"], cwd=PACK_DIR, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            port = int(process.stdout.readline())  # type: ignore[union-attr]
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield analyzer_pb2_grpc.AnalyzerStub(channel)
        finally:
            process.terminate()


def test_the_pack_answers_the_engine_as_pulumi_preview_would(pack: Any, declared: dict[str, Declared]):
    info = pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "batch-stacks-guardrails"
    assert [policy.name for policy in info.policies] == list(BY_NAME)
    caps = struct_pb2.Struct()
    json_format.ParseDict({"caps": [{"stack": "dev", "maxVcpus": 16}]}, caps)
    configure = analyzer_pb2.ConfigureAnalyzerRequest(
        policyConfig={"batch-max-vcpus-cap": analyzer_pb2.PolicyConfig(enforcementLevel=1, properties=caps)}
    )
    pack.Configure(configure)

    def analyze(stack: str) -> list[tuple[str, str]]:
        props = struct_pb2.Struct()
        json_format.ParseDict(one(declared[stack], COMPUTE_ENVIRONMENT), props)
        request = analyzer_pb2.AnalyzeRequest(
            type=COMPUTE_ENVIRONMENT, properties=props, urn=urn(stack, COMPUTE_ENVIRONMENT), name="r"
        )
        return [(d.policyName, d.message) for d in pack.Analyze(request).diagnostics]

    assert analyze("prod") == []
    ((policy, message),) = analyze("dev")  # dev's 32 vCPUs against the configured cap of 16
    assert policy == "batch-max-vcpus-cap" and "maxVcpus 32 is above the cap of 16" in message
