"""Build a kustomization with the real kustomize, from a tree or a git rev.

kustomize is the standalone build of the version inside the pinned kubectl (v5.6.0), so the
output is byte for byte `kubectl kustomize`'s, at half its memory and start-up.

There is no renderer of ours: this module only checks what kustomize may read
(`kustomize_refs`), copies just that into a private folder (`tree_archive`), runs kustomize
there within bounds of memory and time, and parses its output.
"""
from __future__ import annotations

import posixpath
import re
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from plinth.kustomize_refs import SourceError, check_tree, kustomization_file
from plinth.localenv.tools import ToolMissing, find_tool, tool_env
from plinth.manifest_yaml import Loader, yaml_problem
from plinth.tree_archive import SourceTree, TreeError, WorkTree, copy_part

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
# Bounds for one kustomize run, far above what real repositories need. Measured on kustomize 5.6:
# 14 MB of CRDs take 11 s and 540 MB, kustomize needs ~100 MB to start at all, and an alias
# bomb reaches 1 GiB in 3 s. The limit is on data (heap), not address space: the Go
# runtime reserves ~800 MB of addresses it never touches.
KUSTOMIZE_MEMORY_BYTES = 1 << 30
KUSTOMIZE_SECONDS = 60
# prlimit (util-linux, essential on Debian, in the controller image too) sets the limit and then
# becomes kustomize: a preexec_fn may deadlock in a threaded parent (the controller renders in
# worker threads), and a limit set after the start would race with kustomize's first
# allocations. A lower hard limit already in place (a container's) stays.
# A Go crash dump: its first line says why (a fatal error, a panic, or a signal such as a
# SIGSEGV in the vDSO when memory runs out), then come stacks, which are never shown.
_GO_CRASH = re.compile(r"^(?:fatal error|panic|SIG[A-Z]+): .*$", re.MULTILINE)
_GO_DUMP = re.compile(r"^(?:goroutine \d+ |runtime stack:|PC=0x)", re.MULTILINE)
_GO_MEMORY = ("out of memory", "cannot allocate memory")
_MAX_MESSAGE_CHARS = 1000


class RenderError(Exception):
    """kustomize refused the input, or the input may not be rendered; nothing was produced."""


@dataclass(frozen=True)
class Rendered:
    path: str  # the rendered kustomization, relative to the repository root
    text: str  # kustomize's output, byte for byte
    objects: list[dict[str, Any]]
    warnings: tuple[str, ...] = ()  # what kustomize said on success (deprecated fields)
    # what the build was given, by path from the root: every folder, file and link copied for
    # kustomize; a commit that changes none of them, and adds nothing beneath those folders,
    # renders the same objects
    inputs: frozenset[str] = frozenset()


def reads_any(inputs: frozenset[str], paths: Iterable[str]) -> bool:
    """Whether any of `paths` (from the repository root) is one of a render's `inputs` or lies
    beneath one of its folders."""
    for path in paths:
        parts = path.split("/")
        if "." in inputs or any("/".join(parts[:n]) in inputs for n in range(1, len(parts) + 1)):
            return True
    return False


def render(
    path: Path,
    *,
    repo_root: Path | None = None,
    rev: str | None = None,
    allow_remote: bool = False,
    with_origin: bool = False,
    target_namespace: str | None = None,
    timeout: float | None = None,
) -> Rendered:
    """Render `path`, a directory inside `repo_root` (default: the git work tree around it).

    With `rev`, the tree at that git revision is rendered instead of the working tree (`path`
    need not exist in the working tree then). With `with_origin`, every object carries
    kustomize's origin annotation (the file it came from), which error messages use; plain
    output is exactly what `kubectl kustomize` prints. With `target_namespace`, kustomize's own
    namespace transformer moves every namespaced object there. kustomize may run `timeout`
    seconds (default KUSTOMIZE_SECONDS).

    Any failure is a RenderError of one line naming the file (or, when kustomize itself fails,
    the kustomization) and the cause; for a revision it starts with "revision 'REV': ".
    """
    root = (repo_root or repository_root(path)).resolve()
    rel = _relative(path, root)
    with _source(root, rev) as source:
        try:
            text, base, warnings, inputs = _build(source, rel, allow_remote, with_origin,
                                                  target_namespace, timeout or KUSTOMIZE_SECONDS)
        except RenderError as err:
            if rev is None:
                raise
            raise RenderError(f"revision {rev!r}: {err}") from err
    objects = _parse(text, rel)
    if with_origin:
        for obj in objects:
            _origin_from_root(obj, base)
    return Rendered(rel, text, objects, warnings, inputs)


def _build(source: SourceTree, rel: str, allow_remote: bool, with_origin: bool,
           target_namespace: str | None, timeout: float
           ) -> tuple[str, str, tuple[str, ...], frozenset[str]]:
    """Check what the kustomization reaches, copy just that, run kustomize on the copy:
    (its output, the built kustomization's path from the root, its warnings, what was copied)."""
    with tempfile.TemporaryDirectory(prefix="plinth-render-") as tmp:
        tree = Path(tmp) / "repo"
        tree.mkdir()
        try:
            walk = check_tree(source, rel, allow_remote=allow_remote)
            copied = copy_part(source, [*walk.dirs, *walk.files], tree)
        except (SourceError, TreeError) as err:
            raise RenderError(str(err)) from err
        target = tree / walk.start
        if walk.generated is not None:
            (target / "kustomization.yaml").write_text(
                yaml.safe_dump(walk.generated, sort_keys=False))
        _edit_kustomization(target, target_namespace, with_origin)
        text, warnings = _kustomize(target, tree, allow_remote, timeout)
        return text, walk.start, warnings, copied


def _parse(text: str, rel: str) -> list[dict[str, Any]]:
    try:
        return [doc for doc in yaml.load_all(text, Loader=Loader) if doc is not None]
    except yaml.YAMLError as err:
        raise RenderError(f"{rel}: kustomize produced unreadable YAML: "
                          f"{_one_line(yaml_problem(err))}") from err
    except RecursionError:
        raise RenderError(f"{rel}: kustomize's output nests too deeply to read") from None


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


def repository_root(path: Path) -> Path:
    """The work tree around `path`, or around its nearest existing parent (a path rendered at
    a revision may be gone from the working tree): the nearest folder holding `.git` (a folder,
    or a file for worktrees and submodules), as git finds it. Rendering a work tree needs no git."""
    existing = next(p for p in [path.absolute(), *path.absolute().parents] if p.exists())
    return next((p for p in [existing, *existing.parents] if (p / ".git").exists()), path)


def _relative(path: Path, root: Path) -> str:
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise RenderError(f"{path}: outside the repository {root}")
    return resolved.relative_to(root).as_posix() or "."


@contextmanager
def _source(root: Path, rev: str | None) -> Iterator[SourceTree]:
    """The files to render: the work tree, or the commit `rev` read object by object."""
    if rev is None:
        yield WorkTree(root)
        return
    import git  # only a revision needs git

    from plinth.commit_tree import CommitTree

    try:
        repo = git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as err:
        raise RenderError(f"{root}: not a git repository, so no revision {rev!r}") from err
    with repo:
        try:
            commit = repo.commit(rev)
        except (git.BadName, ValueError) as err:
            raise RenderError(f"{root}: unknown revision {rev!r}") from err
        yield CommitTree(commit)


def _edit_kustomization(directory: Path, namespace: str | None, with_origin: bool) -> None:
    """Set the namespace and origin annotations in the copied kustomization itself, as Flux
    does for targetNamespace. A kustomization wrapping it would make kustomize accumulate every
    object twice, and its accumulation is quadratic (10,000 objects: 56 s, wrapped 104 s)."""
    kfile = kustomization_file(directory)
    if kfile is None or (namespace is None and not with_origin):
        return
    doc = yaml.load(kfile.read_text(), Loader=Loader) or {}
    if namespace is not None:
        doc["namespace"] = namespace
    build_metadata = list(doc.get("buildMetadata") or [])
    if with_origin and "originAnnotations" not in build_metadata:
        doc["buildMetadata"] = [*build_metadata, "originAnnotations"]
    kfile.write_text(yaml.safe_dump(doc, sort_keys=False))


def _kustomize(directory: Path, tree: Path, allow_remote: bool, timeout: float
               ) -> tuple[str, tuple[str, ...]]:
    name = directory.relative_to(tree).as_posix()
    try:
        kustomize = find_tool("kustomize")
    except ToolMissing as err:
        raise RenderError(f"{name}: {err}") from None
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise RenderError(f"{name}: prlimit (util-linux) is not installed; kustomize runs only "
                          "within a memory limit")
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    limit = KUSTOMIZE_MEMORY_BYTES if hard == resource.RLIM_INFINITY else \
        min(KUSTOMIZE_MEMORY_BYTES, hard)
    argv = [prlimit, f"--data={limit}:{limit}", str(kustomize), "build", str(directory),
            "--load-restrictor=LoadRestrictionsRootOnly"]
    if allow_remote:
        argv.append("--enable-helm")
    try:
        proc = subprocess.run(argv, capture_output=True, env=tool_env(),
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{name}: kustomize did not finish within {timeout:g} s "
                          "and was stopped") from None
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RenderError(f"{name}: {_failure(proc.returncode, stderr, tree, limit)}")
    warnings = tuple(line.strip().removeprefix("# ").removeprefix("Warning: ")
                     .replace(f"{tree}/", "") for line in stderr.splitlines() if line.strip())
    try:
        return proc.stdout.decode("utf-8"), warnings
    except UnicodeDecodeError as err:
        raise RenderError(f"{name}: kustomize printed bytes that are not UTF-8 "
                          f"(offset {err.start})") from None


def _failure(returncode: int, stderr: str, tree: Path, limit: int) -> str:
    """kustomize's failure in one line: a crash or a kill is said so, never dumped."""
    if returncode < 0:
        return f"kustomize was killed by {signal.Signals(-returncode).name}"
    if _GO_DUMP.search(stderr):
        crash = _GO_CRASH.search(stderr)
        reason = _one_line(crash.group(0)) if crash else "a Go runtime failure"
        if any(words in stderr for words in _GO_MEMORY):
            return (f"kustomize ran out of memory (its limit is "
                    f"{limit >> 20} MiB) and crashed: {reason}")
        if reason.startswith("SIG"):  # an allocation refused by the limit can fault like this
            return f"kustomize crashed: {reason}, within its memory limit of {limit >> 20} MiB"
        return f"kustomize crashed: {reason}"
    return f"kustomize: {_one_line(stderr.replace(str(tree) + '/', '').replace(str(tree), '.'))}"


def _one_line(text: str) -> str:
    """`text` with its whitespace runs made single spaces, at most _MAX_MESSAGE_CHARS long."""
    line = " ".join(text.split())
    return line if len(line) <= _MAX_MESSAGE_CHARS else line[:_MAX_MESSAGE_CHARS] + "..."
