"""ECR: one repository per app and one for the controller, immutable tags, scan on push, and
a lifecycle policy that keeps the newest N images. Pull credentials are an authorization
token from the ECR API (valid 12 hours; on EKS, nodes and the controller's IRSA role pull
without it)."""
from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws


def lifecycle_policy(keep: int) -> str:
    return json.dumps({"rules": [{
        "rulePriority": 1, "description": f"keep the newest {keep} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"}}]})


class EcrRegistry(pulumi.ComponentResource):
    host: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(self, name: str, apps: list[str], keep_images: int,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:ecr:EcrRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repositories: dict[str, aws.ecr.Repository] = {}
        for repo in [*apps, "plinth-controller"]:
            repository = aws.ecr.Repository(
                f"{name}-{repo}", name=repo, image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                force_delete=False, opts=child)
            aws.ecr.LifecyclePolicy(f"{name}-{repo}", repository=repository.name,
                                    policy=lifecycle_policy(keep_images), opts=child)
            self.repositories[repo] = repository
        first = next(iter(self.repositories.values()))
        self.host = first.repository_url.apply(lambda url: url.split("/", 1)[0])
        token = aws.ecr.get_authorization_token_output(
            registry_id=first.registry_id, opts=pulumi.InvokeOptions(parent=self))
        self.username = token.user_name
        self.password = pulumi.Output.secret(token.password)
        self.register_outputs({"host": self.host})
