"""The kopf operator: one daemon per object of the five kinds, each a loop of reconcile ->
sleep that a spec change, or a change of what it reads (a new source revision, a dependency
turning Ready, new tags), wakes at once. Whatever a reconcile ends in is reported in one place
(`Controller._once`). Deleting a Kustomization runs its prune behind a finalizer.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import kopf
from plinth.forge import StatusState
from plinth.kinds import GROUP, PLURALS, VERSION
from plinth.reconcile_request import HANDLED_AT, requested

from sync_controller import conditions as cond
from sync_controller import inventory
from sync_controller.gitrepository import GitRepositoryReconciler
from sync_controller.image_automation import ImageAutomation
from sync_controller.image_reflector import ImageReflector
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster, Connection, KubeError, login
from sync_controller.metrics import Metrics, ProbeServer
from sync_controller.prune import prune, wait_gone
from sync_controller.readiness import Readiness
from sync_controller.api import (AlertSpec, GitRepositorySpec, ImagePolicySpec,
                                 ImageRepositorySpec, ImageUpdateAutomationSpec,
                                 KustomizationSpec, ProviderSpec, ReceiverSpec, Spec,
                                 default_retry, spec_of)
from sync_controller.outcome import (UNEXPECTED, Result, Stalling, Waiting, failure_of,
                                     write_failure, write_success)
from sync_controller.notify import AlertReconciler, Notice, Notifier, ProviderReconciler
from sync_controller.receiver import ReceiverReconciler, ReceiverServer
from sync_controller.reconcile import KustomizationReconciler
from sync_controller.sources import Sources

FINALIZER = "finalizers.plinth.dev"
MAX_CONNECT_BACKOFF = 30.0  # at startup, come up soon after the API server does
MAX_API_BACKOFF = 30.0  # an object that cannot be read or written: the API server is away

log = logging.getLogger("plinth.controller")
Key = tuple[str, str, str]  # kind, namespace, name
SUSPENDED_RECHECK = 60.0  # a resume is a spec change and wakes the loop at once anyway


@dataclass(frozen=True)
class Options:
    kubeconfig: str | None
    namespaces: list[str]  # empty: every namespace
    cache_dir: Path
    probe_address: str
    probe_port: int
    default_service_account: str | None = None
    receiver_port: int = 9292
    cluster_name: str = "default"  # in commit status contexts: plinth/<cluster>/<name>


@dataclass
class _Wiring:
    """Who wakes whom: GitRepository -> Kustomizations using it, Kustomization -> dependents."""

    wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    readers: dict[Key, set[Key]] = field(default_factory=dict)
    dependents: dict[Key, set[Key]] = field(default_factory=dict)
    generations: dict[Key, int] = field(default_factory=dict)
    requests: dict[Key, str | None] = field(default_factory=dict)  # last reconcile request seen

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
        self.requests.pop(key, None)


def _revision_of(kind: str, status: dict[str, Any], reason: str) -> str | None:
    """The revision an outcome is about; none when the source failed (the revision it could
    not fetch is unknown, and the one applied before is not what failed)."""
    if reason == "ArtifactFailed":
        return None
    if kind == "Kustomization":
        return status.get("lastAttemptedRevision")
    return (status.get("artifact") or {}).get("revision")


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
        api = Connection(lambda: login(self.options.kubeconfig))
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

    async def _connect(self, api: Connection) -> Cluster:
        """Discovery needs the API server. While it is away, wait for it with backoff, alive
        and not ready (/readyz says why), rather than exit into a restart loop."""
        failures = 0
        while True:
            try:
                return await Cluster.connect(api)
            except (aiohttp.ClientError, asyncio.TimeoutError, KubeError) as err:
                delay = min(2.0 * 2.0 ** failures, MAX_CONNECT_BACKOFF)
                log.warning("API server not reachable; retrying",
                            extra={"error": str(err), "retry_in": delay})
                failures += 1
                await asyncio.sleep(delay)

    async def _operate(self, started: asyncio.Event) -> None:
        sources = Sources(self.cluster, self.options.cache_dir / "sources")
        self.notifier = Notifier(self.cluster, self.options.cluster_name)
        self.kustomizations = KustomizationReconciler(
            self.cluster, sources, self.options.default_service_account, self.notifier.emit,
            lambda owner: self.wiring.waker(("Kustomization", *owner)).set())
        self.repositories = GitRepositoryReconciler(sources)
        self.reflector = ImageReflector(self.cluster)
        self.automation = ImageAutomation(self.cluster, sources)
        self.receivers = ReceiverReconciler(self.cluster)
        self.providers = ProviderReconciler(self.cluster)
        self.alerts = AlertReconciler(self.cluster)
        hooks = ReceiverServer(self.receivers, self.cluster, self._fetch_now,
                               self.options.probe_address, self.options.receiver_port)
        await hooks.start()
        try:
            await kopf.operator(registry=self.registry, standalone=True, ready_flag=started,
                                clusterwide=not self.options.namespaces,
                                namespaces=self.options.namespaces)
        finally:
            self.kustomizations.close()
            await hooks.stop()
            await self.notifier.close()
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
        def credentials(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
            return login(self.options.kubeconfig, settings)

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
            """A new generation (spec edit) or a new reconcile request reconciles at once
            instead of at the interval."""
            key = (kind, namespace or "", name)
            generation = body.get("metadata", {}).get("generation")
            if key in self.wiring.generations and (
                    generation != self.wiring.generations[key]
                    or requested(dict(body)) != self.wiring.requests.get(key)):
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
        """Reconcile, sleep the delay the outcome asks for, repeat."""
        kind, namespace, name = key
        ref = ObjectRef(GROUP, kind, namespace, name, VERSION)
        failures = 0
        while not stopped:
            try:
                delay = await self._current(ref, key)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the API server is away: nothing can even be reported
                delay = min(2.0 * 2.0 ** min(failures, 10), MAX_API_BACKOFF)
                failures += 1
                log.warning("cannot reach the API server for this object; retrying",
                            extra={"object": str(ref), "error": str(err), "retry_in": delay})
            if delay is None:
                return
            await self._sleep(key, stopped, delay)

    async def _current(self, ref: ObjectRef, key: Key) -> float | None:
        """Reconcile the object as it is now; None ends the loop (deleted or being deleted)."""
        obj = await self.cluster.get(ref)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self._gone(key)
            return None
        self.wiring.generations[key] = obj["metadata"]["generation"]
        self.wiring.requests[key] = requested(obj)
        if (obj.get("spec") or {}).get("suspend"):
            return SUSPENDED_RECHECK
        return await self._once(obj, key)

    def _fetch_now(self, namespace: str, name: str) -> None:
        """A verified webhook: the GitRepository reconciles now, not at its interval."""
        self.wiring.waker(("GitRepository", namespace, name)).set()

    def _gone(self, key: Key) -> None:
        if key[0] == "Receiver":
            self.receivers.forget(key[1], key[2])
        self.wiring.forget(key)
        if key[0] == "Kustomization":
            self.kustomizations.forget((key[1], key[2]))
        if key[0] == "ImageRepository":  # its policies must stop choosing from its tags
            self.reflector.forget(key[1], key[2])
            self.wiring.wake(self.wiring.readers.get(key, set()))

    async def _once(self, obj: dict[str, Any], key: Key) -> float:
        """One reconcile of any kind, and the one place its outcome, whatever it is, becomes
        the status conditions, an Event, the metrics, a log line and the next run."""
        kind = key[0]
        status = copy.deepcopy(dict(obj.get("status") or {}))
        generation = int(obj["metadata"].get("generation") or 0)
        was_ready = (cond.get_condition(status, cond.READY) or {}).get("status") == "True"
        started = time.monotonic()
        delay = default_retry(kind)
        spec: Spec | None = None
        try:
            spec = spec_of(obj)
            delay = spec.retry_after
            self._record_wiring(spec, key)
            result = await self._reconcile(obj, spec, status)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            failed = failure_of(err)
            if failed is not err:  # nobody expected it: keep the whole story in the log
                log.warning("reconcile raised", exc_info=err, extra={"object": "/".join(key)})
            write_failure(status, generation, failed)
            if isinstance(failed, Stalling) and spec is not None:
                delay = spec.interval  # only a change helps, and a new revision wakes it
            if isinstance(failed, Waiting) and failed.retry_after is not None:
                delay = min(delay, failed.retry_after)
            ready, reason, message, changed = False, failed.reason, failed.message, False
            normal = isinstance(failed, Waiting)
        else:
            write_success(status, generation, result)
            delay = result.requeue_after
            ready, reason, changed, message = True, result.reason, result.changed, result.message
            if kind == "Kustomization":
                message += f"; {result.applied} changed, {result.pruned} pruned"
                self.metrics.applied.labels(*key).inc(result.applied)
                self.metrics.pruned.labels(*key).inc(result.pruned)
                self.metrics.renders.labels(*key).inc(1 if result.rendered else 0)
            normal = True
        if requested(obj) is not None:
            status[HANDLED_AT] = requested(obj)
        await self.cluster.patch_status(ObjectRef.of(obj), status)
        self.metrics.reconcile_duration.labels(*key).observe(time.monotonic() - started)
        self.metrics.ready.labels(*key).set(1 if ready else 0)
        log.info("reconciled", extra={"object": "/".join(key), "ready": ready, "reason": reason,
                                      "revision": status.get("lastAttemptedRevision") or
                                      (status.get("artifact") or {}).get("revision"),
                                      "detail": message})
        self._event(obj, key, "Normal" if normal else "Warning", reason, message, changed)
        if ready or not normal:  # a wait says nothing yet
            self.notifier.emit(Notice(
                kind, key[1], key[2], StatusState.SUCCESS if ready else StatusState.ERROR
                if reason == UNEXPECTED else StatusState.FAILURE, reason, message,
                _revision_of(kind, status, reason)))
        if changed or ready != was_ready:
            self.wiring.wake(self.wiring.readers.get(key, set()))
            if kind == "ImagePolicy":
                self.wiring.wake(self.wiring.readers.get(("ImagePolicies", key[1], ""), set()))
        if ready and kind == "Kustomization":
            self.wiring.wake(self.wiring.dependents.get(key, set()))
        return delay

    async def _reconcile(self, obj: dict[str, Any], spec: Spec, status: dict[str, Any]
                         ) -> Result:
        if isinstance(spec, GitRepositorySpec):
            return await self.repositories.reconcile(obj, spec, status)
        if isinstance(spec, KustomizationSpec):
            return await self.kustomizations.reconcile(obj, spec, status)
        if isinstance(spec, ImageRepositorySpec):
            return await self.reflector.scan(obj, spec, status)
        if isinstance(spec, ImagePolicySpec):
            return await self.reflector.choose(obj, spec, status)
        if isinstance(spec, ReceiverSpec):
            return await self.receivers.reconcile(obj, spec, status)
        if isinstance(spec, ProviderSpec):
            return await self.providers.reconcile(obj, spec, status)
        if isinstance(spec, AlertSpec):
            return await self.alerts.reconcile(obj, spec, status)
        assert isinstance(spec, ImageUpdateAutomationSpec)
        return await self.automation.run(obj, spec, status)

    def _record_wiring(self, spec: Spec, key: Key) -> None:
        """Whose changes wake this object: its source, dependencies, image repository or the
        namespace's policies."""
        namespace = key[1]
        if isinstance(spec, KustomizationSpec):
            self.wiring.record(key, [("GitRepository", *spec.source_ref.key(namespace))],
                               [("Kustomization", *d.key(namespace)) for d in spec.depends_on])
        elif isinstance(spec, ImagePolicySpec):
            self.wiring.record(
                key, [("ImageRepository", *spec.image_repository_ref.key(namespace))], [])
        elif isinstance(spec, ImageUpdateAutomationSpec):
            self.wiring.record(key, [("ImagePolicies", namespace, "")], [])

    def _event(self, obj: dict[str, Any], key: Key, type_: str, reason: str, message: str,
               changed: bool) -> None:
        """An Event when something changed or the outcome differs from the last one posted."""
        last = self._events.get(key)
        fingerprint = f"{reason}:{message}"
        if not changed and last == fingerprint:
            return
        self._events[key] = fingerprint
        kopf.event(kopf.Body(cast(kopf.RawBody, obj)), type=type_, reason=reason,
                   message=message[:1024])

    async def _delete_kustomization(self, obj: dict[str, Any], key: Key) -> None:
        try:
            spec = spec_of(obj)
        except Stalling as err:  # unsure whether it asked for pruning: delete nothing
            log.warning("deleted with an invalid spec; nothing pruned",
                        extra={"kustomization": "/".join(key[1:]), "error": err.message})
            spec = None
        if isinstance(spec, KustomizationSpec) and spec.prune and not spec.suspend:
            refs = inventory.from_status(obj.get("status"))
            acting = self.kustomizations.acting(spec, key[1])
            result = await prune(acting, refs, (key[1], key[2]))
            left = await wait_gone(acting, result.deleted, spec.timeout)
            if left:
                log.warning("pruned objects still present", extra={
                    "kustomization": "/".join(key[1:]), "objects": [str(r) for r in left]})
            self.metrics.pruned.labels(*key).inc(len(result.deleted))
            log.info("pruned on delete", extra={"kustomization": "/".join(key[1:]),
                                                "pruned": len(result.deleted)})
        self.wiring.forget(key)
        self.metrics.forget(*key)
