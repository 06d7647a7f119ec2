"""Check what a kustomization refers to, and what those files hold, before kustomize reads them.

Measured on kustomize 5.6: it follows `../` bases out of any tree, fetches remote bases over the
network, reads files of any size, and expands YAML aliases without bound (nine anchors of nine
aliases each take it past 1 GB and end in a Go crash dump that names no file). A GitOps source
must not do any of that, so every local reference must resolve (links included) inside the
repository, remote references are refused unless allowed, the files read are bounded in size,
and every YAML file kustomize parses is UTF-8 whose aliases neither contain themselves nor
multiply it. This is a pre-flight, not a renderer: it reads YAML as a stream of events, never
builds a document, and kustomize still reads every file itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plinth.manifest_yaml import Loader, yaml_problem
from plinth.tree_archive import LeavesTree, SourceTree, TreeError, resolve

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# What kustomize 5.6 fetches instead of reading from the tree: an http(s) URL, and a git
# repository URL, which for kustomize has a scheme, a `user@` or starts with github.com (after
# an optional `git::`). Any other entry is a local path, dots and all (`app.example.com/cm.yaml`).
# Every scheme counts here, not only the four kustomize clones from: refusing more is safe.
_REMOTE = re.compile(r"^(?:git::)?(?:[a-z][a-z0-9+.-]*://|[a-z][a-z0-9-]*@|github\.com[/:])",
                     re.IGNORECASE)
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
# kustomize holds about 2 KB per node it builds (measured: 9**6 alias copies took it to 1.2 GB
# in 11 s), so aliases may add at most this many nodes to a file, about 200 MB in kustomize.
# Real reuse (an env list or a probe shared by a few containers) adds hundreds.
MAX_ALIAS_NODES = 100_000
# YAML scanners (libyaml, PyYAML, go-yaml's port of libyaml) slow down with the square of the
# nesting depth: 8,000 levels of `[` take libyaml 0.2 s, a million would take it an hour.
# Kubernetes objects nest a few dozen levels; the deepest CRD schemas we know, about 60.
MAX_NESTING = 200
_DEEP_LINE = re.compile(r"^[ \t-]{%d,}" % MAX_NESTING, re.MULTILINE)  # block nesting indents
# Files these fields name are data for generators (any bytes); every other field names YAML.
_DATA_FIELDS = ("configMapGenerator", "secretGenerator")
# How a kustomization that is not a mapping is named in the error.
_YAML_TYPES = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


class SourceError(Exception):
    """A kustomization refers to something it may not, or a file it reads may not be read; the
    message names the file and entry."""


@dataclass
class Walk:
    """What a kustomization reaches, by real path from the repository root (links followed)."""
    tree: SourceTree
    allow_remote: bool = False
    max_file_bytes: int = MAX_FILE_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    start: str = "."
    dirs: list[str] = field(default_factory=list)  # every kustomization folder, start first
    files: dict[str, int] = field(default_factory=dict)  # every file read, with its size
    # the kustomization made for a start folder of plain manifests (Flux's rule), if any
    generated: dict[str, Any] | None = None

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


def check_tree(
    tree: SourceTree, path: str, *, allow_remote: bool = False,
    max_file_bytes: int = MAX_FILE_BYTES, max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Walk:
    """Walk the kustomization at `path` (from the root of `tree`) and everything it refers to.

    Raises SourceError for what the kustomization may not do, TreeError for a path of the tree
    that cannot be read."""
    walk = Walk(tree, allow_remote, max_file_bytes, max_total_bytes)
    walk.start = _resolve(walk, path, f"the path to render {path!r}")
    entry = tree.entry(walk.start)
    if entry is None or entry.kind != "dir":
        raise SourceError(f"{walk.start}: {'no such' if entry is None else 'not a'} directory")
    if _has_kustomization(walk, walk.start):
        _visit_dir(walk, walk.start)
    else:
        walk.dirs.append(walk.start)
        walk.generated = generate_kustomization(walk, walk.start)
        for key, entry_name in _references(walk.generated):
            _visit_ref(walk, walk.start, f"{walk.start} (a folder of plain manifests)", key,
                       entry_name)
    if walk.total_bytes > max_total_bytes:
        raise SourceError(
            f"{walk.start}: the kustomization reads {walk.total_bytes} bytes, "
            f"more than the limit of {max_total_bytes}"
        )
    return walk


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def _check_yaml(text: str, name: str) -> None:
    """Refuse YAML that would make a parser explode: an alias inside the node it names, aliases
    adding more than MAX_ALIAS_NODES nodes, nesting beyond MAX_NESTING.

    Reads the event stream only, so the cost is linear in the text and stops at the first
    problem; malformed YAML is left to kustomize, whose error names the line."""
    anchors: dict[str, int | None] = {}  # None: the node is still being read
    open_nodes: list[_OpenNode] = []
    added = 0
    try:
        for event in yaml.parse(text, Loader=Loader):
            if isinstance(event, yaml.DocumentStartEvent):
                anchors.clear()
                continue
            if isinstance(event, yaml.CollectionStartEvent):
                if len(open_nodes) >= MAX_NESTING:
                    raise SourceError(f"{name}: YAML nested more than {MAX_NESTING} levels deep")
                if event.anchor:
                    anchors[event.anchor] = None
                open_nodes.append(_OpenNode(event.anchor))
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                node = open_nodes.pop()
                size = node.size
                if node.anchor:
                    anchors[node.anchor] = size
            elif isinstance(event, yaml.AliasEvent):
                size = _alias_size(anchors, str(event.anchor), name)
                added += size
                if added > MAX_ALIAS_NODES:
                    raise SourceError(f"{name}: YAML aliases expand it by more than "
                                      f"{MAX_ALIAS_NODES} nodes (an alias bomb)")
            elif isinstance(event, yaml.ScalarEvent):
                size = 1
                if event.anchor:
                    anchors[event.anchor] = size
            else:
                continue
            if open_nodes:
                open_nodes[-1].size += size
    except yaml.YAMLError:
        return


@dataclass
class _OpenNode:
    anchor: str | None
    size: int = 1


def _alias_size(anchors: dict[str, int | None], anchor: str, name: str) -> int:
    """The nodes an alias stands for; an undefined one is left to kustomize to report."""
    if anchor in anchors and anchors[anchor] is None:
        raise SourceError(f"{name}: YAML alias *{anchor} lies inside the node it refers to "
                          "(a self-referential document)")
    return anchors.get(anchor) or 1


def _resolve(walk: Walk, rel: str, context: str) -> str:
    try:
        return resolve(walk.tree, rel)
    except LeavesTree:
        raise SourceError(f"{context} resolves outside the repository") from None
    except TreeError as err:
        raise SourceError(f"{context}: {err}") from None


def _join(directory: str, entry: str) -> str:
    return entry if directory == "." else f"{directory}/{entry}"


def _kind(walk: Walk, real: str) -> str:
    entry = walk.tree.entry(real)
    return "missing" if entry is None else entry.kind


def _too_big(walk: Walk, real: str) -> bool:
    entry = walk.tree.entry(real)
    return entry is not None and entry.size > walk.max_file_bytes


def _record(walk: Walk, real: str, origin: str) -> None:
    """Count a file the kustomization reads (known to be a file) against the size limits."""
    entry = walk.tree.entry(real)
    size = entry.size if entry else 0
    if size > walk.max_file_bytes:
        raise SourceError(f"{origin}: {real} is {size} bytes, "
                          f"more than the limit of {walk.max_file_bytes}")
    walk.files[real] = size


def _yaml_text(walk: Walk, real: str) -> str:
    data = walk.tree.read(real)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SourceError(f"{real}: not UTF-8 (byte {data[err.start]:#04x} at offset "
                          f"{err.start}); kustomize reads YAML as UTF-8") from None


def check_yaml(text: str, name: str) -> None:
    """SourceError naming `name` when YAML text would make a parser blow up (alias bombs,
    self-referential aliases, deep nesting): for readers of files no kustomization names."""
    if _needs_scan(text):
        _check_yaml(text, name)


def _needs_scan(text: str) -> bool:
    """Whether YAML may hold an alias (both an anchor and an alias sign) or nest MAX_NESTING
    deep (as many brackets, or a line indented that far): most files skip the event scan."""
    return ("&" in text and "*" in text) or \
        text.count("[") + text.count("{") >= MAX_NESTING or \
        _DEEP_LINE.search(text) is not None


def _visit_dir(walk: Walk, directory: str) -> None:
    if directory in walk.dirs:
        return
    walk.dirs.append(directory)
    origin, real = _kustomization_in(walk, directory)
    _record(walk, real, origin)
    text = _yaml_text(walk, real)
    _check_yaml(text, real)  # always: this file is parsed here too, so its depth must be bounded
    try:
        doc = yaml.load(text, Loader=Loader)
    except yaml.YAMLError as err:
        raise SourceError(f"{origin}: not valid YAML: {yaml_problem(err)}") from err
    if not isinstance(doc, dict):
        got = "an empty file" if doc is None else \
            f"a {_YAML_TYPES.get(type(doc), type(doc).__name__)}"
        raise SourceError(f"{origin}: expected a mapping of kustomization fields, got {got}")
    if doc.get("helmCharts") and not walk.allow_remote:
        raise SourceError(f"{origin}: helmCharts pull charts from the network; "
                          "remote sources are disabled (enable them explicitly to allow)")
    for label, patch in _inline_patches(doc):
        if _needs_scan(patch):
            _check_yaml(patch, f"{origin}: {label}")
    for key, entry in _references(doc):
        _visit_ref(walk, directory, origin, key, entry)


def _has_kustomization(walk: Walk, directory: str) -> bool:
    return any(walk.tree.entry(_join(directory, name)) is not None
               for name in KUSTOMIZATION_FILES)


_MANIFEST = re.compile(r"^apiVersion:.*$(?s:.*)^kind:|^kind:.*$(?s:.*)^apiVersion:",
                       re.MULTILINE)


def generate_kustomization(walk: Walk, directory: str) -> dict[str, Any]:
    """What Flux does for a path without a kustomization: every Kubernetes manifest (a YAML
    file with apiVersion and kind) under it, and every folder under it that has a
    kustomization of its own (not entered), as resources; hidden entries and Helm charts
    are left out."""
    resources: list[str] = []

    def visit(real_dir: str, prefix: str) -> None:
        for name in sorted(walk.tree.names(real_dir)):
            if name.startswith("."):
                continue
            path = _resolve(walk, _join(real_dir, name), f"{directory}: {prefix}{name}")
            kind = _kind(walk, path)
            if kind == "dir":
                if _has_kustomization(walk, path):
                    resources.append(f"{prefix}{name}")
                elif walk.tree.entry(_join(path, "Chart.yaml")) is None:
                    visit(path, f"{prefix}{name}/")
            elif kind == "file" and name.endswith((".yaml", ".yml")) and (
                    _too_big(walk, path) or _MANIFEST.search(_yaml_text(walk, path))):
                resources.append(f"{prefix}{name}")  # one too big is refused as a resource
    visit(directory, "")
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": resources}


def _kustomization_in(walk: Walk, directory: str) -> tuple[str, str]:
    """(the kustomization file as named in `directory`, its real path)."""
    for name in KUSTOMIZATION_FILES:
        path = _join(directory, name)
        if walk.tree.entry(path) is None:
            continue
        real = _resolve(walk, path, path)
        if _kind(walk, real) == "file":
            return path, real
    raise SourceError(f"{directory}: no kustomization.yaml")


def _visit_ref(walk: Walk, directory: str, origin: str, key: str, entry: str) -> None:
    if _REMOTE.match(entry):
        if walk.allow_remote:
            return
        raise SourceError(f"{origin}: {key} entry {entry!r} is a remote reference; "
                          "remote bases are disabled (enable them explicitly to allow)")
    real = _resolve(walk, _join(directory, entry), f"{origin}: {key} entry {entry!r}")
    kind = _kind(walk, real)
    if kind == "dir":
        _visit_dir(walk, real)
    elif kind == "file" and real not in walk.files:
        _record(walk, real, origin)
        if key not in _DATA_FIELDS:
            text = _yaml_text(walk, real)
            if _needs_scan(text):
                _check_yaml(text, real)
    # A missing entry is left to kustomize, whose error names it precisely.


def _inline_patches(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, text) of every patch written inside the kustomization, which kustomize parses."""
    found: list[tuple[str, str]] = []
    for key in ("patches", "patchesJson6902"):
        for i, item in enumerate(doc.get(key) or []):
            if isinstance(item, dict) and isinstance(item.get("patch"), str):
                found.append((f"{key}[{i}].patch", item["patch"]))
    for i, item in enumerate(doc.get("patchesStrategicMerge") or []):
        if isinstance(item, str) and ("\n" in item or item.lstrip().startswith("{")):
            found.append((f"patchesStrategicMerge[{i}]", item))
    return found


def _references(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, path) for every field of a kustomization that names a file or directory."""
    refs: list[tuple[str, str]] = []

    def strings(key: str, value: Any) -> None:
        for item in value or []:
            if isinstance(item, str) and "\n" not in item and not item.lstrip().startswith("{"):
                refs.append((key, item))

    for key in ("resources", "bases", "components", "crds", "configurations",
                "generators", "transformers", "validators", "patchesStrategicMerge"):
        strings(key, doc.get(key))
    for key in ("patches", "patchesJson6902", "replacements"):
        for item in doc.get(key) or []:
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                refs.append((key, item["path"]))
    for key in _DATA_FIELDS:
        for gen in doc.get(key) or []:
            if not isinstance(gen, dict):
                continue
            for file_entry in gen.get("files") or []:
                refs.append((key, str(file_entry).split("=", 1)[-1]))
            for env_file in [*(gen.get("envs") or []), *([gen["env"]] if gen.get("env") else [])]:
                refs.append((key, str(env_file)))
    openapi = doc.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        refs.append(("openapi", openapi["path"]))
    return refs
