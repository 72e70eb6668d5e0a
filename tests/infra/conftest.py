"""Run the real program under a recording mock engine, once per stack file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest

from runner.local.program import run_program

PROJECT_DIR = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class Resource:
    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource; answers invokes like a default-VPC account would."""

    resources: list[Resource] = field(default_factory=list)
    invokes: list[str] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if not args.custom:
            self.resources.append(Resource(args.typ, args.name, dict(args.inputs), {}))
            return args.name, {}
        physical = args.inputs.get("name") or f"{args.name}-1234abc"
        if "namePrefix" in args.inputs:
            physical = f"{args.inputs['namePrefix']}1234abc"
        service = args.typ.split(":")[1].split("/")[0]
        state = {
            **args.inputs,
            "name": physical,
            "arn": f"arn:aws:{service}:{REGION}:{ACCOUNT}:{args.typ.split(':')[-1]}/{physical}",
        }
        if args.typ == "aws:ec2/securityGroup:SecurityGroup":
            physical = "sg-0123456789abcdef0"
        if args.typ == "aws:ecr/repository:Repository":
            state.update(
                registryId=ACCOUNT, repositoryUrl=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{physical}"
            )
        if args.typ == "docker-build:index:Image":
            repository = str(args.inputs["tags"][0]).rsplit(":", 1)[0]
            state.update(digest="sha256:" + "ab" * 32, ref=f"{repository}@sha256:" + "ab" * 32)
        self.resources.append(Resource(args.typ, args.name, dict(args.inputs), state))
        return physical, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        self.invokes.append(args.token)
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getRegion:getRegion": {"region": REGION, "name": REGION},
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
            },
            "aws:ec2/getVpc:getVpc": {"id": "vpc-0default", "default": True},
            "aws:ec2/getSubnet:getSubnet": {"id": args.args.get("id"), "vpcId": "vpc-0fromsubnet"},
            "aws:ec2/getSubnets:getSubnets": {"ids": ["subnet-0aaa", "subnet-0bbb"]},
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": {
                "userName": "AWS",
                "password": "token-from-ecr",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
                "authorizationToken": "QVdTOnRva2Vu",
                "expiresAt": "2026-12-03T00:00:00Z",
                "id": REGION,
            },
        }
        return answers[args.token], []

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str) -> Resource:
        (resource,) = self.of_type(typ)
        return resource


@dataclass
class Deployment:
    outputs: dict[str, Any]
    mocks: RecordingMocks


def deploy(stack: str, project_dir: Path = PROJECT_DIR) -> Deployment:
    mocks = RecordingMocks()
    outputs = run_program(project_dir, stack, mocks)
    return Deployment(outputs, mocks)


@pytest.fixture(scope="module")
def dev() -> Deployment:
    return deploy("dev")


@pytest.fixture(scope="module")
def prod() -> Deployment:
    return deploy("prod")
