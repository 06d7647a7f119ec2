"""One reconcile of a Kustomization, as Flux's kustomize-controller does it: a short pipeline of
named steps (dependencies -> source -> render -> validate + apply -> prune -> health), each of
which either passes or raises the error that the operator reports (`sync_controller.outcome`).

A failing step before apply changes nothing in the cluster; prune runs only after every object
of the new revision applied.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plinth.forge import StatusState

from plinth.render import ORIGIN_ANNOTATION, RenderError, origin_of, reads_any, render
from sync_controller import conditions as cond
from sync_controller.api import HealthCheck, KustomizationSpec, spec_of
from sync_controller import inventory
from sync_controller.applied_memory import (Applied, LiveCheck, check_live, digest, fingerprint,
                                            recall, stamp)
from sync_controller.apply import Applier, ApplyError, ApplyResult, Origins
from sync_controller.drift_watch import DriftWatch
from sync_controller.health import State, assess
from sync_controller.inventory import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, ObjectRef
from sync_controller.kube import Cluster, KubeError, service_account_user
from sync_controller.notify import Notice
from sync_controller.outcome import ReconcileError, Result, Stalling, Waiting
from sync_controller.pod_reasons import STUCK_AFTER, PodReasons
from sync_controller.prune import PruneResult, prune
from sync_controller.source import SourceError
from sync_controller.sources import Sources

API_VERSION = "plinth.dev/v1"
MAX_RENDERED_BYTES = 32 * 1024 * 1024


def _failing(repo: dict[str, Any]) -> str | None:
    """Why the GitRepository's last fetch failed, or None while it is Ready."""
    ready = cond.get_condition(repo.get("status"), cond.READY)
    if ready is None or ready.get("status") == "True":
        return None
    where = f"GitRepository {repo['metadata']['namespace']}/{repo['metadata']['name']}"
    return f"source {where} is failing: {ready.get('message') or ready.get('reason')}"


@dataclass(frozen=True)
class Prepared:
    """A revision rendered for the cluster: objects labelled with their owner, each object's
    file (when rendered with origins), kustomize's warnings, and what the render read."""
    objects: list[dict[str, Any]]
    origins: dict[ObjectRef, str]
    warnings: tuple[str, ...]
    inputs: frozenset[str]


class KustomizationReconciler:
    """`default_service_account`, when set, is impersonated by every Kustomization that names
    none, so no tenant's repository applies with the controller's own rights."""

    def __init__(self, cluster: Cluster, sources: Sources,
                 default_service_account: str | None = None,
                 notify: Callable[[Notice], None] | None = None,
                 wake: Callable[[tuple[str, str]], None] | None = None) -> None:
        self.cluster = cluster
        self.sources = sources
        self.default_service_account = default_service_account
        self.notify = notify
        self.memory: dict[str, Applied] = {}  # Kustomization id -> what it last applied
        self.drift = DriftWatch(cluster, self.versions_of, wake) if wake else None

    @staticmethod
    def _id(owner: tuple[str, str]) -> str:
        return ObjectRef("plinth.dev", "Kustomization", owner[0], owner[1], "v1").id

    def versions_of(self, owner: tuple[str, str]) -> dict[str, str] | None:
        """The objects `owner` applied, at the versions it left them; None while it
        reconciles (or before its first success)."""
        applied = self.memory.get(self._id(owner))
        return applied.versions if applied is not None else None

    def forget(self, owner: tuple[str, str]) -> None:
        self.memory.pop(self._id(owner), None)
        if self.drift is not None:
            self.drift.forget(owner)

    def close(self) -> None:
        if self.drift is not None:
            self.drift.close()

    def acting(self, spec: KustomizationSpec, namespace: str) -> Cluster:
        """Who applies, prunes and checks health: the Kustomization's service account (in its
        own namespace), else the default one, else the controller."""
        return self.cluster.impersonating(self._acting_user(spec, namespace))

    def _acting_user(self, spec: KustomizationSpec, namespace: str) -> str | None:
        name = spec.service_account_name or self.default_service_account
        return service_account_user(namespace, name) if name else None

    async def reconcile(self, obj: dict[str, Any], spec: KustomizationSpec,
                        status: dict[str, Any]) -> Result:
        """Apply the source's revision; raises a ReconcileError for a failed step. `status` is
        the working copy the operator writes, whatever the end."""
        meta = obj["metadata"]
        ref = ObjectRef.of(obj)
        generation = int(meta.get("generation") or 0)
        await self._start(ref, status, generation)
        await self._dependencies(spec, ref.namespace)
        repo, revision = await self._source(spec, ref.namespace)
        new = status.get("lastAttemptedRevision") != revision
        status["lastAttemptedRevision"] = revision
        if self.notify and new:  # retries of one revision say nothing new until they end
            self.notify(Notice("Kustomization", ref.namespace, ref.name, StatusState.PENDING,
                               "Progressing", f"applying {revision}", revision))
        acting = self.acting(spec, ref.namespace)
        # what decides the objects besides the revision; an interval or health check does not
        key = fingerprint(spec.model_dump(
            mode="json", include={"source_ref", "path", "target_namespace", "force"}),
            self._acting_user(spec, ref.namespace))
        remembered = self.memory.pop(ref.id, None)  # back only when this reconcile succeeds
        if remembered is not None and remembered.fingerprint != key:
            remembered = None
        live: dict[str, dict[str, Any]] = {}
        drifted: set[str] = set()
        if remembered is not None:
            check = await self._check_live(acting, remembered, ref)
            live, drifted = check.live, check.drifted
        if remembered is not None and remembered.revision != revision and \
                await self._untouched(repo, remembered, revision):
            remembered.revision = revision  # the commit changed nothing this render reads
        # objects listed before an apply are stale: only a reconcile that applies nothing may
        # judge health from the listing
        unchanged = remembered is not None and remembered.revision == revision and not drifted
        rendered = remembered is None or remembered.revision != revision or bool(drifted)
        if remembered is not None and remembered.revision == revision:
            result, warnings = await self._heal(ref, spec, repo, revision, meta, remembered,
                                                drifted, acting)
            pruned = PruneResult()
        else:
            prepared = await self._render(spec, repo, revision, meta)
            warnings = prepared.warnings
            result, pruned, digests = await self._apply_and_prune(
                ref, status, spec, prepared.objects, self._origins(spec, repo, revision, meta),
                acting, key, remembered, drifted)
            remembered = Applied(key, revision, dict(result.versions),
                                 {r.id: r for r in result.applied}, digests, warnings,
                                 prepared.inputs)
        await self._health(ref, status, generation, spec, result.applied, acting,
                           live if unchanged else {})
        self.memory[ref.id] = remembered
        if self.drift is not None:
            self.drift.follow((ref.namespace, ref.name), result.applied)
        status["lastAppliedRevision"] = revision
        source_failing = _failing(repo)
        if source_failing is not None:
            raise ReconcileError("ArtifactFailed", f"applied revision {revision}, the last the "
                                 f"source fetched; {source_failing}")
        said = "".join(f"; kustomize warns: {w}" for w in warnings)
        return Result("ReconciliationSucceeded", f"Applied revision: {revision}{said}",
                      spec.interval, bool(result.changed or pruned.deleted), revision,
                      applied=len(result.changed), pruned=len(pruned.deleted),
                      rendered=rendered)

    async def _untouched(self, repo: dict[str, Any], remembered: Applied, revision: str
                         ) -> bool:
        """Whether the commits from the remembered revision to `revision` changed nothing the
        remembered render read: then it renders the same objects, and is not rendered again
        (many Kustomizations on one repository each read a path of their own)."""
        if not remembered.inputs:
            return False
        changed = await self.sources.changed_paths(repo, remembered.revision, revision)
        return changed is not None and not reads_any(remembered.inputs, changed)

    async def _check_live(self, acting: Cluster, remembered: Applied, ref: ObjectRef
                          ) -> LiveCheck:
        try:
            return await check_live(acting, remembered, (ref.namespace, ref.name))
        except KubeError as err:
            raise ReconcileError("ReconciliationFailed", f"listing what was applied: {err}"
                                 ) from None

    async def _heal(self, ref: ObjectRef, spec: KustomizationSpec, repo: dict[str, Any],
                    revision: str, meta: dict[str, Any], remembered: Applied,
                    drifted: set[str], acting: Cluster) -> tuple[ApplyResult, tuple[str, ...]]:
        """The revision applied last time, unchanged: apply again only what someone deleted or
        edited since (rendered anew, validated and applied like any apply)."""
        applied = list(remembered.refs.values())
        if not drifted:
            return ApplyResult(applied=applied), remembered.warnings
        prepared = await self._render(spec, repo, revision, meta)
        objects, warnings = prepared.objects, prepared.warnings
        applier = Applier(acting, force=spec.force, default_namespace=ref.namespace,
                          origins=self._origins(spec, repo, revision, meta))
        try:
            objects = [o for o in await applier.with_namespaces(objects)
                       if ObjectRef.of(o).id in drifted]
            healed = await applier.run([stamp(o, remembered.fingerprint, digest(o))
                                        for o in objects])
        except ApplyError as err:
            raise ReconcileError("ReconciliationFailed", str(err)) from None
        except KubeError as err:
            raise ReconcileError("ReconciliationFailed", str(err)) from None
        remembered.versions.update(healed.versions)
        return ApplyResult(applied=applied, changed=healed.changed,
                           recreated=healed.recreated), warnings

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

    async def _dependencies(self, spec: KustomizationSpec, own_namespace: str) -> None:
        for namespace, name in (d.key(own_namespace) for d in spec.depends_on):
            other = await self.cluster.get(ObjectRef("plinth.dev", "Kustomization", namespace,
                                                     name, "v1"))
            if other is None:
                raise Waiting("DependencyNotReady", f"dependency {namespace}/{name} not found")
            ready = cond.get_condition(other.get("status"), cond.READY)
            generation = other["metadata"].get("generation")
            if not ready or ready.get("status") != "True" or \
                    ready.get("observedGeneration") != generation:
                raise Waiting("DependencyNotReady", f"dependency {namespace}/{name} not ready")
            try:
                other_spec = spec_of(other)
            except Stalling as err:
                raise Waiting("DependencyNotReady", f"dependency {namespace}/{name}: "
                              f"{err.message}") from None
            assert isinstance(other_spec, KustomizationSpec)
            _, revision = await self._source(other_spec, namespace)
            if (other.get("status") or {}).get("lastAppliedRevision") != revision:
                raise Waiting("DependencyNotReady", f"dependency {namespace}/{name} has not "
                                 f"applied {revision} yet")

    async def _source(self, spec: KustomizationSpec, own_namespace: str
                      ) -> tuple[dict[str, Any], str]:
        namespace, name = spec.source_ref.key(own_namespace)
        repo = await self.cluster.get(ObjectRef("plinth.dev", "GitRepository", namespace, name,
                                                "v1"))
        where = f"GitRepository {namespace}/{name}"
        if repo is None:
            raise Waiting("ArtifactFailed", f"{where} not found")
        revision = ((repo.get("status") or {}).get("artifact") or {}).get("revision")
        if not revision:
            raise Waiting("ArtifactFailed", f"{where} has no artifact yet: "
                          f"{_failing(repo) or 'not fetched yet'}")
        return repo, str(revision)

    async def _render(self, spec: KustomizationSpec, repo: dict[str, Any], revision: str,
                      meta: dict[str, Any], with_origin: bool = False) -> Prepared:
        """The revision's objects, labelled with their owner; with `with_origin`, also the
        file each came from (kustomize is slower so)."""
        try:
            artifact = await self.sources.checkout(repo, revision)
        except SourceError as err:
            raise ReconcileError("ArtifactFailed", str(err)) from None
        try:
            rendered = await asyncio.to_thread(
                render, artifact.path / spec.path, repo_root=artifact.path,
                with_origin=with_origin, target_namespace=spec.target_namespace,
                timeout=spec.timeout)
        except RenderError as err:
            raise Stalling("BuildFailed", f"{revision}: {err}") from None
        if len(rendered.text) > MAX_RENDERED_BYTES:
            raise Stalling("BuildFailed", f"{spec.path}: rendered {len(rendered.text)} bytes, "
                           f"more than the limit of {MAX_RENDERED_BYTES}")
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
        return Prepared(objects, origins, rendered.warnings, rendered.inputs)

    def _origins(self, spec: KustomizationSpec, repo: dict[str, Any], revision: str,
                 meta: dict[str, Any]) -> Origins:
        """Where the objects of `revision` came from, rendered again only when an apply fails
        and its message should name each object's file."""
        async def traced() -> dict[ObjectRef, str]:
            try:
                return (await self._render(spec, repo, revision, meta, with_origin=True)
                        ).origins
            except ReconcileError:  # it rendered a moment ago; the failure is said anyway
                return {}
        return traced

    async def _apply_and_prune(self, ref: ObjectRef, status: dict[str, Any],
                               spec: KustomizationSpec, objects: list[dict[str, Any]],
                               origins: Origins, acting: Cluster, key: str,
                               remembered: Applied | None, drifted: set[str]
                               ) -> tuple[ApplyResult, PruneResult, dict[str, str]]:
        """Validate and apply the objects (only those changed since `remembered`, or, with
        nothing remembered, since the stamps the cluster shows), stamped with `key`, then
        prune what the revision dropped; also returns each object's digest."""
        previous = inventory.from_status(status)
        applier = Applier(acting, force=spec.force, default_namespace=ref.namespace,
                          origins=origins)
        try:
            objects = await applier.with_namespaces(objects)
            # Record what is about to be applied before applying it, so a crash mid-apply leaves
            # no object that a later reconcile would not know to prune.
            status["inventory"] = inventory.to_status(
                {r.id: r for r in [*previous, *map(ObjectRef.of, objects)]}.values())
            await self.cluster.patch_status(ref, status)
            digests = {ObjectRef.of(o).id: digest(o) for o in objects}
            if remembered is None:
                remembered = await recall(acting, objects, digests, (ref.namespace, ref.name),
                                          key)
            same = remembered.unchanged(objects, drifted) if remembered is not None else set()
            result = await applier.run([stamp(o, key, digests[ObjectRef.of(o).id])
                                        for o in objects if ObjectRef.of(o).id not in same])
        except ApplyError as err:
            if err.args[0].startswith("validation"):
                # nothing was applied (or it was removed again): the record was premature
                status["inventory"] = inventory.to_status(previous)
                raise Stalling("ValidationFailed", str(err)) from None
            raise ReconcileError("ReconciliationFailed", str(err)) from None
        except KubeError as err:
            raise ReconcileError("ReconciliationFailed", str(err)) from None
        if remembered is not None:  # as they were: applied, at the version they had
            result.applied += [remembered.refs[i] for i in sorted(same)]
            result.versions.update({i: remembered.versions[i] for i in same})
        pruned = PruneResult()
        if spec.prune:
            try:
                pruned = await prune(acting, inventory.stale(previous, result.applied),
                                     (ref.namespace, ref.name))
            except KubeError as err:
                raise ReconcileError("PruneFailed", f"prune: {err}") from None
        status["inventory"] = inventory.to_status(result.applied)
        return result, pruned, digests

    async def _health(self, ref: ObjectRef, status: dict[str, Any], generation: int,
                      spec: KustomizationSpec, applied: list[ObjectRef], acting: Cluster,
                      live: dict[str, dict[str, Any]]) -> None:
        """Wait for the targets to be healthy; `live` holds objects just listed, which the
        first look takes instead of reading each again."""
        targets = applied if spec.wait else [
            await self._check_target(c, spec.target_namespace or ref.namespace)
            for c in spec.health_checks]
        if not targets:
            return
        started, said = time.monotonic(), ""
        reasons = PodReasons(acting)
        while True:
            pending = await self._unhealthy(targets, reasons, acting, live)
            live = {}
            if not pending:
                return
            elapsed = time.monotonic() - started
            failed = [m for m, state in pending if state is State.FAILED]
            if failed or elapsed > spec.timeout:
                what = failed or [m for m, _ in pending]
                raise ReconcileError("HealthCheckFailed", f"health check failed after "
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

    async def _check_target(self, check: HealthCheck, namespace: str) -> ObjectRef:
        ref = ObjectRef.of({"apiVersion": check.api_version, "kind": check.kind,
                            "metadata": {"name": check.name}})
        try:
            namespaced = await self.cluster.is_namespaced(ref)
        except KubeError as err:
            raise ReconcileError("HealthCheckFailed", f"spec.healthChecks: {err}") from None
        if not namespaced:
            return ref
        return ObjectRef(ref.group, ref.kind, check.namespace or namespace, ref.name,
                         ref.version)

    async def _unhealthy(self, targets: list[ObjectRef], reasons: PodReasons, acting: Cluster,
                         known: dict[str, dict[str, Any]]) -> list[tuple[str, State]]:
        pending = []
        for target in targets:
            live = known.get(target.id) or await acting.get(target)
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
