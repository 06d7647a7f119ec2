"""Webhook receivers (Flux's notification-controller Receiver): a forge calls
`/hook/<digest>` on a push, and the named GitRepositories fetch at once instead of at their
interval; their Kustomizations follow as they do on any new revision.

The path is a digest of the Secret's token and the Receiver's name, so it is unguessable and
changes with the token. A request is verified before anything else is done: an unknown path, a
bad or missing signature, an event the Receiver does not want, or a body over MAX_BODY_BYTES
is answered at once and wakes nothing; a flood of valid ones coalesces into one fetch per
repository (waking an object that is already awake does nothing).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from plinth.forge.signature import receiver_path, verify
from sync_controller.api import GitRepositorySpec, ReceiverSpec, spec_of
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster
from sync_controller.notify import token_of
from sync_controller.outcome import Result, Stalling

MAX_BODY_BYTES = 1024 * 1024  # GitHub caps payloads at 25 MB; a push of a GitOps repo is KBs
EVENT_HEADERS = ("X-GitHub-Event", "X-Gitea-Event")
log = logging.getLogger("plinth.receiver")
Wake = Callable[[str, str], None]  # (namespace, name) of a GitRepository


@dataclass(frozen=True)
class Endpoint:
    namespace: str
    name: str
    spec: ReceiverSpec
    token: str

    def refusal(self, headers: Any, body: bytes) -> tuple[int, str] | None:
        """(status, reason) when the request must do nothing; None when it is genuine and
        wanted."""
        if self.spec.type in ("github", "gitea"):
            if not verify(self.token, body, headers.get("X-Hub-Signature-256")):
                return 401, "bad or missing X-Hub-Signature-256"
            event = next((headers[h] for h in EVENT_HEADERS if h in headers), None)
            if event not in (self.spec.events or ["push"]):
                return 202, f"event {event!r} ignored"
        elif self.spec.type == "generic-hmac":
            if not verify(self.token, body, headers.get("X-Signature")):
                return 401, "bad or missing X-Signature"
        return None


class ReceiverReconciler:
    """Keeps `endpoints` (webhook path -> Endpoint) equal to the Receivers and their Secrets."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.endpoints: dict[str, Endpoint] = {}

    async def reconcile(self, obj: dict[str, Any], spec: ReceiverSpec,
                        status: dict[str, Any]) -> Result:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        self.forget(namespace, name)
        token = await token_of(self.cluster, namespace, spec.secret_ref)
        assert token is not None  # a Receiver always names its Secret
        path = receiver_path(token, namespace, name)
        self.endpoints[path] = Endpoint(namespace, name, spec, token)
        status["webhookPath"] = path
        return Result("Succeeded", f"receiving {spec.type} events at {path}", spec.interval)

    def forget(self, namespace: str, name: str) -> None:
        for path, endpoint in list(self.endpoints.items()):
            if (endpoint.namespace, endpoint.name) == (namespace, name):
                del self.endpoints[path]


class ReceiverServer:
    def __init__(self, receivers: ReceiverReconciler, cluster: Cluster, wake: Wake,
                 host: str, port: int) -> None:
        self.receivers, self.cluster, self.wake = receivers, cluster, wake
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/hook/{digest}", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        endpoint = self.receivers.endpoints.get(request.path)
        if endpoint is None:
            return web.Response(status=404, text="no such receiver")
        body = await request.read()  # bounded by client_max_size: 413 beyond it
        refusal = endpoint.refusal(request.headers, body)
        if refusal is not None:
            status, reason = refusal
            log.info("webhook refused", extra={"receiver": f"{endpoint.namespace}/"
                                               f"{endpoint.name}", "reason": reason})
            return web.Response(status=status, text=reason)
        pushed = _pushed_ref(body) if endpoint.spec.type in ("github", "gitea") else None
        woken = []
        for source in endpoint.spec.resources:
            namespace, name = source.key(endpoint.namespace)
            if pushed is not None and not await self._follows(namespace, name, pushed):
                continue
            self.wake(namespace, name)
            woken.append(f"{namespace}/{name}")
        log.info("webhook accepted", extra={"receiver": f"{endpoint.namespace}/{endpoint.name}",
                                            "woken": woken})
        return web.json_response({"reconciling": woken})

    async def _follows(self, namespace: str, name: str, ref: str) -> bool:
        """Whether a push of `ref` (refs/heads/... or refs/tags/...) can change what the
        GitRepository holds: its branch, or any tag for a tag or semver ref; never a commit."""
        repo = await self.cluster.get(ObjectRef("plinth.dev", "GitRepository", namespace, name,
                                                "v1"))
        if repo is None:
            return False
        try:
            spec = spec_of(repo)
        except Stalling:
            return False
        assert isinstance(spec, GitRepositorySpec)
        if spec.ref.commit:
            return False
        if spec.ref.tag or spec.ref.semver:
            return ref.startswith("refs/tags/")
        return ref == f"refs/heads/{spec.ref.branch or 'main'}"


def _pushed_ref(body: bytes) -> str | None:
    """The ref a push event names; None when the payload names none (then every resource
    fetches)."""
    try:
        ref = json.loads(body).get("ref")
    except (ValueError, AttributeError):
        return None
    return ref if isinstance(ref, str) and ref.startswith("refs/") else None
