"""Compare two sets of rendered objects, object by object and field by field.

Objects are matched by group, kind, namespace and name; an object whose namespace alone changed
is reported as moved. Lists whose items all have a `name` (containers, env, ports, volumes) are
matched by name, as Kubernetes merges them, so a reorder is one "order" change, not a cascade.
Secret values are never part of the result: a changed `data`/`stringData` key is reported as
changed and redacted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

REDACTED = "(redacted)"
MARKS = {"added": "+", "removed": "-", "changed": "~", "moved": ">"}
_SECRET_FIELDS = ("data", "stringData")


@dataclass(frozen=True, order=True)
class ObjectKey:
    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectKey:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        meta = obj.get("metadata") or {}
        return cls(group, str(obj.get("kind", "")), str(meta.get("namespace") or ""),
                   str(meta.get("name", "")))

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass
class ObjectDiff:
    status: str  # added | removed | changed | moved
    key: ObjectKey
    moved_from: str | None = None
    changes: list[FieldChange] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "object": str(self.key),
                               "group": self.key.group, "kind": self.key.kind,
                               "namespace": self.key.namespace, "name": self.key.name}
        if self.moved_from is not None:
            out["movedFrom"] = self.moved_from
        if self.changes:
            out["changes"] = [c.to_json() for c in self.changes]
        return out


def diff_objects(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[ObjectDiff]:
    before = {ObjectKey.of(o): o for o in old}
    after = {ObjectKey.of(o): o for o in new}
    removed = sorted(k for k in before if k not in after)
    added = sorted(k for k in after if k not in before)
    result: list[ObjectDiff] = []
    for key in sorted(k for k in before if k in after):
        changes = _changes(before[key], after[key], key)
        if changes:
            result.append(ObjectDiff("changed", key, changes=changes))
    for key in list(added):
        twin = next((r for r in removed if (r.group, r.kind, r.name) == (key.group, key.kind,
                                                                          key.name)), None)
        if twin is None:
            continue
        removed.remove(twin)
        added.remove(key)
        changes = [c for c in _changes(before[twin], after[key], key)
                   if c.path != "metadata.namespace"]
        result.append(ObjectDiff("moved", key, moved_from=twin.namespace or "(cluster)",
                                 changes=changes))
    result += [ObjectDiff("added", k) for k in added]
    result += [ObjectDiff("removed", k) for k in removed]
    order = {"removed": 0, "added": 1, "moved": 2, "changed": 3}
    return sorted(result, key=lambda d: (d.key, order[d.status]))


def _changes(old: dict[str, Any], new: dict[str, Any], key: ObjectKey) -> list[FieldChange]:
    changes: list[FieldChange] = []
    _walk(old, new, "", changes)
    if key.kind == "Secret" and key.group == "":
        changes = [_redact(c) for c in changes]
    return changes


def _redact(change: FieldChange) -> FieldChange:
    top = change.path.split(".", 1)[0].split("[", 1)[0]
    if top not in _SECRET_FIELDS:
        return change
    old = None if change.old is None else REDACTED
    new = None if change.new is None else REDACTED
    return FieldChange(change.path, old, new)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(old: Any, new: Any, path: str, out: list[FieldChange]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            _walk(old.get(key), new.get(key), _join(path, str(key)), out)
    elif isinstance(old, list) and isinstance(new, list):
        if _named(old) and _named(new):
            _walk_named(old, new, path, out)
        else:
            for i in range(max(len(old), len(new))):
                _walk(old[i] if i < len(old) else None, new[i] if i < len(new) else None,
                      f"{path}[{i}]", out)
    elif old != new:
        out.append(FieldChange(path, old, new))


def _named(items: list[Any]) -> bool:
    names = [i.get("name") for i in items if isinstance(i, dict)]
    return bool(items) and len(names) == len(items) and None not in names \
        and len(set(names)) == len(names)


def _walk_named(old: list[dict[str, Any]], new: list[dict[str, Any]], path: str,
                out: list[FieldChange]) -> None:
    before = {i["name"]: i for i in old}
    after = {i["name"]: i for i in new}
    for name in [*before, *(n for n in after if n not in before)]:
        _walk(before.get(name), after.get(name), f"{path}[name={name}]", out)
    common_old = [n for n in before if n in after]
    common_new = [n for n in after if n in before]
    if common_old != common_new:
        out.append(FieldChange(f"{path} (order)", common_old, common_new))


def _format(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, sort_keys=True)


def object_line(d: ObjectDiff) -> str:
    """The object a diff is about (`Deployment.apps apps/web`), where it moved from if it did."""
    moved = f" (from namespace {d.moved_from})" if d.moved_from else ""
    return f"{d.key}{moved}"


def change_line(change: FieldChange) -> str:
    return f"    {change.path}: {_format(change.old)} -> {_format(change.new)}"


def summary(diffs: list[ObjectDiff]) -> str:
    counts = {s: sum(d.status == s for d in diffs) for s in MARKS}
    text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return f"{len(diffs)} objects differ: {text}" if diffs else "no differences"


def text_lines(diffs: list[ObjectDiff]) -> list[str]:
    """The diff as plain text, the way `plinth diff` prints it without colour."""
    lines = []
    for d in diffs:
        lines.append(f"{MARKS[d.status]} {d.status:<7} {object_line(d)}")
        lines += [change_line(c) for c in d.changes]
    return [*lines, summary(diffs)]
