"""Apply a rendered set of objects: validate all by server-side dry-run, then apply for real.

Order follows Flux: CustomResourceDefinitions and Namespaces first (waiting until the CRDs are
established), then everything else. Every object is validated before anything at all is
applied, except those that need one of the first kinds to exist (a custom resource of a CRD in
the set, an object in a new Namespace): the API server can only dry-run them once it does. When
one of those is refused, the CRDs and Namespaces this attempt created are deleted again, so a
refused commit leaves the cluster's set of objects as it was. (A CRD that existed and that the
commit changes stays changed: its custom resources can only be checked against the new schema.)
"""
from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sync_controller.health import State, assess
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster, KubeError, UnknownKind

FIRST_KINDS = ("CustomResourceDefinition", "Namespace")
CONCURRENCY = 16
_IMMUTABLE_HINTS = ("field is immutable", "updates to statefulset spec for fields other than",
                    "may not change once set", "Forbidden: updates to")

T = TypeVar("T")


class ApplyError(Exception):
    """Validation or apply failed; `problems` lists each object with its file and the reason."""

    def __init__(self, stage: str, problems: list[str]) -> None:
        shown = problems[:10]
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{stage} failed: " + "; ".join(shown) + more)
        self.problems = problems


@dataclass
class ApplyResult:
    applied: list[ObjectRef] = field(default_factory=list)
    changed: list[ObjectRef] = field(default_factory=list)
    recreated: list[ObjectRef] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # id -> resourceVersion applied


@dataclass
class _Planned:
    obj: dict[str, Any]
    ref: ObjectRef
    recreate: bool
    dry_run_version: str


def _group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    ref = ObjectRef.of(obj)
    return ref.group, ref.kind


def _is_immutable(err: KubeError) -> bool:
    return err.status == 422 and any(h in err.reason_message for h in _IMMUTABLE_HINTS)


async def _bounded(items: Iterable[T], work: Callable[[T], Awaitable[Any]]) -> list[Any]:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(item: T) -> Any:
        async with semaphore:
            return await work(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


# The file each object came from, asked only when something failed: kustomize's origin
# annotations make every build slower (twice as slow at 10,000 objects).
Origins = Callable[[], Awaitable[dict[ObjectRef, str]]]


class Applier:
    def __init__(self, cluster: Cluster, *, force: bool, default_namespace: str,
                 origins: Origins | None = None) -> None:
        self.cluster = cluster
        self.force = force
        self.default_namespace = default_namespace
        self.origins = origins

    async def _failed(self, step: str, failures: list[tuple[ObjectRef, str]]) -> ApplyError:
        """The failures of a step, each object named with its file when that can be told."""
        origins = await self.origins() if self.origins is not None else {}
        return ApplyError(step, [f"{ref} (from {origins[ref]}): {message}" if ref in origins
                                 else f"{ref}: {message}" for ref, message in failures])

    async def with_namespaces(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Namespaced objects without a namespace go to the Kustomization's namespace. Whether
        a kind is namespaced comes from discovery, or from its CRD when that is in the set."""
        scopes = {(crd["spec"]["group"], crd["spec"]["names"]["kind"]):
                  crd["spec"].get("scope") == "Namespaced"
                  for crd in objects if crd.get("kind") == "CustomResourceDefinition"}
        defaulted = []
        for obj in objects:
            if (obj.get("metadata") or {}).get("namespace"):
                defaulted.append(obj)
                continue
            namespaced = scopes.get(_group_kind(obj))
            if namespaced is None:
                try:
                    namespaced = await self.cluster.is_namespaced(ObjectRef.of(obj))
                except UnknownKind:
                    namespaced = False  # refused by validation, which names the kind
            if namespaced:
                obj = copy.deepcopy(obj)
                obj["metadata"]["namespace"] = self.default_namespace
            defaulted.append(obj)
        return defaulted

    async def run(self, objects: list[dict[str, Any]]) -> ApplyResult:
        """Validate and apply `objects`, as `with_namespaces` returns them."""
        first = [o for o in objects if o.get("kind") in FIRST_KINDS]
        rest = [o for o in objects if o.get("kind") not in FIRST_KINDS]
        created = [ObjectRef.of(o) for o in first
                   if await self.cluster.get(ObjectRef.of(o)) is None]
        new_kinds = {(crd["spec"]["group"], crd["spec"]["names"]["kind"]) for crd in first
                     if crd.get("kind") == "CustomResourceDefinition"}
        new_namespaces = {ref.name for ref in created if ref.kind == "Namespace"}
        waiting = [o for o in rest if _group_kind(o) in new_kinds
                   or ObjectRef.of(o).namespace in new_namespaces]
        later_ids = {id(o) for o in waiting}
        planned = await self._validate(first + [o for o in rest if id(o) not in later_ids])
        result = ApplyResult()
        await self._apply(planned[:len(first)], result)
        try:
            await self._wait_established([o for o in first
                                          if o.get("kind") == "CustomResourceDefinition"])
            later = await self._validate(waiting)
        except ApplyError:
            await self._remove(created)
            raise
        await self._apply(planned[len(first):] + later, result)
        return result

    async def _remove(self, refs: list[ObjectRef], timeout: float = 60.0) -> None:
        """Delete what a refused attempt created and wait until it is gone (a Namespace takes
        a moment: the namespace controller empties it first)."""
        for ref in refs:
            await self.cluster.delete(ref)
        deadline = time.monotonic() + timeout
        for ref in refs:
            while await self.cluster.get(ref) is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)

    async def _validate(self, objects: list[dict[str, Any]]) -> list[_Planned]:
        async def dry_run(obj: dict[str, Any]) -> _Planned | tuple[ObjectRef, str]:
            ref = ObjectRef.of(obj)
            try:
                response = await self.cluster.apply(obj, dry_run=True)
            except KubeError as err:
                if _is_immutable(err) and self.force:
                    return _Planned(obj, ref, True, "")
                hint = "; set spec.force to recreate it" if _is_immutable(err) else ""
                return ref, f"{err.reason_message}{hint}"
            version = str((response.get("metadata") or {}).get("resourceVersion") or "")
            return _Planned(obj, ref, False, version)

        outcomes = await _bounded(objects, dry_run)
        failures = [o for o in outcomes if isinstance(o, tuple)]
        if failures:
            raise await self._failed("validation (server-side dry-run)", failures)
        return [o for o in outcomes if isinstance(o, _Planned)]

    async def _apply(self, planned: list[_Planned], result: ApplyResult) -> None:
        async def apply(item: _Planned) -> tuple[ObjectRef, str] | None:
            try:
                if item.recreate:
                    await self._delete_and_wait(item.ref)
                response = await self.cluster.apply(item.obj)
            except KubeError as err:
                return item.ref, err.reason_message
            result.applied.append(item.ref)
            if item.recreate:
                result.recreated.append(item.ref)
            version = (response.get("metadata") or {}).get("resourceVersion")
            result.versions[item.ref.id] = str(version or "")
            if item.recreate or version != item.dry_run_version:
                result.changed.append(item.ref)
            return None

        failures = [p for p in await _bounded(planned, apply) if p]
        if failures:
            raise await self._failed("apply", failures)

    async def _delete_and_wait(self, ref: ObjectRef, timeout: float = 60.0) -> None:
        await self.cluster.delete(ref)
        deadline = time.monotonic() + timeout
        while await self.cluster.get(ref) is not None:
            if time.monotonic() > deadline:
                raise KubeError(ref, 0, f"still present {timeout:.0f}s after delete for recreate")
            await asyncio.sleep(0.2)

    async def _wait_established(self, crds: list[dict[str, Any]], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for crd in crds:
            ref = ObjectRef.of(crd)
            while True:
                live = await self.cluster.get(ref)
                if live is not None and assess(live).state is State.CURRENT:
                    break
                if time.monotonic() > deadline:
                    raise ApplyError("apply", [f"{ref}: not established after {timeout:.0f}s"])
                await asyncio.sleep(0.2)
