"""What a GitOps repository is scaffolded from: cluster, environments, apps, registry.

One model for `plinth new` and the Pulumi GitOpsRepo component (the stack config embeds it), so
both validate the same way and produce the same bytes. Names are DNS-1123 labels: they become
Kubernetes names and path segments, so nothing valid can escape the target folder or break YAML.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import (BaseModel, ConfigDict, Field, StringConstraints, field_validator,
                      model_validator)

from plinth.semver_range import parse_constraint

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# registry host[:port] then path components, as in the distribution reference grammar
IMAGE = (
    r"^(?:[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_REF = IMAGE[:-1] + r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
REGISTRY = r"^[a-zA-Z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9._-]+)*$"

DEFAULT_CONTROLLER_REPOSITORY = "ghcr.io/plinth-dev/plinth-controller"

Name = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppSpec(Strict):
    """One application: a Deployment + Service in `apps/base/<name>/`."""

    name: Name
    image: Annotated[str, StringConstraints(pattern=IMAGE, max_length=255)]
    tag: Annotated[str, StringConstraints(pattern=TAG)] = "latest"
    port: int = Field(default=8080, ge=1, le=65535)

    @classmethod
    def parse(cls, text: str, **defaults: object) -> AppSpec:
        """`NAME=IMAGE[:TAG]` as the CLI takes it (a registry port is not taken for a tag)."""
        name, sep, ref = text.partition("=")
        if not sep or not name or not ref:
            raise ValueError(f"app {text!r}: expected NAME=IMAGE[:TAG]")
        image, tag = ref, None
        last = ref.rsplit("/", 1)[-1]
        if ":" in last:
            image, tag = ref.rsplit(":", 1)
        return cls.model_validate(
            {"name": name, "image": image, **({"tag": tag} if tag else {}), **defaults}
        )


class EnvironmentSpec(Strict):
    """One environment: an overlay in `infrastructure/overlays/<name>/` and `apps/overlays/<name>/`."""

    name: Name
    replicas: int = Field(default=1, ge=0, le=1000)

    @classmethod
    def named(cls, name: str) -> EnvironmentSpec:
        """Production-like names (`prod*`) get two replicas, others one; set it to override."""
        return cls(name=name, replicas=2 if name.startswith("prod") else 1)


class ImageAutomationSpec(Strict):
    """Image automation of the cluster's environment: an ImageRepository and an ImagePolicy per
    app, and one ImageUpdateAutomation that writes each policy's newest tag into the
    `$imagepolicy` markers of `apps/overlays/<cluster env>/` only (the other environments get
    new tags by `plinth promote`). It commits to the source branch, or, with
    `pull_request_provider`, to `branch` with one pull request on that Provider's forge."""

    range: str = Field(default=">=0.0.0", description="semver range of the tags to follow")
    interval: Annotated[str, StringConstraints(pattern=r"^([0-9]+(ms|s|m|h))+$")] = "1m"
    branch: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._/-]+$")] = "plinth/images"
    pull_request_provider: Name | None = Field(
        default=None, description="Provider (plinth-system) whose forge gets the pull request")
    insecure: bool = Field(default=False, description="the registry speaks plain HTTP")

    @field_validator("range")
    @classmethod
    def _range(cls, value: str) -> str:
        parse_constraint(value)  # ConstraintError is a ValueError: pydantic reports it
        return value


class RepoSpec(Strict):
    """Everything the template is rendered from."""

    cluster: Name
    cluster_env: Name | None = Field(
        default=None, description="The environment the cluster runs; default: the first one."
    )
    environments: list[EnvironmentSpec] = Field(min_length=1)
    apps: list[AppSpec] = Field(default_factory=list)
    registry: Annotated[str, StringConstraints(pattern=REGISTRY)] | None = None
    controller_version: Annotated[str, StringConstraints(pattern=TAG)] = "0.1.0"
    source_name: Name = Field(
        default="gitops", description="Name of the GitRepository the cluster Kustomizations use."
    )
    pull_secret: Name | None = Field(
        default=None, description="dockerconfigjson Secret in plinth-system for the controller image."
    )
    health_wait: bool = Field(
        default=True, description="Kustomizations wait for workloads to be healthy; off where "
                                  "no kubelet runs them (the local control plane)."
    )
    controller_image: Annotated[str, StringConstraints(pattern=IMAGE_REF)] | None = Field(
        default=None, description="Full image reference; default: <registry>/plinth-controller:<version>."
    )
    image_automation: ImageAutomationSpec | None = Field(
        default=None, description="Scan the apps' images and write new tags to git.")
    controller_role_arn: Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")] | None = Field(
        default=None, description="IAM role for the controller's ServiceAccount (EKS IRSA)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> RepoSpec:
        for label, names in (
            ("environments", [e.name for e in self.environments]),
            ("apps", [a.name for a in self.apps]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label}: duplicate names {dupes}")
        if self.cluster_env is not None and self.cluster_env not in self.env_names:
            raise ValueError(f"cluster_env {self.cluster_env!r} is not one of {self.env_names}")
        return self

    @property
    def env_names(self) -> list[str]:
        return [e.name for e in self.environments]

    @property
    def active_env(self) -> str:
        return self.cluster_env or self.environments[0].name

    @property
    def controller_image_ref(self) -> str:
        if self.controller_image:
            return self.controller_image
        repository = (f"{self.registry}/plinth-controller" if self.registry
                      else DEFAULT_CONTROLLER_REPOSITORY)
        return f"{repository}:{self.controller_version}"

    def image_of(self, app: AppSpec) -> str:
        """The app's image, under the registry when the image names no registry host itself."""
        first = app.image.split("/", 1)[0]
        has_host = "/" in app.image and ("." in first or ":" in first or first == "localhost")
        if self.registry and not has_host:
            return f"{self.registry}/{app.image}"
        return app.image
