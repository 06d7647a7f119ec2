"""The controller's API: one typed model per kind's spec, read once per reconcile.

The CRDs in `crds/` declare the same fields, defaults and enums for the API server; a test
holds the two equal (`tests/controller/test_api.py`), so a default lives in one place per side
and no reconciler reads an untyped dict. A spec that does not parse is a stalling error naming
each field, since only a spec change can fix it.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic import WithJsonSchema
from pydantic.alias_generators import to_camel

from sync_controller.durations import parse_duration
from sync_controller.outcome import Stalling


def _seconds(value: object) -> object:
    return parse_duration(value, "") if isinstance(value, str) else value


# Written as a Go duration ("1m30s"), held in seconds.
Duration = Annotated[float, BeforeValidator(_seconds), WithJsonSchema({"type": "string"})]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True,
                              extra="ignore")


class LocalRef(_Model):
    name: str


class CrossRef(_Model):
    """An object of this controller's kinds, in the referrer's namespace unless it names one."""

    name: str
    namespace: str | None = None

    def key(self, own_namespace: str) -> tuple[str, str]:
        return self.namespace or own_namespace, self.name


class SourceRef(CrossRef):
    kind: Literal["GitRepository"] = "GitRepository"


class GitRef(_Model):
    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    commit: str | None = None


class Spec(_Model):
    interval: Duration
    suspend: bool = False

    @property
    def retry_after(self) -> float:
        """How soon a failed reconcile runs again."""
        return self.interval


class GitRepositorySpec(Spec):
    url: str
    ref: GitRef = GitRef(branch="main")
    interval: Duration = Field(default="1m", validate_default=True)
    timeout: Duration = Field(default="60s", validate_default=True)
    secret_ref: LocalRef | None = None


class HealthCheck(_Model):
    api_version: str
    kind: str
    name: str
    namespace: str | None = None


class KustomizationSpec(Spec):
    source_ref: SourceRef
    path: str
    interval: Duration = Field(default="5m", validate_default=True)
    retry_interval: Duration | None = None
    timeout: Duration = Field(default="5m", validate_default=True)
    prune: bool = True
    wait: bool = False
    health_checks: list[HealthCheck] = []
    depends_on: list[CrossRef] = []
    target_namespace: str | None = Field(default=None, max_length=63)
    force: bool = False
    service_account_name: str | None = None

    @property
    def retry_after(self) -> float:
        return self.retry_interval or self.interval


class ImageRepositorySpec(Spec):
    image: str
    interval: Duration = Field(default="5m", validate_default=True)
    timeout: Duration = Field(default="30s", validate_default=True)
    secret_ref: LocalRef | None = None
    provider: Literal["generic", "aws"] = "generic"
    insecure: bool = False


class ImagePolicySpec(Spec):
    image_repository_ref: CrossRef
    # Read by `image_policy.Policy`, which names the field of each problem.
    policy: dict[str, dict[str, Any]]
    filter_tags: dict[str, str] | None = None
    digest_reflection_policy: Literal["Never", "Always"] = "Never"
    interval: Duration = Field(default="1m", validate_default=True)


class CommitAuthor(_Model):
    name: str = "plinth"
    email: str


class CommitSpec(_Model):
    author: CommitAuthor
    message_template: str | None = None


class BranchRef(_Model):
    branch: str | None = None


class CheckoutSpec(_Model):
    ref: BranchRef = BranchRef()


class PushSpec(_Model):
    branch: str | None = None
    provider_ref: LocalRef | None = None  # with branch: a pull request on this Provider's forge


class GitSpec(_Model):
    checkout: CheckoutSpec = CheckoutSpec()
    commit: CommitSpec
    push: PushSpec = PushSpec()


class UpdateSpec(_Model):
    path: str = "./"
    strategy: Literal["Setters"] = "Setters"


class ImageUpdateAutomationSpec(Spec):
    source_ref: SourceRef
    git: GitSpec
    update: UpdateSpec
    interval: Duration = Field(default="1m", validate_default=True)


class ReceiverSpec(Spec):
    type: Literal["github", "gitea", "generic", "generic-hmac"]
    events: list[str] = []
    secret_ref: LocalRef
    resources: list[SourceRef] = Field(min_length=1)
    interval: Duration = Field(default="10m", validate_default=True)


class ProviderSpec(Spec):
    type: Literal["github", "gitea", "generic"]
    address: str
    secret_ref: LocalRef | None = None
    timeout: Duration = Field(default="15s", validate_default=True)
    interval: Duration = Field(default="10m", validate_default=True)


class EventSource(CrossRef):
    kind: Literal["GitRepository", "Kustomization", "ImageRepository", "ImagePolicy",
                  "ImageUpdateAutomation"]

    def matches(self, kind: str, namespace: str, name: str, own_namespace: str) -> bool:
        return kind == self.kind and namespace == (self.namespace or own_namespace) and \
            self.name in ("*", name)


class AlertSpec(Spec):
    provider_ref: LocalRef
    event_sources: list[EventSource] = Field(min_length=1)
    event_severity: Literal["info", "error"] = "info"
    interval: Duration = Field(default="10m", validate_default=True)


SPECS: dict[str, type[Spec]] = {
    "GitRepository": GitRepositorySpec, "Kustomization": KustomizationSpec,
    "ImageRepository": ImageRepositorySpec, "ImagePolicy": ImagePolicySpec,
    "ImageUpdateAutomation": ImageUpdateAutomationSpec, "Receiver": ReceiverSpec,
    "Provider": ProviderSpec, "Alert": AlertSpec,
}


def spec_of(obj: dict[str, Any]) -> Spec:
    """The object's spec as its kind's model; Stalling("InvalidSpec") naming every bad field."""
    try:
        return SPECS[obj["kind"]].model_validate(obj.get("spec") or {})
    except ValidationError as err:
        problems = []
        for error in err.errors():
            where = ".".join(["spec", *(str(part) for part in error["loc"])])
            problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise Stalling("InvalidSpec", "; ".join(problems)) from None


def default_retry(kind: str) -> float:
    """The kind's default interval: how soon to retry an object whose spec does not parse."""
    return parse_duration(str(SPECS[kind].model_fields["interval"].default), "")
