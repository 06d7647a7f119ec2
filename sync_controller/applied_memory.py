"""What a Kustomization last applied, remembered so that an unchanged repository costs next to
nothing: when the revision, the spec and the acting account are those of the last successful
apply, the objects it rendered are the same, so only the cluster can have changed. One list
request per kind and namespace (the objects carry the Kustomization's owner labels) tells
which objects someone deleted or edited since: only those are rendered again and applied, and
nothing is dry-run, applied or pruned for the rest.

An object counts as edited when its resourceVersion moved and a manager other than the
controller wrote anything but its status (`kubectl scale` writes the scale subresource) at or
after the controller's last write; a status written by its own controller, the kubelet or the
scheduler is no edit. A new revision whose commits change nothing the last render read (its
`inputs`: the folders and files copied for kustomize) counts as the same: it is not rendered
again. Any other new revision is compared object by object with what was applied: only the
objects it changes or adds are validated and applied, and what it drops is pruned.

The memory lives in the process, and a failure forgets it. A restart need not: every object
is applied with a stamp (a label: the digest of the object as rendered and of the spec and
account that applied it; an annotation would bump a Deployment's generation and be copied to
its ReplicaSets), so the first reconcile after a restart recalls from the cluster which objects
are as this controller applied them (same stamp, nobody but a status writer since) and
applies only the rest; a restarted controller does not re-apply every object it owns.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sync_controller.inventory import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, ObjectRef
from sync_controller.kube import FIELD_MANAGER, Cluster, KubeError

STAMP_LABEL = "kustomize.plinth.dev/digest"


def fingerprint(spec: dict[str, Any], acting: str | None) -> str:
    """Who applies, and the spec fields that decide the objects besides the revision."""
    text = json.dumps([spec, acting], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def digest(obj: dict[str, Any]) -> str:
    """An object as rendered: equal digests, equal objects."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def stamp(obj: dict[str, Any], key: str, rendered: str) -> dict[str, Any]:
    """`obj` as it is applied: labelled with the digest of its rendered form (`rendered`) and
    of `key` (the fingerprint: spec and acting account), which `recall` compares."""
    meta = obj.get("metadata") or {}
    labels = {**(meta.get("labels") or {}), STAMP_LABEL: _stamp(key, rendered)}
    return {**obj, "metadata": {**meta, "labels": labels}}


def _stamp(key: str, rendered: str) -> str:
    return hashlib.blake2b(f"{key}:{rendered}".encode(), digest_size=16).hexdigest()


@dataclass
class Applied:
    fingerprint: str
    revision: str
    versions: dict[str, str]  # ObjectRef.id -> resourceVersion after the controller's apply
    refs: dict[str, ObjectRef] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # ObjectRef.id -> digest as applied
    warnings: tuple[str, ...] = ()  # kustomize's, said again while nothing changes
    inputs: frozenset[str] = frozenset()  # what the render read (plinth.render.Rendered)

    def unchanged(self, objects: list[dict[str, Any]], drifted: set[str]) -> set[str]:
        """The ids of `objects` (a new revision's, namespaces defaulted) that are as applied
        last time and untouched since. None of them when a CRD or Namespace changes: those
        change what the rest validates against, so everything is validated again."""
        same = set()
        for obj in objects:
            ref_id = ObjectRef.of(obj).id
            if ref_id in self.versions and ref_id not in drifted and \
                    self.digests.get(ref_id) == digest(obj):
                same.add(ref_id)
            elif obj.get("kind") in ("CustomResourceDefinition", "Namespace"):
                return set()
        return same


@dataclass(frozen=True)
class LiveCheck:
    drifted: set[str]  # ids of objects deleted or edited since the last apply
    live: dict[str, dict[str, Any]]  # id -> the object as listed (for health checks)


def edited(obj: dict[str, Any]) -> bool:
    """Written by anyone but the controller, a status aside, at or after the controller's last
    write."""
    fields = (obj.get("metadata") or {}).get("managedFields") or []
    ours = [str(f.get("time", "")) for f in fields if f.get("manager") == FIELD_MANAGER
            and not f.get("subresource")]
    if not ours:
        return True  # someone took every field the controller owned
    last = max(ours)
    # an entry without a time (kubectl scale leaves one) may be newer than ours
    return any(f.get("manager") != FIELD_MANAGER and f.get("subresource") != "status"
               and (not f.get("time") or str(f["time"]) >= last) for f in fields)


async def _owned(cluster: Cluster, refs: Iterable[ObjectRef], owner: tuple[str, str]
                 ) -> dict[str, dict[str, Any]]:
    """The live objects of `owner` among the kinds and namespaces of `refs`, by id: one list
    request per kind and namespace."""
    selector = f"{OWNER_NAME_LABEL}={owner[1]},{OWNER_NAMESPACE_LABEL}={owner[0]}"
    groups = sorted({(ref.api_version, ref.kind, ref.namespace) for ref in refs})
    live: dict[str, dict[str, Any]] = {}
    for api_version, kind, namespace in groups:
        for obj in await cluster.list(api_version, kind, namespace, selector):
            live[ObjectRef.of(obj).id] = obj
    return live


async def check_live(cluster: Cluster, applied: Applied, owner: tuple[str, str]) -> LiveCheck:
    """List the remembered objects by kind and namespace; report what drifted."""
    live = await _owned(cluster, applied.refs.values(), owner)
    drifted = set()
    for ref_id, version in applied.versions.items():
        current = live.get(ref_id)
        if current is None:
            drifted.add(ref_id)
            continue
        now = str((current.get("metadata") or {}).get("resourceVersion") or "")
        if now == version:
            continue
        if edited(current):
            drifted.add(ref_id)
        else:  # only a status moved: remember the new version, nothing to do
            applied.versions[ref_id] = now
    return LiveCheck(drifted, live)


async def recall(cluster: Cluster, objects: list[dict[str, Any]], digests: dict[str, str],
                 owner: tuple[str, str], key: str) -> Applied | None:
    """What a restarted controller (or one that failed) applied before, as far as the cluster
    shows it: the `objects` (namespaces defaulted, `digests` by id) whose live copy bears the
    stamp they would be applied with and was written by nobody else since. None when the
    acting account may not list them: then everything is applied, as on a first sync."""
    try:
        live = await _owned(cluster, map(ObjectRef.of, objects), owner)
    except KubeError:
        return None
    versions, refs = {}, {}
    for obj in objects:
        ref = ObjectRef.of(obj)
        current = live.get(ref.id)
        if current is None or ref.id not in digests:
            continue
        meta = current.get("metadata") or {}
        if (meta.get("labels") or {}).get(STAMP_LABEL) != \
                _stamp(key, digests[ref.id]) or edited(current):
            continue
        versions[ref.id] = str(meta.get("resourceVersion") or "")
        refs[ref.id] = ref
    return Applied(key, "", versions, refs, {i: digests[i] for i in versions})
