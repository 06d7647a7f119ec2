"""The auditor's report of a stack, for a change under review: what the infrastructure plan
would do (Pulumi preview), what the GitOps repository would make the cluster run differently
(the stack's rendered GitOps output at the base revision of the project against the working
tree), and what the cluster runs now (each Kustomization's state, objects gone or edited by
someone other than the controller), with who changed what (the stack's Pulumi updates, the
project's commits to the stack file, the managers of live edits).

Each part is gathered on its own: a part that cannot be read (no deployed stack, no cluster)
says why in the report instead of failing the rest. Secrets stay out: Pulumi masks secret
values in its preview and the GitOps diff redacts Secret data, and only property paths of the
infrastructure changes are reported, never their values.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import git

from plinth.diff import ObjectDiff, diff_objects
from plinth.gitops_output import render_repo_spec
from plinth.localenv.tools import ToolMissing, find_tool, tool_env
from plinth.render import RenderError
from plinth.stack_config import StackConfigError, load_stack, parse_stack, stack_file
from plinth.stack_outputs import (StackOutputError, StackOutputs, config_file_args, read_outputs,
                                  run_pulumi)
from sync_controller.inventory import (OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, ObjectRef,
                                       from_status)
from sync_controller.kube import FIELD_MANAGER

# Managers that write what the API server and kubelet own (revision annotations, finalizers,
# status); an edit by any other manager than the controller is someone's change.
_SYSTEM_MANAGERS = ("kube-", "kubelet")
# A replacement is also a create-replacement and a delete-replaced step: "replace" says it once.
_CHANGING_OPS = ("create", "update", "replace", "delete")


class AuditError(Exception):
    """The report cannot be made at all (no stack file); the message says what to fix."""


@dataclass(frozen=True)
class ResourceChange:
    op: str  # create | update | replace | delete
    type: str
    name: str
    properties: list[str]  # the changed property paths (never their values)


@dataclass(frozen=True)
class LiveEdit:
    object: str
    manager: str
    operation: str
    time: str


@dataclass(frozen=True)
class LiveKustomization:
    name: str  # namespace/name
    ready: str
    revision: str
    message: str
    objects: int
    missing: list[str]
    edited: list[LiveEdit]

    @property
    def drifted(self) -> bool:
        return bool(self.missing or self.edited)


@dataclass(frozen=True)
class Update:
    version: int
    kind: str
    result: str
    start: str
    changes: dict[str, int]


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    date: str
    subject: str


@dataclass
class Report:
    stack: str
    base: str
    infrastructure: list[ResourceChange] | None = None
    infrastructure_error: str | None = None
    gitops: list[ObjectDiff] = field(default_factory=list)
    gitops_error: str | None = None
    live: list[LiveKustomization] | None = None
    live_error: str | None = None
    updates: list[Update] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.infrastructure or self.gitops)

    @property
    def drifted(self) -> bool:
        return any(k.drifted for k in self.live or [])

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "base": self.base, "changed": self.changed,
            "drifted": self.drifted,
            "infrastructure": {"changes": [asdict(c) for c in self.infrastructure or []],
                               "error": self.infrastructure_error},
            "gitops": {"changes": [d.to_json() for d in self.gitops],
                       "error": self.gitops_error},
            "live": {"kustomizations": [{**asdict(k), "drifted": k.drifted}
                                        for k in self.live or []],
                     "error": self.live_error},
            "history": {"updates": [asdict(u) for u in self.updates],
                        "commits": [asdict(c) for c in self.commits]},
        }


def audit(project: Path, stack: str, base: str) -> Report:
    path = stack_file(project, stack)
    if not path.is_file():
        raise AuditError(f"{path}: no such stack file (stack {stack!r})")
    report = Report(stack, base)
    try:
        report.infrastructure = plan(project, stack)
    except StackOutputError as err:
        report.infrastructure_error = str(err)
    try:
        report.gitops = gitops_change(project, stack, base)
    except (StackConfigError, RenderError, git.GitError) as err:
        report.gitops_error = str(err).strip().splitlines()[0]
    outputs: StackOutputs | None = None
    try:
        outputs = read_outputs(project, stack)
        report.updates = updates(project, stack)
    except StackOutputError as err:
        report.live_error = str(err)
    if outputs is not None:
        try:
            report.live = live_state(outputs.kubeconfig())
        except (StackOutputError, LiveError) as err:
            report.live_error = str(err)
    report.commits = commits(project, stack)
    return report


def plan(project: Path, stack: str) -> list[ResourceChange]:
    """What `pulumi preview` of the stack would change, resource by resource."""
    out = run_pulumi(project, stack, "preview", "--json", *config_file_args(project, stack),
                     timeout=1800)
    steps = (json.loads(out or "{}").get("steps") or [])
    changes = []
    for step in steps:
        op = str(step.get("op", ""))
        if op not in _CHANGING_OPS:
            continue
        urn = str(step.get("urn", ""))
        parts = urn.split("::")
        kind = parts[-2].rsplit("$", 1)[-1] if len(parts) >= 2 else ""
        detailed = step.get("detailedDiff") or {}
        properties = sorted(detailed) if detailed else sorted(step.get("diffReasons") or [])
        changes.append(ResourceChange(op, kind, parts[-1], properties))
    return changes


def gitops_change(project: Path, stack: str, base: str) -> list[ObjectDiff]:
    """The stack's rendered GitOps output at `base` (a git revision of the project) against
    the working tree's: what merging the change would make the cluster run differently."""
    rel = stack_file(project, stack).relative_to(project).as_posix()
    repo = git.Repo(project, search_parent_directories=True)
    prefix = Path(project).resolve().relative_to(Path(repo.working_tree_dir or ".").resolve())
    try:
        old_text = repo.git.show(f"{base}:{(prefix / rel).as_posix()}")
    except git.GitCommandError:
        old: list[dict[str, Any]] = []  # a new stack: everything is added
    else:
        old = render_repo_spec(parse_stack(old_text, f"{rel}@{base}").gitops)
    new = render_repo_spec(load_stack(project, stack).gitops)
    return diff_objects(old, new)


class LiveError(Exception):
    """The cluster cannot be read."""


def _kubectl(kubeconfig: str, *args: str) -> dict[str, Any]:
    try:
        argv = [str(find_tool("kubectl")), *args, "-o", "json", "--kubeconfig", kubeconfig]
    except ToolMissing as err:
        raise LiveError(str(err)) from None
    proc = subprocess.run(argv, capture_output=True, text=True, env=tool_env(), timeout=120)
    if proc.returncode != 0:
        raise LiveError(f"kubectl {' '.join(args[:2])}: {proc.stderr.strip()}")
    return dict(json.loads(proc.stdout or "{}"))


def live_state(kubeconfig_text: str) -> list[LiveKustomization]:
    """Each Kustomization's state, and its inventory objects gone from the cluster or edited
    since by a manager other than the controller (one listing per Kustomization)."""
    with tempfile.NamedTemporaryFile("w", prefix="plinth-audit-", suffix=".kubeconfig") as f:
        f.write(kubeconfig_text)
        f.flush()
        found = _kubectl(f.name, "get", "kustomizations.plinth.dev", "-A").get("items") or []
        return [_live(f.name, k) for k in sorted(
            found, key=lambda k: (k["metadata"]["namespace"], k["metadata"]["name"]))]


def _live(kubeconfig: str, kustomization: dict[str, Any]) -> LiveKustomization:
    meta, status = kustomization["metadata"], kustomization.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    refs = from_status(status)
    types = sorted({f"{r.kind.lower()}.{r.group}" if r.group else r.kind.lower()
                    for r in refs})
    live: dict[str, dict[str, Any]] = {}
    if types:
        selector = (f"{OWNER_NAME_LABEL}={meta['name']},"
                    f"{OWNER_NAMESPACE_LABEL}={meta['namespace']}")
        items = _kubectl(kubeconfig, "get", ",".join(types), "-A", "-l", selector,
                         "--show-managed-fields").get("items") or []
        live = {ObjectRef.of(o).id: o for o in items}
    missing = [str(r) for r in refs if r.id not in live]
    edited = [edit for r in refs if r.id in live for edit in _edits(str(r), live[r.id])]
    return LiveKustomization(
        f"{meta['namespace']}/{meta['name']}", str(ready.get("status", "Unknown")),
        str(status.get("lastAppliedRevision") or ""), str(ready.get("message", "")),
        len(refs), missing, edited)


def _edits(name: str, obj: dict[str, Any]) -> list[LiveEdit]:
    """Changes to the object's spec or metadata made after the controller's last apply by
    anyone but the controller and the cluster's own components."""
    fields = (obj.get("metadata") or {}).get("managedFields") or []
    ours = max((str(f.get("time", "")) for f in fields
                if f.get("manager") == FIELD_MANAGER), default="")
    return [LiveEdit(name, str(f.get("manager", "")), str(f.get("operation", "")),
                     str(f.get("time", "")))
            for f in fields
            if f.get("manager") != FIELD_MANAGER and not f.get("subresource")
            and not str(f.get("manager", "")).startswith(_SYSTEM_MANAGERS)
            and str(f.get("time", "")) >= ours]


def updates(project: Path, stack: str, limit: int = 10) -> list[Update]:
    """The stack's last Pulumi updates, newest first."""
    history = json.loads(run_pulumi(project, stack, "stack", "history", "--json") or "[]")
    return [Update(int(u.get("version", 0)), str(u.get("kind", "")), str(u.get("result", "")),
                   str(u.get("startTime", "")),
                   {k: int(v) for k, v in (u.get("resourceChanges") or {}).items()})
            for u in history[:limit]]


def commits(project: Path, stack: str, limit: int = 10) -> list[Commit]:
    """The project's last commits to the stack file: who changed the stack's configuration."""
    try:
        repo = git.Repo(project, search_parent_directories=True)
        found = list(repo.iter_commits(paths=str(stack_file(project, stack).resolve()),
                                       max_count=limit))
    except (git.GitError, ValueError):
        return []
    return [Commit(c.hexsha, str(c.author.name), c.committed_datetime.isoformat(),
                   str(c.message).strip().splitlines()[0] if str(c.message).strip() else "")
            for c in found]
