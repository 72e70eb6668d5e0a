"""The task image built by the stack: an ECR repository it owns, and the image ``pulumi up`` builds
from a Dockerfile (Pulumi's docker-build provider, BuildKit) and pushes there.

Code changes ship with ``runner submit --code``; only dependency changes need a new image. The job
definition takes the pushed image by digest, so each ``pulumi up`` that changes it makes a new
revision and a run always names exactly what it ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from infra.settings import PROJECT, ImageBuild

# Untagged layers and old builds are removed; the newest images stay for rollbacks.
KEEP_IMAGES = 20
BUILD_TAG = "latest"
CACHE_TAG = "buildcache"


def lifecycle_policy(keep: int = KEEP_IMAGES) -> str:
    """ECR keeps the newest ``keep`` images (the build cache is one of them)."""
    rule = {
        "rulePriority": 1,
        "description": f"keep the newest {keep} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]}, sort_keys=True)


@dataclass(frozen=True)
class TaskImageArgs:
    build: ImageBuild
    tags: dict[str, str]


class TaskImage(pulumi.ComponentResource):
    """ECR repository plus the built and pushed image; ``ref`` is ``repository@sha256:...``."""

    repository_url: pulumi.Output[str]
    ref: pulumi.Output[str]

    def __init__(self, name: str, args: TaskImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PROJECT}:index:TaskImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            f"{name}-repo",
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="MUTABLE",  # ``latest`` and the cache move; the job pins a digest
            tags=args.tags,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle", repository=repository.name, policy=lifecycle_policy(), opts=child
        )
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOptions(parent=self)
        )
        url = repository.repository_url
        image = docker_build.Image(
            f"{name}-image",
            context={"location": args.build.context},
            dockerfile={"location": args.build.dockerfile},
            platforms=[args.build.platform],
            push=True,
            tags=[url.apply(lambda u: f"{u}:{BUILD_TAG}")],
            cache_from=[{"registry": {"ref": url.apply(lambda u: f"{u}:{CACHE_TAG}")}}],
            cache_to=[
                {
                    "registry": {
                        "ref": url.apply(lambda u: f"{u}:{CACHE_TAG}"),
                        "image_manifest": True,
                        "oci_media_types": True,
                    }
                }
            ],
            registries=[{"address": url, "username": token.user_name, "password": token.password}],
            opts=child,
        )
        self.repository_url = url
        self.ref = image.ref
        self.register_outputs({"repositoryUrl": url, "ref": self.ref})
