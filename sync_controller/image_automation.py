"""ImageUpdateAutomation (Flux's image-automation-controller): write the images the
namespace's ImagePolicies chose into the fields marked with setter comments, commit, push.

Commits only when a marked field changed; a moved branch is refetched and the setters applied
again (bounded), never force-pushed. The files and lines changed go into the commit message.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import git
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from plinth.git_push import PushError, push_change
from sync_controller import conditions as cond
from sync_controller.durations import DurationError, parse_duration
from sync_controller.image_reflector import GROUP, VERSION, ImageOutcome
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster
from sync_controller.setters import Change, Image, update_tree
from sync_controller.source import SourceError
from sync_controller.sources import Sources

DEFAULT_MESSAGE = """\
plinth: update images ({{ automation }})

{% for c in changes %}{{ c.file }}:{{ c.line }} {{ c.policy }}: {{ c.old }} -> {{ c.new }}
{% endfor %}"""


class AutomationError(Exception):
    pass


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

    async def run(self, automation: dict[str, Any]) -> ImageOutcome:
        ref, meta = ObjectRef.of(automation), automation["metadata"]
        spec, status = automation.get("spec") or {}, dict(automation.get("status") or {})
        generation = int(meta.get("generation") or 0)
        interval = 60.0
        try:
            interval = parse_duration(spec.get("interval", "1m"), "spec.interval")
            source_ref = spec["sourceRef"]
            repo = await self.cluster.get(ObjectRef(
                GROUP, "GitRepository", source_ref.get("namespace") or meta["namespace"],
                source_ref["name"], VERSION))
            if repo is None:
                raise AutomationError(f"GitRepository {source_ref['name']} (spec.sourceRef) "
                                      "not found")
            credentials = await self.sources.credentials(repo)
            images = await self.images(meta["namespace"])
            git_spec = spec.get("git") or {}
            branch = (((git_spec.get("checkout") or {}).get("ref") or {}).get("branch")
                      or ((repo.get("spec") or {}).get("ref") or {}).get("branch") or "main")
            push_branch = (git_spec.get("push") or {}).get("branch")
            author = (git_spec.get("commit") or {}).get("author") or {}
            template = self.templates.from_string(
                (git_spec.get("commit") or {}).get("messageTemplate") or DEFAULT_MESSAGE)
            path = (spec.get("update") or {}).get("path") or "./"

            def change(work: Path) -> str | None:
                changes: list[Change] = update_tree(work, path, images)
                if not changes:
                    return None
                return str(template.render(automation=meta["name"], changes=changes))

            pushed = await asyncio.to_thread(
                push_change, repo["spec"]["url"], credentials, branch, change,
                push_branch=push_branch,
                author=git.Actor(author.get("name") or "plinth", author.get("email") or ""))
        except (AutomationError, PushError, SourceError, DurationError, TemplateError,
                ValueError) as err:
            cond.set_ready(status, False, "AutomationFailed", str(err), generation)
            await self.cluster.patch_status(ref, status)
            return ImageOutcome(False, str(err), interval, False)
        now = cond.now()
        status["lastAutomationRunTime"] = now
        if pushed.changed:
            status.update(lastPushCommit=pushed.commit, lastPushTime=now)
            message = f"pushed {pushed.commit[:12]} ({', '.join(pushed.changed)})"
        else:
            message = "no marked field needed a change"
        cond.set_ready(status, True, "Succeeded", message, generation)
        await self.cluster.patch_status(ref, status)
        return ImageOutcome(True, message, interval, bool(pushed.changed))
