"""Everything a scaffolded GitOps repo makes its cluster run, rendered without a cluster.

The cluster entry point `clusters/<cluster>/` holds Plinth Kustomizations; each points at a path
of the same repository. Rendering the entry point and every path it points at gives the objects
the sync controller would apply: what `plinth diff --stack` compares.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from plinth.render import RenderError, render
from plinth.repospec import RepoSpec
from plinth.scaffold import render_template, write


def render_repo_spec(spec: RepoSpec) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="plinth-stack-") as tmp:
        repo = Path(tmp)
        write(repo, render_template(spec))
        return render_cluster(repo, spec.cluster)


def render_cluster(repo: Path, cluster: str) -> list[dict[str, Any]]:
    entry = render(repo / "clusters" / cluster, repo_root=repo)
    objects = list(entry.objects)
    for obj in entry.objects:
        if obj.get("apiVersion") == "plinth.dev/v1" and obj.get("kind") == "Kustomization":
            path = str((obj.get("spec") or {}).get("path", ""))
            name = (obj.get("metadata") or {}).get("name")
            try:
                objects += render(repo / path, repo_root=repo).objects
            except RenderError as err:
                raise RenderError(f"Kustomization {name} (path {path}): {err}") from err
    return objects
