"""One reconcile of a Kustomization, as Flux's kustomize-controller does it: a short pipeline of
named steps (dependencies -> source -> render -> validate + apply -> prune -> health), each of
which either passes or ends the reconcile with a status that says why.

A failing step before apply changes nothing in the cluster; prune runs only after every object
of the new revision applied.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from plinth.render import ORIGIN_ANNOTATION, RenderError, origin_of, render
from sync_controller import conditions as cond
from sync_controller import inventory
from sync_controller.apply import Applier, ApplyError, ApplyResult
from sync_controller.durations import DurationError, parse_duration
from sync_controller.health import State, assess
from sync_controller.inventory import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, ObjectRef
from sync_controller.kube import Cluster, KubeError
from sync_controller.pod_reasons import STUCK_AFTER, PodReasons
from sync_controller.prune import PruneResult, prune
from sync_controller.source import SourceError
from sync_controller.sources import Sources

API_VERSION = "plinth.dev/v1"
MAX_RENDERED_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Spec:
    source_name: str
    source_namespace: str
    path: str
    interval: float
    retry_interval: float
    timeout: float
    prune: bool
    wait: bool
    health_checks: list[dict[str, str]]
    depends_on: list[tuple[str, str]]
    target_namespace: str | None
    suspend: bool
    force: bool

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Spec:
        spec, namespace = obj.get("spec") or {}, obj["metadata"]["namespace"]
        interval = parse_duration(spec.get("interval", "5m"), "spec.interval")
        source = spec.get("sourceRef") or {}
        return cls(
            source_name=source["name"], source_namespace=source.get("namespace") or namespace,
            path=spec.get("path", "."), interval=interval,
            retry_interval=parse_duration(spec["retryInterval"], "spec.retryInterval")
            if spec.get("retryInterval") else interval,
            timeout=parse_duration(spec.get("timeout", "5m"), "spec.timeout"),
            prune=bool(spec.get("prune", True)), wait=bool(spec.get("wait", False)),
            health_checks=list(spec.get("healthChecks") or []),
            depends_on=[(d.get("namespace") or namespace, d["name"])
                        for d in spec.get("dependsOn") or []],
            target_namespace=spec.get("targetNamespace"),
            suspend=bool(spec.get("suspend", False)), force=bool(spec.get("force", False)))


@dataclass
class Outcome:
    ready: bool
    reason: str
    message: str
    requeue_after: float
    revision: str | None = None
    applied: ApplyResult = field(default_factory=ApplyResult)
    pruned: PruneResult = field(default_factory=PruneResult)


class StepFailed(Exception):
    def __init__(self, reason: str, message: str, *, stalled: bool = False,
                 revision: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.stalled, self.revision = reason, message, stalled, revision


class KustomizationReconciler:
    def __init__(self, cluster: Cluster, sources: Sources) -> None:
        self.cluster = cluster
        self.sources = sources

    async def reconcile(self, obj: dict[str, Any]) -> Outcome:
        meta = obj["metadata"]
        ref = ObjectRef.of(obj)
        generation = int(meta.get("generation") or 0)
        status = dict(obj.get("status") or {})
        try:
            spec = Spec.of(obj)
        except (DurationError, KeyError) as err:
            return await self._finish(ref, status, generation, StepFailed(
                "InvalidSpec", f"spec: {err}", stalled=True), retry=300.0)
        await self._start(ref, status, generation)
        try:
            await self._dependencies(spec)
            repo, revision = await self._source(spec)
            status["lastAttemptedRevision"] = revision
            objects, origins = await self._render(spec, repo, revision, meta)
            result, pruned = await self._apply_and_prune(ref, status, spec, objects, origins)
            await self._health(ref, status, generation, spec, result.applied)
        except StepFailed as failed:
            retry = spec.interval if failed.stalled else spec.retry_interval
            return await self._finish(ref, status, generation, failed, retry=retry)
        status["lastAppliedRevision"] = revision
        message = f"Applied revision: {revision}"
        status["conditions"] = cond.remove_condition(
            cond.remove_condition(status.get("conditions") or [], cond.RECONCILING), cond.STALLED)
        cond.set_ready(status, True, "ReconciliationSucceeded", message, generation)
        await self.cluster.patch_status(ref, status)
        return Outcome(True, "ReconciliationSucceeded", message, spec.interval, revision,
                       result, pruned)

    async def _start(self, ref: ObjectRef, status: dict[str, Any], generation: int) -> None:
        """Reconciling=True while it runs (and Ready=False with it, the very first time)."""
        message = "reconciliation in progress"
        conditions = cond.set_condition(status.get("conditions") or [], cond.RECONCILING, True,
                                        "Progressing", message, generation)
        if cond.get_condition(status, cond.READY) is None:
            conditions = cond.set_condition(conditions, cond.READY, False, "Progressing",
                                            message, generation)
        status["conditions"] = conditions
        await self.cluster.patch_status(ref, status)

    async def _finish(self, ref: ObjectRef, status: dict[str, Any], generation: int,
                      failed: StepFailed, retry: float) -> Outcome:
        conditions = cond.remove_condition(status.get("conditions") or [], cond.RECONCILING)
        if failed.stalled:
            conditions = cond.set_condition(conditions, cond.STALLED, True, failed.reason,
                                            failed.message, generation)
        else:
            conditions = cond.remove_condition(conditions, cond.STALLED)
        status["conditions"] = conditions
        cond.set_ready(status, False, failed.reason, failed.message, generation)
        await self.cluster.patch_status(ref, status)
        return Outcome(False, failed.reason, failed.message, retry,
                       status.get("lastAttemptedRevision"))

    async def _dependencies(self, spec: Spec) -> None:
        for namespace, name in spec.depends_on:
            other = await self.cluster.get(ObjectRef("plinth.dev", "Kustomization", namespace,
                                                     name, "v1"))
            if other is None:
                raise StepFailed("DependencyNotReady", f"dependency {namespace}/{name} not found")
            ready = cond.get_condition(other.get("status"), cond.READY)
            generation = other["metadata"].get("generation")
            if not ready or ready.get("status") != "True" or \
                    ready.get("observedGeneration") != generation:
                raise StepFailed("DependencyNotReady", f"dependency {namespace}/{name} not ready")
            other_spec = Spec.of(other)
            _, revision = await self._source(other_spec)
            if (other.get("status") or {}).get("lastAppliedRevision") != revision:
                raise StepFailed("DependencyNotReady", f"dependency {namespace}/{name} has not "
                                 f"applied {revision} yet")

    async def _source(self, spec: Spec) -> tuple[dict[str, Any], str]:
        repo = await self.cluster.get(ObjectRef("plinth.dev", "GitRepository",
                                                spec.source_namespace, spec.source_name, "v1"))
        where = f"GitRepository {spec.source_namespace}/{spec.source_name}"
        if repo is None:
            raise StepFailed("ArtifactFailed", f"{where} not found")
        revision = ((repo.get("status") or {}).get("artifact") or {}).get("revision")
        if not revision:
            raise StepFailed("ArtifactFailed", f"{where} has no artifact yet")
        return repo, str(revision)

    async def _render(self, spec: Spec, repo: dict[str, Any], revision: str,
                      meta: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[ObjectRef, str]]:
        try:
            artifact = await self.sources.checkout(repo, revision)
        except SourceError as err:
            raise StepFailed("ArtifactFailed", str(err), revision=revision) from None
        try:
            rendered = await asyncio.to_thread(
                render, artifact.path / spec.path, repo_root=artifact.path, with_origin=True,
                target_namespace=spec.target_namespace)
        except RenderError as err:
            raise StepFailed("BuildFailed", f"{revision}: {err}", stalled=True) from None
        if len(rendered.text) > MAX_RENDERED_BYTES:
            raise StepFailed("BuildFailed", f"{spec.path}: rendered {len(rendered.text)} bytes, "
                             f"more than the limit of {MAX_RENDERED_BYTES}", stalled=True)
        objects, origins = [], {}
        owner = {OWNER_NAME_LABEL: meta["name"], OWNER_NAMESPACE_LABEL: meta["namespace"]}
        for obj in rendered.objects:
            origin = origin_of(obj)
            annotations = obj["metadata"].pop("annotations", None) or {}
            annotations.pop(ORIGIN_ANNOTATION, None)
            if annotations:
                obj["metadata"]["annotations"] = annotations
            obj["metadata"]["labels"] = {**(obj["metadata"].get("labels") or {}), **owner}
            objects.append(obj)
            if origin:
                origins[ObjectRef.of(obj)] = origin
        return objects, origins

    async def _apply_and_prune(self, ref: ObjectRef, status: dict[str, Any], spec: Spec,
                               objects: list[dict[str, Any]], origins: dict[ObjectRef, str]
                               ) -> tuple[ApplyResult, PruneResult]:
        previous = inventory.from_status(status)
        applier = Applier(self.cluster, force=spec.force, default_namespace=ref.namespace,
                          origins=origins)
        try:
            # Record what is about to be applied before applying it, so a crash mid-apply leaves
            # no object that a later reconcile would not know to prune.
            status["inventory"] = inventory.to_status(
                {r.id: r for r in [*previous, *map(ObjectRef.of, objects)]}.values())
            await self.cluster.patch_status(ref, status)
            result = await applier.run(objects)
        except ApplyError as err:
            stalled = err.args[0].startswith("validation")
            reason = "ValidationFailed" if stalled else "ReconciliationFailed"
            raise StepFailed(reason, str(err), stalled=stalled) from None
        except KubeError as err:
            raise StepFailed("ReconciliationFailed", str(err)) from None
        pruned = PruneResult()
        if spec.prune:
            pruned = await prune(self.cluster, inventory.stale(previous, result.applied),
                                 (ref.namespace, ref.name))
        status["inventory"] = inventory.to_status(result.applied)
        return result, pruned

    async def _health(self, ref: ObjectRef, status: dict[str, Any], generation: int,
                      spec: Spec, applied: list[ObjectRef]) -> None:
        targets = applied if spec.wait else [
            await self._check_target(c, spec.target_namespace or ref.namespace)
            for c in spec.health_checks]
        if not targets:
            return
        started, said = time.monotonic(), ""
        reasons = PodReasons(self.cluster)
        while True:
            pending = await self._unhealthy(targets, reasons)
            if not pending:
                return
            elapsed = time.monotonic() - started
            failed = [m for m, state in pending if state is State.FAILED]
            if failed or elapsed > spec.timeout:
                what = failed or [m for m, _ in pending]
                raise StepFailed("HealthCheckFailed", f"health check failed after "
                                 f"{elapsed:.0f}s: " + "; ".join(what[:10]))
            said = await self._say_waiting(ref, status, generation, pending, said)
            await asyncio.sleep(min(2.0, max(0.2, spec.timeout / 20)))

    async def _say_waiting(self, ref: ObjectRef, status: dict[str, Any], generation: int,
                           pending: list[tuple[str, State]], said: str) -> str:
        """What the wait waits for, in the Reconciling condition: written when the story
        changes, not at every poll."""
        waiting = f"waiting for {len(pending)} object(s) to be ready: " + "; ".join(
            m for m, _ in pending[:3])
        if waiting != said:
            status["conditions"] = cond.set_condition(
                status.get("conditions") or [], cond.RECONCILING, True, "Progressing", waiting,
                generation)
            await self.cluster.patch_status(ref, status)
        return waiting

    async def _check_target(self, check: dict[str, str], namespace: str) -> ObjectRef:
        ref = ObjectRef.of({"apiVersion": check["apiVersion"], "kind": check["kind"],
                            "metadata": {"name": check["name"]}})
        try:
            namespaced = await self.cluster.is_namespaced(ref)
        except KubeError as err:
            raise StepFailed("HealthCheckFailed", f"spec.healthChecks: {err}") from None
        if not namespaced:
            return ref
        return ObjectRef(ref.group, ref.kind, check.get("namespace") or namespace, ref.name,
                         ref.version)

    async def _unhealthy(self, targets: list[ObjectRef], reasons: PodReasons
                         ) -> list[tuple[str, State]]:
        pending = []
        for target in targets:
            live = await self.cluster.get(target)
            if live is None:
                pending.append((f"{target}: not found", State.IN_PROGRESS))
                continue
            health = assess(live)
            if health.state is State.CURRENT:
                continue
            message, state = f"{target}: {health.message}", health.state
            reason = await reasons.explain(live)
            if reason is not None:
                message += f": {reason}"
            stuck = reasons.stuck_for(target)
            if stuck >= STUCK_AFTER:
                message, state = f"{message} (for {stuck:.0f}s)", State.FAILED
            pending.append((message, state))
        return pending
