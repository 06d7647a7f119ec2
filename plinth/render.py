"""Build a kustomization with the real kustomize (`kubectl kustomize`), from a tree or a git rev.

There is no renderer of ours: this module only checks what kustomize may read
(`kustomize_refs`), runs it, and parses its output.
"""
from __future__ import annotations

import io
import posixpath
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import yaml

from plinth.kustomize_refs import SourceError, check_tree, kustomization_file
from plinth.localenv.tools import find_tool, tool_env
from plinth.tree_archive import UnsafeArchiveError, extract_tree

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"


class RenderError(Exception):
    """kustomize refused the input, or the input may not be rendered; nothing was produced."""


@dataclass(frozen=True)
class Rendered:
    path: str  # the rendered kustomization, relative to the repository root
    text: str  # kustomize's output, byte for byte
    objects: list[dict[str, Any]]


def render(
    path: Path,
    *,
    repo_root: Path | None = None,
    rev: str | None = None,
    allow_remote: bool = False,
    with_origin: bool = False,
    target_namespace: str | None = None,
) -> Rendered:
    """Render `path`, a directory inside `repo_root` (default: the git work tree around it).

    With `rev`, the tree at that git revision is rendered instead of the working tree. With
    `with_origin`, every object carries kustomize's origin annotation (the file it came from),
    which error messages use; plain output is exactly what `kubectl kustomize` prints. With
    `target_namespace`, kustomize's own namespace transformer moves every namespaced object there.
    """
    root = (repo_root or _git_root(path)).resolve()
    rel = _relative(path, root)
    with _tree(root, rev) as tree:
        try:
            check_tree(tree, tree / rel, allow_remote=allow_remote)
        except SourceError as err:
            raise RenderError(str(err).replace(str(tree), "<repo>")) from err
        target = tree / rel
        if target_namespace is not None:
            target = _namespace_wrapper(tree, rel, target_namespace)
        if with_origin:
            _add_origin_annotations(target)
        text = _kustomize(target, tree, allow_remote)
        base = target.relative_to(tree).as_posix()
    try:
        objects = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        raise RenderError(f"{rel}: kustomize produced unreadable YAML: {err}") from err
    if with_origin:
        for obj in objects:
            _origin_from_root(obj, base)
    return Rendered(rel, text, objects)


def _origin_from_root(obj: dict[str, Any], base: str) -> None:
    """kustomize writes origins relative to the kustomization it built; make them repo paths."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    data = yaml.safe_load(annotations.get(ORIGIN_ANNOTATION) or "null")
    if isinstance(data, dict) and data.get("path") and not data.get("repo"):
        data["path"] = posixpath.normpath(posixpath.join(base, str(data["path"])))
        annotations[ORIGIN_ANNOTATION] = yaml.safe_dump(data, sort_keys=False)


def origin_of(obj: dict[str, Any]) -> str | None:
    """The repository file an object came from (a path from the repo root), when rendered
    `with_origin`."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    origin = annotations.get(ORIGIN_ANNOTATION)
    if not origin:
        return None
    data = yaml.safe_load(origin)
    return str(data.get("path")) if isinstance(data, dict) and data.get("path") else None


def _git_root(path: Path) -> Path:
    try:
        return Path(git.Repo(path, search_parent_directories=True).working_tree_dir or path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return path


def _relative(path: Path, root: Path) -> str:
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise RenderError(f"{path}: outside the repository {root}")
    return resolved.relative_to(root).as_posix() or "."


@contextmanager
def _tree(root: Path, rev: str | None) -> Iterator[Path]:
    """A private copy of the tree to render, so nothing kustomize or we do touches the repo."""
    with tempfile.TemporaryDirectory(prefix="plinth-render-") as tmp:
        tree = Path(tmp) / "repo"
        if rev is None:
            shutil.copytree(root, tree, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        else:
            _export(root, rev, tree)
        yield tree


def _export(root: Path, rev: str, tree: Path) -> None:
    try:
        repo = git.Repo(root)
        commit = repo.commit(rev)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as err:
        raise RenderError(f"{root}: not a git repository, so no revision {rev!r}") from err
    except (git.BadName, ValueError) as err:
        raise RenderError(f"{root}: unknown revision {rev!r}") from err
    buffer = io.BytesIO()
    repo.archive(buffer, treeish=commit.hexsha, format="tar")
    buffer.seek(0)
    tree.mkdir(parents=True)
    with tarfile.open(fileobj=buffer) as tar:
        try:
            extract_tree(tar, tree)
        except UnsafeArchiveError as err:
            raise RenderError(f"revision {rev!r}: {err}") from err


def _namespace_wrapper(tree: Path, rel: str, namespace: str) -> Path:
    wrapper = tree / ".plinth-target-namespace"
    wrapper.mkdir()
    doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
           "namespace": namespace, "resources": [f"../{rel}"]}
    (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return wrapper


def _add_origin_annotations(directory: Path) -> None:
    kfile = kustomization_file(directory)
    if kfile is None:
        return
    doc = yaml.safe_load(kfile.read_text()) or {}
    build_metadata = list(doc.get("buildMetadata") or [])
    if "originAnnotations" not in build_metadata:
        doc["buildMetadata"] = [*build_metadata, "originAnnotations"]
        kfile.write_text(yaml.safe_dump(doc, sort_keys=False))


def _kustomize(directory: Path, tree: Path, allow_remote: bool) -> str:
    argv = [str(find_tool("kubectl")), "kustomize", str(directory),
            "--load-restrictor=LoadRestrictionsRootOnly"]
    if allow_remote:
        argv.append("--enable-helm")
    proc = subprocess.run(argv, capture_output=True, text=True, env=tool_env(), timeout=120)
    if proc.returncode != 0:
        message = proc.stderr.strip().replace(str(tree) + "/", "").replace(str(tree), ".")
        raise RenderError(f"{directory.relative_to(tree).as_posix()}: kustomize: {message}")
    return proc.stdout
