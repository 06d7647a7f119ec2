"""One reconcile of a GitRepository: fetch spec.ref and publish the revision in status.artifact.

A failed fetch keeps the previous artifact, so Kustomizations go on with what runs; the
failure is reported on the GitRepository and on each Kustomization that follows it.
"""
from __future__ import annotations

from typing import Any

from sync_controller import conditions as cond
from sync_controller.api import GitRepositorySpec
from sync_controller.outcome import ReconcileError, Result
from sync_controller.source import SourceError
from sync_controller.sources import Sources


class GitRepositoryReconciler:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    async def reconcile(self, obj: dict[str, Any], spec: GitRepositorySpec,
                        status: dict[str, Any]) -> Result:
        previous = (status.get("artifact") or {}).get("revision")
        try:
            artifact = await self.sources.fetch(obj)
        except SourceError as err:
            raise ReconcileError("GitOperationFailed", str(err)) from None
        changed = artifact.revision != previous
        if changed:
            status["artifact"] = {"revision": artifact.revision, "lastUpdateTime": cond.now()}
        return Result("Succeeded", f"stored artifact for revision '{artifact.revision}'",
                      spec.interval, changed, artifact.revision)
