"""The kopf operator: one daemon per GitRepository and per Kustomization, each a loop of
reconcile -> sleep(interval) that a new source revision, a spec change or a dependency turning
Ready wakes at once. Deleting a Kustomization runs its prune behind a finalizer.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

import aiohttp
import kopf
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from sync_controller import inventory
from sync_controller.gitrepository import GitRepositoryReconciler
from sync_controller.image_automation import ImageAutomation
from sync_controller.image_reflector import ImageOutcome, ImageReflector
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster, api_client
from sync_controller.metrics import Metrics, ProbeServer
from sync_controller.durations import parse_duration
from sync_controller.prune import prune, wait_gone
from sync_controller.readiness import Readiness
from sync_controller.reconcile import KustomizationReconciler, Outcome
from sync_controller.sources import Sources

GROUP, VERSION = "plinth.dev", "v1"
FINALIZER = "finalizers.plinth.dev"
MAX_BACKOFF = 300.0
MAX_CONNECT_BACKOFF = 30.0  # at startup, come up soon after the API server does

log = logging.getLogger("plinth.controller")
Key = tuple[str, str, str]  # kind, namespace, name
Once = Callable[[dict[str, Any], Key], Awaitable[float | None]]
SUSPENDED_RECHECK = 60.0  # a resume is a spec change and wakes the loop at once anyway
PLURALS = {"gitrepositories": "GitRepository", "kustomizations": "Kustomization",
           "imagerepositories": "ImageRepository", "imagepolicies": "ImagePolicy",
           "imageupdateautomations": "ImageUpdateAutomation"}


class _Result(Protocol):
    @property
    def ready(self) -> bool: ...


R = TypeVar("R", bound=_Result)


@dataclass(frozen=True)
class Options:
    kubeconfig: str | None
    namespaces: list[str]  # empty: every namespace
    cache_dir: Path
    probe_address: str
    probe_port: int


@dataclass
class _Wiring:
    """Who wakes whom: GitRepository -> Kustomizations using it, Kustomization -> dependents."""

    wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    readers: dict[Key, set[Key]] = field(default_factory=dict)
    dependents: dict[Key, set[Key]] = field(default_factory=dict)
    generations: dict[Key, int] = field(default_factory=dict)

    def waker(self, key: Key) -> asyncio.Event:
        return self.wakers.setdefault(key, asyncio.Event())

    def wake(self, keys: set[Key]) -> None:
        for key in keys:
            self.waker(key).set()

    def record(self, key: Key, sources: list[Key], depends_on: list[Key]) -> None:
        for readers in self.readers.values():
            readers.discard(key)
        for dependents in self.dependents.values():
            dependents.discard(key)
        for source in sources:
            self.readers.setdefault(source, set()).add(key)
        for dependency in depends_on:
            self.dependents.setdefault(dependency, set()).add(key)

    def forget(self, key: Key) -> None:
        self.wakers.pop(key, None)
        self.generations.pop(key, None)


class Controller:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.registry = kopf.OperatorRegistry()
        self.metrics = Metrics()
        self.wiring = _Wiring()
        self._cluster: Cluster | None = None
        self._events: dict[Key, str] = {}
        self._register()

    @property
    def cluster(self) -> Cluster:
        assert self._cluster is not None, "used before startup"
        return self._cluster

    async def run(self) -> None:
        """Serve the probes at once, then connect and run the operator until stopped."""
        if self.options.kubeconfig:
            os.environ["KUBECONFIG"] = self.options.kubeconfig  # for kopf's own login
        api = await api_client(self.options.kubeconfig)
        started = asyncio.Event()
        probes = ProbeServer(self.metrics, Readiness(api, started), self.options.probe_address,
                             self.options.probe_port)
        await probes.start()
        try:
            self._cluster = await self._connect(api)
            await self._operate(started)
        finally:
            await probes.stop()
            await api.close()

    async def _connect(self, api: ApiClient) -> Cluster:
        """Discovery needs the API server. While it is away, wait for it with backoff, alive
        and not ready (/readyz says why), rather than exit into a restart loop."""
        failures = 0
        while True:
            try:
                return await Cluster.connect(api, self.options.cache_dir / "discovery")
            except (aiohttp.ClientError, asyncio.TimeoutError, ApiException) as err:
                delay = min(2.0 * 2.0 ** failures, MAX_CONNECT_BACKOFF)
                log.warning("API server not reachable; retrying",
                            extra={"error": str(err), "retry_in": delay})
                failures += 1
                await asyncio.sleep(delay)

    async def _operate(self, started: asyncio.Event) -> None:
        sources = Sources(self.cluster, self.options.cache_dir / "sources")
        self.kustomizations = KustomizationReconciler(self.cluster, sources)
        self.repositories = GitRepositoryReconciler(self.cluster, sources)
        self.reflector = ImageReflector(self.cluster)
        self.automation = ImageAutomation(self.cluster, sources)
        try:
            await kopf.operator(registry=self.registry, standalone=True, ready_flag=started,
                                clusterwide=not self.options.namespaces,
                                namespaces=self.options.namespaces)
        finally:
            await self.reflector.close()

    def _register(self) -> None:
        registry = self.registry

        @kopf.on.startup(registry=registry)
        def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
            settings.persistence.finalizer = FINALIZER
            settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
                prefix="plinth.dev")
            settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
                prefix="plinth.dev", key="last-handled-configuration")
            settings.posting.level = logging.WARNING
            settings.watching.server_timeout = 300
            settings.watching.connect_timeout = 30

        @kopf.on.login(registry=registry)
        def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
            if self.options.kubeconfig:
                return kopf.login_with_kubeconfig(**kwargs)
            return kopf.login_with_service_account(**kwargs)

        for plural, kind in PLURALS.items():
            self._register_kind(plural, kind)

        @kopf.on.delete(GROUP, VERSION, "kustomizations", registry=registry)
        async def deleted(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
            await self._delete_kustomization(dict(body), ("Kustomization", namespace or "", name))

    def _register_kind(self, plural: str, kind: str) -> None:
        @kopf.daemon(GROUP, VERSION, plural, registry=self.registry, cancellation_timeout=5.0,
                     id=f"{plural}-loop")
        async def loop(stopped: kopf.DaemonStopped, namespace: str | None, name: str,
                       **_: Any) -> None:
            await self._loop(stopped, (kind, namespace or "", name))

        @kopf.on.event(GROUP, VERSION, plural, registry=self.registry, id=f"{plural}-spec")
        def spec_changed(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
            """A new generation (spec edit) reconciles at once instead of at the interval."""
            key = (kind, namespace or "", name)
            generation = body.get("metadata", {}).get("generation")
            if key in self.wiring.generations and generation != self.wiring.generations[key]:
                self.wiring.waker(key).set()

    async def _sleep(self, key: Key, stopped: kopf.DaemonStopped, seconds: float) -> None:
        waker = self.wiring.waker(key)
        tasks = {asyncio.ensure_future(waker.wait()),
                 asyncio.ensure_future(stopped.wait(seconds))}
        try:
            await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
        waker.clear()

    async def _loop(self, stopped: kopf.DaemonStopped, key: Key) -> None:
        """Reconcile, sleep the returned delay (negative: a failure, backed off), repeat."""
        kind, namespace, name = key
        ref = ObjectRef(GROUP, kind, namespace, name, VERSION)
        once: Once = {"GitRepository": self._repository_once,
                      "Kustomization": self._kustomization_once,
                      "ImageRepository": self._image_repository_once,
                      "ImagePolicy": self._image_policy_once,
                      "ImageUpdateAutomation": self._automation_once}[kind]
        failures = 0
        while not stopped:
            delay = await self._guarded(ref, failures, self._current(ref, key, once))
            if delay is None:
                return
            failures = failures + 1 if delay < 0 else 0
            await self._sleep(key, stopped, abs(delay))

    async def _current(self, ref: ObjectRef, key: Key, once: Once) -> float | None:
        """Reconcile the object as it is now; None ends the loop (deleted or being deleted)."""
        obj = await self.cluster.get(ref)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            if obj is None:
                self.wiring.forget(key)
            return None
        self.wiring.generations[key] = obj["metadata"]["generation"]
        if (obj.get("spec") or {}).get("suspend"):
            return SUSPENDED_RECHECK
        return await once(obj, key)

    async def _repository_once(self, obj: dict[str, Any], key: Key) -> float | None:
        outcome = await self._timed(key, self.repositories.reconcile(obj))
        log.info("fetched", extra={"gitrepository": "/".join(key[1:]), "ready": outcome.ready,
                                   "revision": outcome.revision, "detail": outcome.message})
        self._event(obj, key, outcome.ready, "GitOperationFailed", outcome.message,
                    changed=outcome.changed)
        if outcome.changed:
            self.wiring.wake(self.wiring.readers.get(key, set()))
        return outcome.interval if outcome.ready else -outcome.interval

    async def _kustomization_once(self, obj: dict[str, Any], key: Key) -> float | None:
        spec = obj.get("spec") or {}
        namespace = key[1]
        source = spec.get("sourceRef") or {}
        self.wiring.record(
            key, [("GitRepository", source.get("namespace") or namespace,
                   source.get("name", ""))],
            [("Kustomization", d.get("namespace") or namespace, d["name"])
             for d in spec.get("dependsOn") or []])
        outcome = await self._timed(key, self.kustomizations.reconcile(obj))
        self._record_objects(key, outcome)
        summary = (f"{outcome.message}; {len(outcome.applied.changed)} changed, "
                   f"{len(outcome.pruned.deleted)} pruned") if outcome.ready else outcome.message
        self._event(obj, key, outcome.ready, outcome.reason, summary,
                    changed=bool(outcome.applied.changed or outcome.pruned.deleted))
        if outcome.ready:
            self.wiring.wake(self.wiring.dependents.get(key, set()))
        return outcome.requeue_after

    async def _image_repository_once(self, obj: dict[str, Any], key: Key) -> float | None:
        return self._image_result(obj, key, await self._timed(key, self.reflector.scan(obj)))

    async def _image_policy_once(self, obj: dict[str, Any], key: Key) -> float | None:
        repo = (obj.get("spec") or {}).get("imageRepositoryRef") or {}
        self.wiring.record(key, [("ImageRepository", repo.get("namespace") or key[1],
                                  repo.get("name", ""))], [])
        return self._image_result(obj, key, await self._timed(key, self.reflector.choose(obj)),
                                  wakes=("ImagePolicies", key[1], ""))

    async def _automation_once(self, obj: dict[str, Any], key: Key) -> float | None:
        self.wiring.record(key, [("ImagePolicies", key[1], "")], [])
        return self._image_result(obj, key, await self._timed(key, self.automation.run(obj)))

    async def _timed(self, key: Key, step: Awaitable[R]) -> R:
        """Await one reconcile, recording its duration and readiness as metrics."""
        started = time.monotonic()
        outcome = await step
        self.metrics.reconcile_duration.labels(*key).observe(time.monotonic() - started)
        self.metrics.ready.labels(*key).set(1 if outcome.ready else 0)
        return outcome

    def _image_result(self, obj: dict[str, Any], key: Key, outcome: ImageOutcome,
                      wakes: Key | None = None) -> float:
        """Event and log as for the other kinds; a change wakes whoever reads this object."""
        log.info("reconciled", extra={"object": "/".join(key), "ready": outcome.ready,
                                      "detail": outcome.message})
        self._event(obj, key, outcome.ready, "ReconciliationFailed", outcome.message,
                    changed=outcome.changed)
        if outcome.changed:
            self.wiring.wake(self.wiring.readers.get(wakes or key, set()))
        return outcome.interval if outcome.ready else -outcome.interval

    async def _guarded(self, ref: ObjectRef, failures: int,
                       step: Awaitable[float | None]) -> float | None:
        """Run one reconcile; an unexpected error (API down, say) is logged and backed off."""
        try:
            delay: float | None = await step
            if delay is not None and delay < 0:
                return -min(abs(delay), 2.0 * 2.0 ** min(failures, 10), MAX_BACKOFF)
            return delay
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the loop must outlive any single failure
            log.warning("reconcile failed", extra={"object": str(ref), "error": str(err)})
            return -min(2.0 * 2.0 ** min(failures, 10), MAX_BACKOFF)

    def _record_objects(self, key: Key, outcome: Outcome) -> None:
        self.metrics.applied.labels(*key).inc(len(outcome.applied.changed))
        self.metrics.pruned.labels(*key).inc(len(outcome.pruned.deleted))
        log.info("reconciled", extra={
            "kustomization": "/".join(key[1:]), "ready": outcome.ready, "reason": outcome.reason,
            "revision": outcome.revision, "changed": len(outcome.applied.changed),
            "pruned": len(outcome.pruned.deleted), "detail": outcome.message})

    def _event(self, obj: dict[str, Any], key: Key, ready: bool, reason: str, message: str,
               changed: bool) -> None:
        """An Event when something changed or the outcome differs from the last one posted."""
        last = self._events.get(key)
        fingerprint = f"{ready}:{message}"
        if not changed and last == fingerprint:
            return
        self._events[key] = fingerprint
        kopf.event(kopf.Body(cast(kopf.RawBody, obj)), type="Normal" if ready else "Warning",
                   reason="ReconciliationSucceeded" if ready else reason, message=message[:1024])

    async def _delete_kustomization(self, obj: dict[str, Any], key: Key) -> None:
        spec = obj.get("spec") or {}
        if spec.get("prune", True) and not spec.get("suspend"):
            refs = inventory.from_status(obj.get("status"))
            result = await prune(self.cluster, refs, (key[1], key[2]))
            timeout = parse_duration(spec.get("timeout", "5m"), "spec.timeout")
            left = await wait_gone(self.cluster, result.deleted, timeout)
            if left:
                log.warning("pruned objects still present", extra={
                    "kustomization": "/".join(key[1:]), "objects": [str(r) for r in left]})
            self.metrics.pruned.labels(*key).inc(len(result.deleted))
            log.info("pruned on delete", extra={"kustomization": "/".join(key[1:]),
                                                "pruned": len(result.deleted)})
        self.wiring.forget(key)
        self.metrics.forget(*key)
