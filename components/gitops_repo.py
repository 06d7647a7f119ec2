"""GitOpsRepo: the scaffolded GitOps repository of the stack, committed and pushed.

A dynamic provider over `plinth.gitops_publish` (the scaffolder `plinth new` uses). Unchanged
inputs make no commit (no diff, and publishing would find nothing to change either); a changed
input makes one commit that lists the files. It never force-pushes.
"""
from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from plinth.git_auth import Credentials
from plinth.gitops_publish import publish
from plinth.repospec import RepoSpec

_COMPARED = ("spec", "url", "branch")


def _publish(props: dict[str, Any], reason: str) -> dict[str, Any]:
    spec = RepoSpec.model_validate(props["spec"])
    credentials = Credentials(username=props["username"], password=props["password"])
    result = publish(spec, props["url"], props["branch"], credentials, reason)
    return {key: props[key] for key in (*_COMPARED, "username")} | {
        "commit": result.commit, "changed": result.changed}


class GitOpsRepoProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _publish(props, "scaffold the GitOps repository")
        return CreateResult(id_=f"{props['url']}#{props['branch']}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in _COMPARED if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_publish(news, "update generated files from the stack config"))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The history stays with the repository; the GitRepository resource owns its deletion."""


class GitOpsRepo(pulumi.ComponentResource):
    commit: pulumi.Output[str]

    def __init__(self, name: str, spec: pulumi.Input[dict[str, Any]], url: pulumi.Input[str],
                 branch: str, username: pulumi.Input[str], password: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:gitops_repo:GitOpsRepo", name, None, opts)
        published = _Published(f"{name}-published", {
            "spec": spec, "url": url, "branch": branch, "username": username,
            "password": pulumi.Output.secret(password), "commit": None, "changed": None},
            pulumi.ResourceOptions(parent=self))
        self.commit = published.commit
        self.register_outputs({"commit": self.commit})


class _Published(Resource):
    commit: pulumi.Output[str]
    changed: pulumi.Output[list[str]]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__(GitOpsRepoProvider(), name, props, opts)
