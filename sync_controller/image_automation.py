"""ImageUpdateAutomation (Flux's image-automation-controller): write the images the
namespace's ImagePolicies chose into the fields marked with setter comments, commit, push.

Commits only when a marked field changed; a moved branch is refetched and the setters applied
again (bounded), never force-pushed. The files and lines changed go into the commit message.
Pushed to a branch of its own (`git.push.branch`) with a `providerRef`, the change also gets
its one pull request on the forge, kept up to date as later pushes add to the branch.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import git
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from plinth.forge import ForgeClient, ForgeError
from plinth.git_push import PushError, push_change
from sync_controller import conditions as cond
from sync_controller.api import (GitRepositorySpec, ImageUpdateAutomationSpec, ProviderSpec,
                                 spec_of)
from plinth.kinds import GROUP, VERSION
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster
from sync_controller.notify import ForgeTarget, token_of
from sync_controller.outcome import ReconcileError, Result, Stalling, Waiting
from sync_controller.setters import Change, Image, update_tree
from sync_controller.source import SourceError
from sync_controller.sources import Sources

DEFAULT_MESSAGE = """\
plinth: update images ({{ automation }})

{% for c in changes %}{{ c.file }}:{{ c.line }} {{ c.policy }}: {{ c.old }} -> {{ c.new }}
{% endfor %}"""


class ImageAutomation:
    def __init__(self, cluster: Cluster, sources: Sources) -> None:
        self.cluster = cluster
        self.sources = sources
        self.templates = SandboxedEnvironment(autoescape=False)

    async def images(self, namespace: str) -> dict[str, Image]:
        chosen = {}
        for policy in await self.cluster.list(f"{GROUP}/{VERSION}", "ImagePolicy", namespace):
            latest = (policy.get("status") or {}).get("latestRef")
            if latest:
                key = f"{namespace}:{policy['metadata']['name']}"
                chosen[key] = Image(latest["name"], latest["tag"], latest.get("digest"))
        return chosen

    async def run(self, automation: dict[str, Any], spec: ImageUpdateAutomationSpec,
                  status: dict[str, Any]) -> Result:
        meta = automation["metadata"]
        namespace, name = spec.source_ref.key(meta["namespace"])
        repo = await self.cluster.get(ObjectRef(GROUP, "GitRepository", namespace, name,
                                                VERSION))
        if repo is None:
            raise Waiting("DependencyNotReady",
                          f"GitRepository {namespace}/{name} (spec.sourceRef) not found")
        git_spec = spec.git
        try:
            credentials = await self.sources.credentials(repo)
            images = await self.images(meta["namespace"])
            source = spec_of(repo)
            assert isinstance(source, GitRepositorySpec)
            branch = git_spec.checkout.ref.branch or source.ref.branch or "main"
            template = self.templates.from_string(
                git_spec.commit.message_template or DEFAULT_MESSAGE)

            messages: list[str] = []

            def change(work: Path) -> str | None:
                changes: list[Change] = update_tree(work, spec.update.path, images)
                if not changes:
                    return None
                messages.append(str(template.render(automation=meta["name"], changes=changes)))
                return messages[-1]

            author = git_spec.commit.author
            pushed = await asyncio.to_thread(
                push_change, source.url, credentials, branch, change,
                push_branch=git_spec.push.branch, author=git.Actor(author.name, author.email))
        except (PushError, SourceError, TemplateError, ValueError) as err:
            raise ReconcileError("AutomationFailed", str(err)) from None
        now = cond.now()
        status["lastAutomationRunTime"] = now
        summary = "no marked field needed a change"
        if pushed.changed:
            status.update(lastPushCommit=pushed.commit, lastPushTime=now)
            summary = f"pushed {pushed.commit[:12]} ({', '.join(pushed.changed)})"
        push = git_spec.push
        # a pull request needs its branch: none before the first change is pushed there
        if push.branch and push.branch != branch and push.provider_ref and \
                pushed.target_exists and (pushed.changed or not status.get("pullRequest")):
            url = await self._pull_request(meta["namespace"], push.provider_ref.name,
                                           push.branch, branch, messages[-1] if messages else
                                           f"plinth: update images ({meta['name']})")
            status["pullRequest"] = url
            summary += f"; pull request {url}"
        return Result("Succeeded", summary, spec.interval, changed=bool(pushed.changed))

    async def _pull_request(self, namespace: str, provider: str, head: str, base: str,
                            message: str) -> str:
        """The one open pull request head -> base on the Provider's forge, its title and body
        the commit message (what changed, file and line): created, or updated."""
        found = await self.cluster.get(ObjectRef(GROUP, "Provider", namespace, provider,
                                                 VERSION))
        if found is None:
            raise Waiting("DependencyNotReady", f"Provider {namespace}/{provider} "
                                                "(spec.git.push.providerRef) not found")
        provider_spec = spec_of(found)
        assert isinstance(provider_spec, ProviderSpec)
        if provider_spec.type == "generic":
            raise Stalling("InvalidSpec", f"spec.git.push.providerRef: Provider {provider} is "
                                          "generic; a pull request needs a github or gitea one")
        target = ForgeTarget.of(provider_spec)
        token = await token_of(self.cluster, namespace, provider_spec.secret_ref)
        client = ForgeClient(target.kind, target.api_url, token or "",
                             timeout=provider_spec.timeout)
        title, _, body = message.partition("\n")
        try:
            pull = await asyncio.to_thread(client.ensure_pull_request, target.repo, head, base,
                                           title, body.strip())
        except ForgeError as err:
            raise ReconcileError("PullRequestFailed", str(err)) from None
        return pull.html_url
