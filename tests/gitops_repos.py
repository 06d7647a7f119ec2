"""Small GitOps trees for tests, written as files (and committed when a test needs history)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import yaml


@dataclass(frozen=True)
class Link:
    """A symbolic link to `target`, as written into a tree."""

    target: str


def write_tree(root: Path, files: dict[str, Any]) -> Path:
    """Write files; a dict or list of dicts is dumped as YAML (a list as a multi-doc stream),
    bytes are written as they are and a `Link` becomes a symbolic link."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or isinstance(content, Link):
            path.unlink(missing_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.target)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        elif isinstance(content, list):
            path.write_text(yaml.safe_dump_all(content, sort_keys=False))
        else:
            path.write_text(yaml.safe_dump(content, sort_keys=False))
    return root


def commit_all(root: Path, message: str) -> str:
    repo = git.Repo(root) if (root / ".git").exists() else git.Repo.init(root, initial_branch="main")
    repo.git.add(A=True)
    return str(repo.index.commit(message).hexsha)


def kustomization(*resources: str, **extra: object) -> dict[str, object]:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": list(resources), **extra}


def configmap(name: str, data: dict[str, str], namespace: str | None = "apps",
              annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """namespace=None leaves it out, for kustomize or the controller to fill in."""
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
