"""What a Kustomization applied: object references kept in its status, and the set arithmetic
that decides what to prune. An object is only ever pruned if it is in this inventory."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PRUNE_ANNOTATION = "plinth.dev/prune"
PRUNE_DISABLED = "disabled"
OWNER_NAME_LABEL = "kustomize.plinth.dev/name"
OWNER_NAMESPACE_LABEL = "kustomize.plinth.dev/namespace"


@dataclass(frozen=True, order=True)
class ObjectRef:
    group: str
    kind: str
    namespace: str
    name: str
    version: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        api_version = str(obj.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        meta = obj.get("metadata") or {}
        return cls(group, str(obj.get("kind", "")), str(meta.get("namespace") or ""),
                   str(meta.get("name", "")), version)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def id(self) -> str:
        """Flux's inventory id: `<namespace>_<name>_<group>_<kind>` (version kept apart)."""
        return f"{self.namespace}_{self.name}_{self.group}_{self.kind}"

    @classmethod
    def from_entry(cls, entry: dict[str, str]) -> ObjectRef:
        namespace, name, group, kind = entry["id"].split("_", 3)
        return cls(group, kind, namespace, name, entry["v"])

    def entry(self) -> dict[str, str]:
        return {"id": self.id, "v": self.version}

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


def to_status(refs: Iterable[ObjectRef]) -> dict[str, Any]:
    return {"entries": [ref.entry() for ref in sorted(refs)]}


def from_status(status: dict[str, Any] | None) -> list[ObjectRef]:
    entries = ((status or {}).get("inventory") or {}).get("entries") or []
    return [ObjectRef.from_entry(e) for e in entries]


def stale(previous: Iterable[ObjectRef], current: Iterable[ObjectRef]) -> list[ObjectRef]:
    """Objects applied before and absent now, compared by id so an apiVersion change is no prune."""
    now = {ref.id for ref in current}
    return [ref for ref in previous if ref.id not in now]
