from __future__ import annotations

from typing import Any

import pytest

from infra.settings import DEFAULT_INSTANCE_TYPES, ImageBuild, SettingsError, parse_settings

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sim:latest"


def settings_from(**sections: Any):
    sections.setdefault("job", {"image": IMAGE})
    return parse_settings("dev", sections.get)


def error_for(**sections: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from(**sections)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_are_on_demand_scaling_to_zero_with_diverse_types():
    settings = settings_from()
    assert settings.compute.purchase_model == "on-demand"
    assert settings.compute.min_vcpus == 0
    assert settings.compute.allocation_strategy == "BEST_FIT_PROGRESSIVE"
    assert settings.compute.instance_types == DEFAULT_INSTANCE_TYPES
    assert settings.job.vcpus == 1 and settings.job.memory_mib == 2048
    assert settings.job.retry_attempts == 3
    assert settings.data.bucket is None
    assert settings.logs.retention_days == 14


def test_spot_defaults_to_price_capacity_optimized_without_bid():
    compute = settings_from(compute={"purchaseModel": "spot"}).compute
    assert compute.allocation_strategy == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert compute.bid_percentage is None


def test_tags_always_carry_project_and_stack_over_configured_ones():
    settings = settings_from(tags={"team": "genomics", "stack": "spoofed"})
    assert settings.tags == {"team": "genomics", "project": "batch-stacks", "stack": "dev"}


def test_on_demand_counterpart_drops_spot_only_settings():
    compute = settings_from(
        compute={"purchaseModel": "spot", "bidPercentage": 60, "onDemandFallback": True}
    ).compute
    fallback = compute.on_demand_counterpart()
    assert fallback.purchase_model == "on-demand"
    assert fallback.bid_percentage is None
    assert fallback.allocation_strategy == "BEST_FIT_PROGRESSIVE"
    assert fallback.max_vcpus == compute.max_vcpus


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        (
            {"compute": {"purchaseModel": "spotty"}},
            "batch-stacks:compute.purchaseModel: 'spotty' is not allowed; use one of: spot, on-demand",
        ),
        (
            {"compute": {"minVcpus": 8, "maxVcpus": 4}},
            "batch-stacks:compute.minVcpus: 8 is not allowed; use at most maxVcpus (4)",
        ),
        (
            {"compute": {"maxVcpus": -4}},
            "batch-stacks:compute.maxVcpus: -4 is not allowed; use a whole number from 1 to 10000",
        ),
        (
            {"compute": {"minVcpus": -1}},
            "batch-stacks:compute.minVcpus: -1 is not allowed; use a whole number from 0 to 10000",
        ),
        (
            {"compute": {"maxVcpus": "32"}},
            "batch-stacks:compute.maxVcpus: '32' is not allowed; use a whole number from 1 to 10000",
        ),
        (
            {"compute": {"maxVcpu": 32}},
            "batch-stacks:compute.maxVcpu: unknown setting; did you mean 'maxVcpus'?",
        ),
        (
            {"compute": {"bidPercentage": 50}},
            "batch-stacks:compute.bidPercentage: 50 is not allowed; only set it with purchaseModel: spot",
        ),
        (
            {"compute": {"purchaseModel": "spot", "bidPercentage": 120}},
            "batch-stacks:compute.bidPercentage: 120 is not allowed; use a whole number from 1 to 100",
        ),
        (
            {"compute": {"onDemandFallback": True}},
            "batch-stacks:compute.onDemandFallback: True is not allowed; only set it with purchaseModel: spot",
        ),
        (
            {"compute": {"allocationStrategy": "SPOT_CAPACITY_OPTIMIZED"}},
            "batch-stacks:compute.allocationStrategy: 'SPOT_CAPACITY_OPTIMIZED' is not allowed; "
            "use one of: BEST_FIT_PROGRESSIVE, BEST_FIT",
        ),
        (
            {"compute": {"purchaseModel": "spot", "allocationStrategy": "BEST_FIT"}},
            "batch-stacks:compute.allocationStrategy: 'BEST_FIT' is not allowed; "
            "use one of: SPOT_PRICE_CAPACITY_OPTIMIZED, SPOT_CAPACITY_OPTIMIZED, BEST_FIT_PROGRESSIVE",
        ),
        (
            {"compute": {"instanceTypes": "c5"}},
            "batch-stacks:compute.instanceTypes: 'c5' is not allowed; use a list of instance types "
            "or families, e.g. [c6i, m6i.2xlarge]",
        ),
        (
            {"compute": {"terminateJobsOnUpdate": "yes"}},
            "batch-stacks:compute.terminateJobsOnUpdate: 'yes' is not allowed; use true or false",
        ),
        (
            {"compute": ["spot"]},
            "batch-stacks:compute: expected an object of settings",
        ),
        ({"job": {}}, "batch-stacks:job.image is required"),
        (
            {"job": {"image": IMAGE, "memoryMiB": 64}},
            "batch-stacks:job.memoryMiB: 64 is not allowed; use a whole number from 128 to 1572864",
        ),
        (
            {"job": {"image": IMAGE, "vcpus": 0}},
            "batch-stacks:job.vcpus: 0 is not allowed; use a whole number from 1 to 192",
        ),
        (
            {"compute": {"maxVcpus": 4}, "job": {"image": IMAGE, "vcpus": 8}},
            "batch-stacks:job.vcpus: 8 is not allowed; use at most compute.maxVcpus (4)",
        ),
        (
            {"job": {"image": IMAGE, "retryAttempts": 11}},
            "batch-stacks:job.retryAttempts: 11 is not allowed; use a whole number from 1 to 10",
        ),
        (
            {"job": {"image": IMAGE, "retryAttempts": 0}},
            "batch-stacks:job.retryAttempts: 0 is not allowed; use a whole number from 1 to 10",
        ),
        (
            {"job": {"image": IMAGE, "timeoutSeconds": 30}},
            "batch-stacks:job.timeoutSeconds: 30 is not allowed; use a whole number from 60 to 1209600",
        ),
        (
            {"job": {"image": "my image"}},
            "batch-stacks:job.image: 'my image' is not allowed; use a container image reference",
        ),
        (
            {"data": {"bucket": "My_Bucket"}},
            "batch-stacks:data.bucket: 'My_Bucket' is not allowed; use an S3 bucket name",
        ),
        (
            {"data": {"bucket": "192.168.1.10"}},
            "batch-stacks:data.bucket: '192.168.1.10' is not allowed; use an S3 bucket name: "
            "3-63 lowercase letters, digits, dots or hyphens, not an IP address",
        ),
        (
            {"data": {"bucket": "lab-data", "prefix": "/runs"}},
            "batch-stacks:data.prefix: '/runs' is not allowed; use a key prefix without a leading",
        ),
        (
            {"data": {"bucket": "lab-data", "access": "write"}},
            "batch-stacks:data.access: 'write' is not allowed; use one of: read, read-write",
        ),
        (
            {"queue": {"runnableTimeoutMinutes": 5}},
            "batch-stacks:queue.runnableTimeoutMinutes: 5 is not allowed; use a whole number from 10 to 1440",
        ),
        (
            {"network": {"subnetIds": ["sn-1"]}},
            "batch-stacks:network.subnetIds: ['sn-1'] is not allowed; use a list of subnet ids",
        ),
        (
            {"logs": {"retentionDays": 10}},
            "batch-stacks:logs.retentionDays: 10 is not allowed; use one of 0, 1, 3, 5, 7, 14",
        ),
        ({"tags": {"aws:owner": "x"}}, "batch-stacks:tags.aws:owner: not a valid tag key"),
        ({"tags": {"team": 7}}, "batch-stacks:tags.team: 7 is not allowed; use a string"),
    ],
)
def test_each_bad_value_names_key_value_and_what_is_allowed(sections, expected):
    assert error_for(**sections).startswith(expected)


def test_unknown_key_is_reported_first_and_the_other_problems_too():
    with pytest.raises(SettingsError) as caught:
        settings_from(compute={"purchaseModel": "bogus", "maxvcpus": 3})
    assert str(caught.value).splitlines() == [
        "batch-stacks:compute.maxvcpus: unknown setting; did you mean 'maxVcpus'?",
        "batch-stacks:compute.purchaseModel: 'bogus' is not allowed; use one of: spot, on-demand",
    ]


def test_every_mistake_at_every_level_is_reported_at_once_one_line_each():
    with pytest.raises(SettingsError) as caught:
        parse_settings(
            "dev",
            {
                "compute": {"maxVcpus": "lots", "terminateJobsOnUpdate": "yes"},
                "job": {"memoryMiB": 64},
                "queue": {"priority": 5000},
                "data": {"bucket": "Bad_Bucket"},
                "logs": {"retentionDays": 10, "retainOnDelete": "always"},
                "tags": {"aws:owner": "x", "team": 7},
            }.get,
            keys=["aws:region", "batch-stacks:comptue", "batch-stacks:job", "batch-stacks:nonsense"],
        )
    lines = str(caught.value).splitlines()
    assert lines[:2] == [
        "batch-stacks:comptue: unknown setting; did you mean 'batch-stacks:compute'?",
        "batch-stacks:nonsense: unknown setting; allowed: compute, job, queue, network, data, logs, tags, cost",
    ]
    expected_keys = [
        "batch-stacks:compute.maxVcpus:",
        "batch-stacks:compute.terminateJobsOnUpdate:",
        "batch-stacks:job.memoryMiB:",
        "batch-stacks:job.image is required",
        "batch-stacks:queue.priority:",
        "batch-stacks:data.bucket:",
        "batch-stacks:logs.retentionDays:",
        "batch-stacks:logs.retainOnDelete:",
        "batch-stacks:tags.aws:owner:",
        "batch-stacks:tags.team:",
    ]
    assert len(lines) == 2 + len(expected_keys), lines
    for key in expected_keys:
        assert sum(line.startswith(key) for line in lines) == 1, (key, lines)


def test_checks_between_settings_are_skipped_when_one_side_is_already_wrong():
    # maxVcpus is wrong: comparing job.vcpus with it would only add a confusing second line.
    with pytest.raises(SettingsError) as caught:
        settings_from(compute={"maxVcpus": 0}, job={"image": IMAGE, "vcpus": 8})
    assert str(caught.value) == (
        "batch-stacks:compute.maxVcpus: 0 is not allowed; use a whole number from 1 to 10000"
    )


def test_other_namespaces_are_not_ours_to_reject():
    settings = parse_settings("dev", {"job": {"image": IMAGE}}.get, keys=["aws:region", "pulumi:tags"])
    assert settings.logs.retain_on_delete is False


def test_unknown_key_without_a_close_match_lists_allowed_keys():
    message = error_for(data={"region": "eu-west-1"})
    assert message == "batch-stacks:data.region: unknown setting; allowed: bucket, prefix, access, inputs"


def test_fargate_takes_whole_vcpu_sizes_with_matching_memory():
    settings = settings_from(
        compute={"platform": "fargate", "purchaseModel": "spot"},
        job={"image": IMAGE, "vcpus": 2, "memoryMiB": 8192},
    )
    assert settings.compute.fargate and settings.compute.purchase_model == "spot"
    assert settings.network.public_ip is True  # default VPC: public subnets, no NAT
    configured = settings_from(
        compute={"platform": "fargate"}, network={"subnetIds": ["subnet-0a"], "assignPublicIp": False}
    )
    assert configured.network.public_ip is False


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        (
            {"compute": {"platform": "fargate", "instanceTypes": ["c5"]}},
            "batch-stacks:compute.instanceTypes: ['c5'] is not allowed; remove it: it only applies to platform: ec2",
        ),
        (
            {"compute": {"platform": "fargate", "minVcpus": 0}},
            "batch-stacks:compute.minVcpus: 0 is not allowed; remove it: it only applies to platform: ec2",
        ),
        (
            {"compute": {"platform": "lambda"}},
            "batch-stacks:compute.platform: 'lambda' is not allowed; use one of: ec2, fargate",
        ),
        (
            {"compute": {"platform": "fargate"}, "job": {"image": IMAGE, "vcpus": 3, "memoryMiB": 8192}},
            "batch-stacks:job.vcpus: 3 is not allowed; with platform fargate use one of 1, 2, 4, 8, 16",
        ),
        (
            {"compute": {"platform": "fargate"}, "job": {"image": IMAGE, "vcpus": 1, "memoryMiB": 3000}},
            "batch-stacks:job.memoryMiB: 3000 is not allowed; with platform fargate and 1 vCPU use 2048 to 8192 in steps of 1024",
        ),
        (
            {"network": {"assignPublicIp": True}},
            "batch-stacks:network.assignPublicIp: True is not allowed; remove it: it only applies to platform: fargate",
        ),
    ],
)
def test_fargate_settings_are_checked(sections, expected):
    assert error_for(**sections) == expected


def test_a_built_image_takes_a_context_and_defaults_its_dockerfile_and_platform():
    settings = parse_settings("dev", {"job": {"build": {"context": "examples"}}}.get)
    assert settings.job.image is None
    assert settings.job.build == ImageBuild("examples", "examples/Dockerfile", "linux/amd64")


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (
            {"image": IMAGE, "build": {"context": "examples"}},
            "batch-stacks:job: set either image (a pushed image) or build (one `pulumi up` builds), not both",
        ),
        ({}, "batch-stacks:job.image is required"),
        (
            {"build": {"context": "../elsewhere"}},
            "batch-stacks:job.build.context: '../elsewhere' is not allowed; use a path inside the project, relative to it, e.g. examples",
        ),
        (
            {"build": {"context": "examples", "platform": "windows/amd64"}},
            "batch-stacks:job.build.platform: 'windows/amd64' is not allowed; use one of: linux/amd64, linux/arm64",
        ),
        (
            {"build": {"contxt": "examples"}},
            "batch-stacks:job.build.contxt: unknown setting; did you mean 'context'?",
        ),
    ],
)
def test_a_bad_image_build_is_one_line(job: dict[str, Any], message: str):
    with pytest.raises(SettingsError) as caught:
        parse_settings("dev", {"job": job}.get)
    assert str(caught.value).splitlines()[0] == message
