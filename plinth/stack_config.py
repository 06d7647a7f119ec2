"""The typed configuration of a stack: the `plinth:*` keys of `stacks/Pulumi.<stack>.yaml`.

One model for the Pulumi program and the CLI (`plinth diff --stack`). A wrong type, unknown key
or missing value fails with the file, the key and what was expected, before anything else runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, StringConstraints, ValidationError, model_validator

from plinth.manifest_yaml import yaml_problem
from plinth.repospec import IMAGE, TAG, Name, RepoSpec, Strict

NAMESPACE = "plinth"


class StackConfigError(Exception):
    """The stack configuration is missing or invalid; the message names file and key."""


class ClusterConfig(Strict):
    """Where the cluster comes from. `local`: a control plane and one node on this machine
    (root; `node: false` keeps the control plane alone: objects are stored and served, no
    workloads run); `kind`: a kind cluster (needs kind and Docker); `kubeconfig`: adopt an
    existing context; `eks`: an EKS cluster on AWS."""

    kind: Literal["local", "kind", "kubeconfig", "eks"] = "local"
    node: bool = Field(default=True, description="local: run a node (kubelet, containerd) "
                                                 "so pods run; false: objects only")
    kubeconfig: str | None = Field(default=None, description="kubeconfig file (kind kubeconfig)")
    context: str | None = None
    kubernetes_version: Annotated[str, StringConstraints(pattern=r"^1\.[0-9]+$")] = "1.33"
    node_count: int = Field(default=2, ge=1, le=100)
    node_max: int = Field(default=4, ge=1, le=200)
    instance_type: str = "t3.medium"
    subnet_ids: list[str] = Field(default_factory=list, description="eks: use these subnets")
    vpc_cidr: Annotated[str, StringConstraints(
        pattern=r"^[0-9]{1,3}\.[0-9]{1,3}\.0\.0/16$")] = "10.0.0.0/16"
    admins: list[str] = Field(default_factory=list, description="eks: IAM principal ARNs")
    deletion_protection: bool = False

    @model_validator(mode="after")
    def _per_kind(self) -> ClusterConfig:
        if self.kind == "kubeconfig" and not self.kubeconfig:
            raise ValueError("kind 'kubeconfig' needs kubeconfig (a file path)")
        if self.node_max < self.node_count:
            raise ValueError(f"node_max {self.node_max} is below node_count {self.node_count}")
        return self


class RegistryConfig(Strict):
    """`local`: registry v2 on loopback; `ecr`: one repository per app and one for the
    controller; `external`: a registry at `url` (password from the secret config key
    `plinth:registryPassword`)."""

    kind: Literal["local", "ecr", "external"] = "local"
    url: str | None = None
    username: str | None = None
    keep_images: int = Field(default=20, ge=1, le=1000, description="ecr lifecycle policy")

    @model_validator(mode="after")
    def _per_kind(self) -> RegistryConfig:
        if self.kind == "external" and not self.url:
            raise ValueError("kind 'external' needs url")
        return self


class RepositoriesConfig(Strict):
    """The two repositories of the GitOps model: application code and the GitOps config.

    `gitea`: repositories of `organization` on a Gitea forge, which gets commit statuses and
    sends push webhooks: the stack's own (local clusters), or a team's at `url`; `github`:
    repositories of the GitHub `organization` (which must exist); the token of either comes
    from the secret config key `plinth:forgeToken`. A forge that cannot reach the cluster's
    Service sends webhooks to `receiver_url` (an Ingress to the controller's port 9292), or
    none. `local`: a plain git server of the stack (no forge); `codecommit`: AWS CodeCommit."""

    kind: Literal["gitea", "github", "local", "codecommit"] = "local"
    app: Name = "app"
    gitops: Name = "gitops"
    branch: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._/-]+$")] = "main"
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^/]+(/.*)?$")] | None = Field(
        default=None, description="gitea: a team's Gitea (root URL); default: the stack's own")
    user: str | None = Field(default=None, description="gitea at url: the token's user")
    organization: Name = "plinth"
    receiver_url: Annotated[str, StringConstraints(pattern=r"^https?://[^/]+/?$")] | None = \
        Field(default=None, description="where the forge reaches the controller's receivers")

    @model_validator(mode="after")
    def _per_kind(self) -> RepositoriesConfig:
        if self.url and not self.user:
            raise ValueError("url (a team's Gitea) needs user, the login of plinth:forgeToken")
        return self


class ControllerConfig(Strict):
    image: Annotated[str, StringConstraints(pattern=IMAGE)] | None = Field(
        default=None, description="default: <registry>/plinth-controller")
    tag: Annotated[str, StringConstraints(pattern=TAG)] | None = Field(
        default=None, description="default: plinth:gitops.controller_version")
    run_locally: bool | None = Field(
        default=None, description="run the controller as a local process (default: when the "
                                  "cluster is local without a node, where no pod can run)")


class StackConfig(Strict):
    gitops: RepoSpec
    cluster: ClusterConfig = ClusterConfig()
    registry: RegistryConfig = RegistryConfig()
    repositories: RepositoriesConfig = RepositoriesConfig()
    controller: ControllerConfig = ControllerConfig()

    @classmethod
    def from_keys(cls, values: dict[str, Any], source: str) -> StackConfig:
        """From `{key: value}` of the `plinth` namespace (keys without the `plinth:` prefix)."""
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            problems = "; ".join(
                f"{NAMESPACE}:{'.'.join(str(p) for p in e['loc'])}"
                f"{'' if e['type'] == 'missing' else '=' + repr(e.get('input'))}: {e['msg']}"
                for e in err.errors())
            raise StackConfigError(f"{source}: {problems}") from None


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / "stacks" / f"Pulumi.{stack}.yaml"


def load_stack(project_dir: Path, stack: str) -> StackConfig:
    path = stack_file(project_dir, stack)
    if not path.exists():
        raise StackConfigError(f"{path}: no such stack file (stack {stack!r})")
    return parse_stack(path.read_text(), str(path))


def parse_stack(text: str, source: str) -> StackConfig:
    """A stack file's text (`source` names it in errors: a path, or PATH@REV)."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise StackConfigError(f"{source}: not valid YAML: {yaml_problem(err)}") from None
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise StackConfigError(f"{source}: config: expected a mapping")
    prefix = f"{NAMESPACE}:"
    values = {k[len(prefix):]: v for k, v in config.items() if str(k).startswith(prefix)}
    return StackConfig.from_keys(values, source)
