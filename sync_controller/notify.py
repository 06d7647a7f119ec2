"""Alerts (Flux's notification-controller): the outcome of each object an Alert names goes to the
Alert's Provider. A github or gitea Provider turns a Kustomization's outcomes into commit
statuses on the revision it works on (the GitOps connector): `pending` when it starts on a
revision, `success` once applied and healthy, `failure` (or `error` for an unexpected error)
with the reason, under the context `plinth/<cluster>/<kustomization>`. A generic Provider gets
each outcome as JSON, signed like a generic-hmac Receiver expects (X-Signature).

Delivery never blocks a sync: each notice is routed and posted in a task of its own, retried
with backoff while the forge is down, and dropped once a newer state for the same commit and
context is wanted. The same state is never posted twice.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from plinth.forge import ForgeClient, ForgeError, ForgeKind, RepoRef, StatusState
from plinth.forge.signature import sign
from sync_controller import conditions as cond
from sync_controller.api import AlertSpec, LocalRef, ProviderSpec, spec_of
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster, KubeError
from sync_controller.outcome import ReconcileError, Result, Stalling, Waiting

GROUP_VERSION = "plinth.dev/v1"
MAX_RETRY_DELAY = 60.0
REMEMBERED = 4096  # posted states kept for deduplication, oldest forgotten first
log = logging.getLogger("plinth.notify")


@dataclass(frozen=True)
class Notice:
    kind: str
    namespace: str
    name: str
    state: StatusState
    reason: str
    message: str
    revision: str | None  # "<ref>@sha1:<sha>" as in the status; None when there is none

    @property
    def sha(self) -> str | None:
        sha = (self.revision or "").rpartition("sha1:")[2]
        return sha or None


@dataclass(frozen=True)
class ForgeTarget:
    """Where a github/gitea Provider posts: the API root and the repository."""

    kind: ForgeKind
    api_url: str
    repo: RepoRef

    @classmethod
    def of(cls, spec: ProviderSpec) -> ForgeTarget:
        """From the repository's web URL; a malformed one is a Stalling error naming it."""
        url = urlsplit(spec.address)
        parts = [p for p in url.path.split("/") if p]
        if len(parts) < 2:
            raise Stalling("InvalidAddress", f"spec.address {spec.address!r}: expected the "
                                             "repository's URL, such as https://HOST/ORG/REPO")
        repo = RepoRef(parts[-2], parts[-1].removesuffix(".git"))
        root = f"{url.scheme}://{url.netloc}"
        if spec.type == "gitea":
            return cls("gitea", root + "".join(f"/{p}" for p in parts[:-2]), repo)
        api = "https://api.github.com" if url.netloc == "github.com" else f"{root}/api/v3"
        return cls("github", api, repo)


class ProviderReconciler:
    """A Provider is Ready when its address parses and its Secret holds a token."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def reconcile(self, obj: dict[str, Any], spec: ProviderSpec,
                        status: dict[str, Any]) -> Result:
        namespace = obj["metadata"]["namespace"]
        where = f"events to {spec.address}"
        if spec.type != "generic":
            where = f"commit statuses on {ForgeTarget.of(spec).repo}"
            if spec.secret_ref is None:
                raise Stalling("TokenNotFound", "spec.secretRef: a github or gitea Provider "
                                                "needs a Secret with a token")
        await token_of(self.cluster, namespace, spec.secret_ref)
        return Result("Succeeded", f"sending {where}", spec.interval)


class AlertReconciler:
    """An Alert is Ready when its Provider exists."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def reconcile(self, obj: dict[str, Any], spec: AlertSpec,
                        status: dict[str, Any]) -> Result:
        namespace = obj["metadata"]["namespace"]
        provider = await self.cluster.get(ObjectRef("plinth.dev", "Provider", namespace,
                                                    spec.provider_ref.name, "v1"))
        if provider is None:
            raise Waiting("ProviderNotFound", f"Provider {namespace}/{spec.provider_ref.name} "
                                              "(spec.providerRef) not found")
        sources = ", ".join(f"{s.kind}/{s.name}" for s in spec.event_sources)
        return Result("Succeeded", f"sending {spec.event_severity} events of {sources} to "
                                   f"Provider {spec.provider_ref.name}", spec.interval)


async def token_of(cluster: Cluster, namespace: str, secret_ref: LocalRef | None
                   ) -> str | None:
    """The `token` key of the Secret a Provider or Receiver names (None: it names none)."""
    if secret_ref is None:
        return None
    secret = await cluster.get(ObjectRef("", "Secret", namespace, secret_ref.name, "v1"))
    encoded = ((secret or {}).get("data") or {}).get("token")
    if not encoded:
        raise Waiting("TokenNotFound", f"secret {namespace}/{secret_ref.name} "
                                       "(spec.secretRef) not found or has no token key")
    return base64.b64decode(encoded).decode()


class Notifier:
    def __init__(self, cluster: Cluster, cluster_name: str) -> None:
        self.cluster = cluster
        self.cluster_name = cluster_name
        # per commit and context (or object): the newest notice emitted, by its number
        self._wanted: dict[tuple[str, ...], tuple[int, str]] = {}
        self._posted: OrderedDict[tuple[str, ...], tuple[int, str]] = OrderedDict()
        self._sending: dict[tuple[str, ...], asyncio.Lock] = {}
        self._numbers = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, notice: Notice) -> None:
        """Route and deliver `notice` in the background. Notices are numbered as emitted, so
        a newer one always wins, whichever task gets to the forge first."""
        task = asyncio.create_task(self._route(notice, next(self._numbers)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def context(self, kustomization: str) -> str:
        return f"plinth/{self.cluster_name}/{kustomization}"

    async def _route(self, notice: Notice, number: int) -> None:
        try:
            alerts = await self.cluster.list(GROUP_VERSION, "Alert", notice.namespace)
        except KubeError as err:
            log.warning("cannot list Alerts", extra={"namespace": notice.namespace,
                                                     "error": str(err)})
            return
        failed = notice.state in (StatusState.FAILURE, StatusState.ERROR)
        for alert in alerts:
            try:
                spec = spec_of(alert)
            except Stalling:
                continue
            assert isinstance(spec, AlertSpec)
            if spec.suspend or (spec.event_severity == "error" and not failed):
                continue
            if not any(s.matches(notice.kind, notice.namespace, notice.name, notice.namespace)
                       for s in spec.event_sources):
                continue
            await self._deliver(notice, number, notice.namespace, spec.provider_ref.name)

    async def _deliver(self, notice: Notice, number: int, namespace: str,
                       provider_name: str) -> None:
        ref = ObjectRef("plinth.dev", "Provider", namespace, provider_name, "v1")
        provider = await self.cluster.get(ref)
        if provider is None:
            return
        try:
            spec = spec_of(provider)
        except Stalling:
            return
        assert isinstance(spec, ProviderSpec)
        if spec.suspend:
            return
        if spec.type == "generic":
            key: tuple[str, ...] = (str(ref), notice.kind, notice.name)
            fingerprint = f"{notice.revision}:{notice.state}:{notice.message}"
        else:
            if notice.kind != "Kustomization" or notice.sha is None:
                return
            key = (str(ref), notice.sha, self.context(notice.name))
            fingerprint = notice.state.value
        mine = (number, fingerprint)
        newest = max(self._wanted.get(key, (-1, ""))[0], self._posted.get(key, (-1, ""))[0])
        if newest > number:
            return  # a newer notice for this commit and context came first
        self._wanted[key] = mine
        sending = self._sending.setdefault(key, asyncio.Lock())
        async with sending:  # one post at a time per key, so they land in order
            delay = 1.0
            while self._wanted.get(key) == mine and \
                    self._posted.get(key, (-1, ""))[1] != fingerprint:
                try:
                    await self._post(spec, namespace, notice)
                    self._remember(key, mine)
                except (ForgeError, OSError, ReconcileError, KubeError) as err:
                    log.warning("notification not delivered; retrying", extra={
                        "provider": str(ref), "object": f"{notice.kind}/{notice.name}",
                        "state": notice.state.value, "error": str(err), "retry_in": delay})
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY)
            posted = self._posted.get(key)
            if posted is not None and posted[1] == fingerprint and posted[0] < number:
                self._remember(key, mine)  # already there: still, older notices lose now
            if self._wanted.get(key) == mine:
                del self._wanted[key]
                del self._sending[key]

    def _remember(self, key: tuple[str, ...], posted: tuple[int, str]) -> None:
        self._posted[key] = posted
        self._posted.move_to_end(key)
        while len(self._posted) > REMEMBERED:
            self._posted.popitem(last=False)

    async def _post(self, spec: ProviderSpec, namespace: str, notice: Notice) -> None:
        token = await token_of(self.cluster, namespace, spec.secret_ref)
        if spec.type == "generic":
            await asyncio.to_thread(_post_json, spec, token, notice)
            return
        target = ForgeTarget.of(spec)
        client = ForgeClient(target.kind, target.api_url, token or "", timeout=spec.timeout)
        # The commit is the status's own: the revision at the head of a message repeats it,
        # in the 140 characters a description has.
        message = notice.message.removeprefix(f"{notice.revision}: ")
        description = message if notice.state is StatusState.SUCCESS else \
            f"{notice.reason}: {message}"
        assert notice.sha is not None
        await asyncio.to_thread(client.post_status, target.repo, notice.sha, notice.state,
                                self.context(notice.name), description=description)


def _post_json(spec: ProviderSpec, token: str | None, notice: Notice) -> None:
    body = json.dumps({
        "involvedObject": {"kind": notice.kind, "namespace": notice.namespace,
                           "name": notice.name, "apiVersion": GROUP_VERSION},
        "severity": "error" if notice.state in (StatusState.FAILURE, StatusState.ERROR)
        else "info",
        "state": notice.state.value, "reason": notice.reason, "message": notice.message,
        "revision": notice.revision, "timestamp": cond.now()}).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Signature"] = sign(token, body)
    request = urllib.request.Request(spec.address, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=spec.timeout) as response:
            response.read()
    except urllib.error.HTTPError as err:
        raise ForgeError(f"POST {spec.address}", err.code, err.reason) from None
