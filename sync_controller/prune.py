"""Delete what left git: only inventory entries, only objects still labelled as ours, never
those annotated `plinth.dev/prune: disabled`. Namespaces and CRDs go last, since deleting
them first would take everything inside them along before the rest is accounted for."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sync_controller.inventory import (OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, PRUNE_ANNOTATION,
                                       PRUNE_DISABLED, ObjectRef)
from sync_controller.kube import Cluster, UnknownKind

_LAST = {"Namespace": 1, "CustomResourceDefinition": 2}


@dataclass
class PruneResult:
    deleted: list[ObjectRef] = field(default_factory=list)
    kept: list[ObjectRef] = field(default_factory=list)  # opted out or no longer ours


async def prune(cluster: Cluster, refs: list[ObjectRef], owner: tuple[str, str]) -> PruneResult:
    """`owner` is the (namespace, name) of the Kustomization whose labels an object must carry."""
    result = PruneResult()
    for ref in sorted(refs, key=lambda r: (_LAST.get(r.kind, 0), r)):
        try:
            live = await cluster.get(ref)
        except UnknownKind:
            continue  # its CRD is gone, and the object with it
        if live is None:
            continue
        meta = live.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        ours = (labels.get(OWNER_NAMESPACE_LABEL), labels.get(OWNER_NAME_LABEL)) == owner
        if not ours or annotations.get(PRUNE_ANNOTATION) == PRUNE_DISABLED:
            result.kept.append(ref)
            continue
        if await cluster.delete(ref):
            result.deleted.append(ref)
    return result


async def wait_gone(cluster: Cluster, refs: list[ObjectRef], timeout: float) -> list[ObjectRef]:
    """Poll until `refs` are gone (their own finalizers done); returns those still present.

    Deleting a Kustomization waits for what it pruned, so that a tree of Kustomizations
    (root -> infrastructure, apps) is gone before the controller or its CRDs go."""
    deadline = time.monotonic() + timeout
    pending = list(refs)
    while pending and time.monotonic() < deadline:
        pending = [ref for ref in pending if await _present(cluster, ref)]
        if pending:
            await asyncio.sleep(0.5)
    return pending


async def _present(cluster: Cluster, ref: ObjectRef) -> bool:
    try:
        return await cluster.get(ref) is not None
    except UnknownKind:
        return False
