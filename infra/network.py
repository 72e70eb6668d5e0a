"""Where Batch instances run: configured subnets/groups, or the default VPC's subnets."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.settings import PROJECT, NetworkSettings


@dataclass(frozen=True)
class BatchNetworkArgs:
    network: NetworkSettings
    tags: dict[str, str]


class BatchNetwork(pulumi.ComponentResource):
    """Resolves subnets and security groups for the compute environments.

    Subnets come from config, else every subnet of the VPC (``vpcId`` or the default VPC).
    Security groups come from config, else one dedicated group with no ingress and all egress
    (instances only pull images, reach S3 and ship logs).
    """

    subnet_ids: pulumi.Output[list[str]]
    security_group_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: BatchNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PROJECT}:index:BatchNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        settings = args.network

        vpc_id: pulumi.Output[str] | None = None
        if settings.vpc_id is not None:
            vpc_id = pulumi.Output.from_input(settings.vpc_id)
        elif not settings.subnet_ids:
            vpc_id = aws.ec2.get_vpc_output(default=True, opts=invoke).id
        elif not settings.security_group_ids:
            vpc_id = aws.ec2.get_subnet_output(id=settings.subnet_ids[0], opts=invoke).vpc_id

        if settings.subnet_ids:
            self.subnet_ids = pulumi.Output.from_input(list(settings.subnet_ids))
        else:
            assert vpc_id is not None
            self.subnet_ids = aws.ec2.get_subnets_output(
                filters=[{"name": "vpc-id", "values": [vpc_id]}], opts=invoke
            ).ids

        if settings.security_group_ids:
            self.security_group_ids = pulumi.Output.from_input(list(settings.security_group_ids))
        else:
            assert vpc_id is not None
            group = aws.ec2.SecurityGroup(
                f"{name}-instances",
                description="Batch instances: no inbound, all outbound",
                vpc_id=vpc_id,
                egress=[
                    {
                        "description": "All outbound: pull images, reach S3 and CloudWatch Logs",
                        "protocol": "-1",
                        "from_port": 0,
                        "to_port": 0,
                        "cidr_blocks": ["0.0.0.0/0"],
                        "ipv6_cidr_blocks": ["::/0"],
                    }
                ],
                tags=args.tags,
                opts=child,
            )
            self.security_group_ids = group.id.apply(lambda group_id: [group_id])

        self.register_outputs({"subnetIds": self.subnet_ids, "securityGroupIds": self.security_group_ids})
