"""One reconcile of a GitRepository: fetch spec.ref and publish the revision in status.artifact.

A failed fetch keeps the previous artifact, so Kustomizations go on with what runs, and says
why in the Ready condition.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync_controller import conditions as cond
from sync_controller.durations import DurationError, parse_duration
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster
from sync_controller.source import SourceError
from sync_controller.sources import Sources


@dataclass(frozen=True)
class SourceOutcome:
    ready: bool
    revision: str | None
    changed: bool
    message: str
    interval: float


class GitRepositoryReconciler:
    def __init__(self, cluster: Cluster, sources: Sources) -> None:
        self.cluster = cluster
        self.sources = sources

    async def reconcile(self, obj: dict[str, Any]) -> SourceOutcome:
        ref = ObjectRef.of(obj)
        generation = int(obj["metadata"].get("generation") or 0)
        status = dict(obj.get("status") or {})
        previous = (status.get("artifact") or {}).get("revision")
        interval = 60.0
        try:
            interval = parse_duration((obj.get("spec") or {}).get("interval", "1m"),
                                      "spec.interval")
            artifact = await self.sources.fetch(obj)
        except (SourceError, DurationError) as err:
            message = str(err)
            cond.set_ready(status, False, "GitOperationFailed", message, generation)
            await self.cluster.patch_status(ref, status)
            return SourceOutcome(False, previous, False, message, interval)
        changed = artifact.revision != previous
        if changed:
            status["artifact"] = {"revision": artifact.revision, "lastUpdateTime": cond.now()}
        message = f"stored artifact for revision '{artifact.revision}'"
        cond.set_ready(status, True, "Succeeded", message, generation)
        await self.cluster.patch_status(ref, status)
        return SourceOutcome(True, artifact.revision, changed, message, interval)
