"""Check what a kustomization refers to before kustomize reads it.

Measured on kustomize 5.6: it follows `../` bases out of any tree, fetches remote bases over the
network, and reads files of any size. A GitOps source must not do any of that, so every local
reference must resolve (symlinks included) inside the repository, remote references are refused
unless allowed, and the files read are bounded in size.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|[\w.-]+\.[a-z]{2,}/)|\?ref=|//")
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024


class SourceError(Exception):
    """A kustomization refers to something it may not; the message names the file and entry."""


@dataclass
class Walk:
    root: Path
    allow_remote: bool = False
    max_file_bytes: int = MAX_FILE_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    files: set[Path] = field(default_factory=set)
    seen_dirs: set[Path] = field(default_factory=set)

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def check_tree(
    root: Path, path: Path, *, allow_remote: bool = False,
    max_file_bytes: int = MAX_FILE_BYTES, max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Walk:
    """Walk the kustomization at `path` (inside `root`) and everything it refers to."""
    root = root.resolve()
    walk = Walk(root, allow_remote, max_file_bytes, max_total_bytes)
    start = _inside(walk, path, "the path to render")
    if not start.is_dir():
        raise SourceError(f"{_rel(walk, start)}: not a directory")
    _visit_dir(walk, start)
    if walk.total_bytes > max_total_bytes:
        raise SourceError(
            f"{_rel(walk, start)}: the kustomization reads {walk.total_bytes} bytes, "
            f"more than the limit of {max_total_bytes}"
        )
    return walk


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def _rel(walk: Walk, path: Path) -> str:
    try:
        return path.relative_to(walk.root).as_posix() or "."
    except ValueError:
        return str(path)


def _inside(walk: Walk, path: Path, what: str, origin: str | None = None) -> Path:
    resolved = path.resolve()
    if resolved != walk.root and walk.root not in resolved.parents:
        where = f"{origin}: " if origin else ""
        raise SourceError(f"{where}{what} resolves outside the repository ({resolved})")
    return resolved


def _add_file(walk: Walk, path: Path, origin: str) -> None:
    size = path.stat().st_size
    if size > walk.max_file_bytes:
        raise SourceError(f"{origin}: {_rel(walk, path)} is {size} bytes, "
                          f"more than the limit of {walk.max_file_bytes}")
    walk.files.add(path)


def _visit_dir(walk: Walk, directory: Path) -> None:
    if directory in walk.seen_dirs:
        return
    walk.seen_dirs.add(directory)
    kfile = kustomization_file(directory)
    if kfile is None:
        raise SourceError(f"{_rel(walk, directory)}: no kustomization.yaml")
    origin = _rel(walk, kfile)
    _add_file(walk, kfile, origin)
    try:
        doc = yaml.safe_load(kfile.read_text())
    except yaml.YAMLError as err:
        raise SourceError(f"{origin}: not valid YAML: {err}") from err
    if not isinstance(doc, dict):
        raise SourceError(f"{origin}: expected a mapping, got {type(doc).__name__}")
    if doc.get("helmCharts") and not walk.allow_remote:
        raise SourceError(f"{origin}: helmCharts pull charts from the network; "
                          "remote sources are disabled (enable them explicitly to allow)")
    for key, entry in _references(doc):
        _visit_ref(walk, directory, origin, key, entry)


def _visit_ref(walk: Walk, directory: Path, origin: str, key: str, entry: str) -> None:
    if _REMOTE.search(entry):
        if walk.allow_remote:
            return
        raise SourceError(f"{origin}: {key} entry {entry!r} is a remote reference; "
                          "remote bases are disabled (enable them explicitly to allow)")
    target = _inside(walk, directory / entry, f"{key} entry {entry!r}", origin)
    if target.is_dir():
        _visit_dir(walk, target)
    elif target.is_file():
        _add_file(walk, target, origin)
    # A missing entry is left to kustomize, whose error names it precisely.


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
    for key in ("configMapGenerator", "secretGenerator"):
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
