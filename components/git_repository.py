"""GitRepository: one of the platform's two repositories (application code, GitOps config).

- `gitea`, `github`: a repository of an organisation on a forge (Gitea: the stack's own or a
  team's; GitHub), created through its API; the forge gets commit statuses and sends webhooks
  for the CD loop.
- `local`: a bare repository (dynamic provider, GitPython) in the stack's git server, served
  over smart HTTP with basic auth.
- `codecommit`: an AWS CodeCommit repository, cloned over HTTPS with git credentials.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

from components.local_servers import BareRepository, LocalServer
from plinth.forge import ForgeClient, ForgeKind, RepoRef, forge_kind


@dataclass(frozen=True)
class Forge:
    """A forge: Gitea (`url` its root) or GitHub (`url` its API root), and a token that may
    create repositories (and, on Gitea, organisations)."""

    url: pulumi.Input[str]
    token: pulumi.Output[str]
    organization: str
    kind: ForgeKind = "gitea"


@dataclass(frozen=True)
class GitRepositoryArgs:
    kind: str  # gitea | local | codecommit
    repo_name: str
    branch: str
    description: str
    local_server: LocalServer | None = None
    forge: Forge | None = None


class GitRepository(pulumi.ComponentResource):
    url: pulumi.Output[str]
    web_url: pulumi.Output[str] | None  # gitea: the repository's page (Provider address)
    arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: GitRepositoryArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:git_repository:GitRepository", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.arn = None
        self.web_url = None
        if args.kind in ("gitea", "github"):
            if args.forge is None:
                raise ValueError(f"a {args.kind} GitRepository needs its forge")
            on_forge = ForgeRepository(f"{name}-gitea", args.forge, args.repo_name,
                                       args.branch, args.description, opts=child)
            self.url, self.web_url = on_forge.url, on_forge.web_url
        elif args.kind == "local":
            if args.local_server is None:
                raise ValueError("a local GitRepository needs the stack's local git server")
            bare = BareRepository(f"{name}-bare", args.local_server.state_dir,
                                  args.repo_name, args.branch,
                                  opts=pulumi.ResourceOptions(parent=self,
                                                              depends_on=[args.local_server]))
            self.url = bare.url
        else:
            repo = aws.codecommit.Repository(
                f"{name}-codecommit", repository_name=args.repo_name,
                description=args.description, default_branch=args.branch, opts=child)
            self.url = repo.clone_url_http
            self.arn = repo.arn
        self.register_outputs({"url": self.url})


def _client(props: dict[str, Any]) -> ForgeClient:
    return ForgeClient(forge_kind(props["forge_kind"]), props["forge_url"], props["token"])


class ForgeRepositoryProvider(ResourceProvider):
    """A private repository of an organisation (made when missing, on Gitea) or of the
    token's own user; delete removes the repository, not the organisation (others may live
    there)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = _client(props)
        # a user's own repositories need no organisation; GitHub's cannot be made by API
        if client.kind == "gitea" and props["organization"] != client.login:
            client.ensure_organization(props["organization"])
        repo = client.ensure_repository(RepoRef(props["organization"], props["name"]),
                                        description=props["description"],
                                        default_branch=props["branch"])
        return CreateResult(id_=str(repo.ref), outs={**props, "url": repo.clone_url,
                                                     "web_url": repo.html_url})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("forge_kind", "forge_url", "organization", "name", "branch")
        replaces = [k for k in keys if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces), replaces=replaces,
                          delete_before_replace=True)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        _client(props).delete_repository(RepoRef.parse(id_))


class ForgeRepository(Resource):
    url: pulumi.Output[str]
    web_url: pulumi.Output[str]

    def __init__(self, name: str, forge: Forge, repo_name: str, branch: str, description: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ForgeRepositoryProvider(), name, {
            "forge_kind": forge.kind, "forge_url": forge.url, "token": forge.token,
            "organization": forge.organization, "name": repo_name, "branch": branch, "description": description, "url": None,
            "web_url": None}, pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["token"])))


class ForgeWebhookProvider(ResourceProvider):
    """The repository's push webhook to a Receiver (its secret the Receiver's token)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        hook = _client(props).ensure_webhook(RepoRef.parse(props["repository"]),
                                             props["hook_url"], props["secret"])
        return CreateResult(id_=str(hook.id), outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("forge_url", "repository", "hook_url", "secret")
        replaces = [k for k in keys if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces), replaces=replaces,
                          delete_before_replace=True)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        _client(props).delete_webhook(RepoRef.parse(props["repository"]), int(id_))


class ForgeWebhook(Resource):
    def __init__(self, name: str, forge: Forge, repository: pulumi.Input[str],
                 hook_url: pulumi.Input[str], secret: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ForgeWebhookProvider(), name, {
            "forge_kind": forge.kind, "forge_url": forge.url, "token": forge.token,
            "repository": repository,
            "hook_url": hook_url, "secret": secret}, pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["token", "secret"])))
