"""Render `plinth/gitops_repo_template/` for a RepoSpec; write it without clobbering human edits.

The one scaffolder: `plinth new` and the Pulumi GitOpsRepo component both call `render_template`
and `plan`/`write`, so they produce the same bytes. A manifest of what was generated
(`.plinth/scaffold.json`, path -> sha256) tells an unedited generated file, which may be updated,
from a file a person changed, which is only overwritten with `force`.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
import yaml

from plinth import controller_manifests
from plinth.manifest_yaml import yaml_problem
from plinth.repospec import AppSpec, EnvironmentSpec, RepoSpec
from plinth.yaml_scalars import render_scalar

# Package data of `plinth` (pyproject's package-data), so that a wheel install scaffolds the
# same files as a checkout.
TEMPLATE = resources.files("plinth") / "gitops_repo_template"
MANIFEST = ".plinth/scaffold.json"
_LOOPS = ("__env__", "__app__")


class ScaffoldError(Exception):
    """The template or its variables would produce something unsafe or invalid."""


class ScaffoldConflict(ScaffoldError):
    """Files a person edited would be overwritten; nothing was written."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(
            "these files were edited since they were generated and would be overwritten "
            f"(use --force to overwrite): {', '.join(paths)}"
        )
        self.paths = paths


def render_template(spec: RepoSpec, template_dir: Path | None = None) -> dict[str, bytes]:
    """Every output file (POSIX relative path -> bytes), in a stable order, from `template_dir`
    or else the template Plinth ships."""
    if template_dir is None:
        with resources.as_file(TEMPLATE) as shipped:
            return render_template(spec, shipped)
    sources = sorted(p for p in template_dir.rglob("*") if p.is_file())
    if not sources:
        # An install without its package data would otherwise write only the manifest.
        raise ScaffoldError(f"template folder {template_dir} is missing or empty: nothing to "
                            "scaffold (is plinth installed without its package data?)")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["yaml_scalar"] = render_scalar  # a tag such as 2.0 must stay a string
    files: dict[str, bytes] = {}
    base = _context(spec)
    for source in sources:
        rel = source.relative_to(template_dir).as_posix()
        for out_path, context in _expand(rel, spec, base):
            try:
                text = env.get_template(rel).render(context)
            except jinja2.TemplateError as err:
                raise ScaffoldError(f"template {rel}: {err}") from err
            if not text.strip():
                continue  # a file of a feature the spec leaves off (clusters/*/images.yaml)
            _check_output(out_path, text)
            files[out_path] = text.encode()
    return dict(sorted(files.items()))


def _context(spec: RepoSpec) -> dict[str, Any]:
    """The variables every template sees; built once per render (the controller's manifests
    read the CRD files)."""
    return {
        "cluster": spec.cluster,
        "active_env": spec.active_env,
        "environments": spec.environments,
        "apps": spec.apps,
        "registry": spec.registry,
        "controller_version": spec.controller_version,
        "source_name": spec.source_name,
        "health_wait": spec.health_wait,
        "image_of": spec.image_of,
        "image_automation": spec.image_automation,
        "pull_secret": spec.pull_secret,
        "controller_manifests": controller_manifests.to_yaml(controller_manifests.manifests(
            spec.controller_image_ref, spec.pull_secret, spec.controller_role_arn,
            spec.cluster)),
    }


def _expand(rel: str, spec: RepoSpec,
            base: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """One (path, context) per environment and/or app the path loops over."""
    envs: list[EnvironmentSpec | None] = list(spec.environments) if "__env__" in rel else [None]
    apps: list[AppSpec | None] = list(spec.apps) if "__app__" in rel else [None]
    for env, app in itertools.product(envs, apps):
        path = rel.replace("__cluster__", spec.cluster)
        context = dict(base)
        if env is not None:
            path = path.replace("__env__", env.name)
            context["env"] = env
        if app is not None:
            path = path.replace("__app__", app.name)
            context["app"] = app
            context["image"] = spec.image_of(app)
        yield path, context


def _check_output(path: str, text: str) -> None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or any(p in path for p in _LOOPS):
        raise ScaffoldError(f"template path {path!r} would leave the target folder")
    if pure.suffix in (".yaml", ".yml"):
        try:
            list(yaml.safe_load_all(text))
        except yaml.YAMLError as err:
            raise ScaffoldError(f"{path}: the rendered file is not valid YAML: "
                                f"{yaml_problem(err)}") from err


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Plan:
    """What writing would do, per relative path."""

    create: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.create or self.update or self.delete or self.conflicts)


def plan(target: Path, files: Mapping[str, bytes]) -> Plan:
    """Compare the rendered files with `target` and with what was generated there last time."""
    previous = _read_manifest(target)
    result = Plan()
    for rel, data in files.items():
        path = target / rel
        if not path.exists():
            result.create.append(rel)
            continue
        current = path.read_bytes()
        if current == data:
            result.unchanged.append(rel)
        elif previous.get(rel) == _sha(current):
            result.update.append(rel)
        else:
            result.conflicts.append(rel)
    for rel, digest in previous.items():
        path = target / rel
        if rel in files or not path.exists():
            continue
        if _sha(path.read_bytes()) == digest:
            result.delete.append(rel)
        else:
            result.conflicts.append(rel)
    return result


def write(target: Path, files: Mapping[str, bytes], *, force: bool = False) -> Plan:
    """Apply `plan`; raises ScaffoldConflict before writing anything unless `force`."""
    result = plan(target, files)
    if result.conflicts and not force:
        raise ScaffoldConflict(result.conflicts)
    for rel in [*result.create, *result.update, *result.conflicts]:
        if rel not in files:
            (target / rel).unlink()
            continue
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[rel])
    for rel in result.delete:
        (target / rel).unlink()
        _prune_empty_dirs(target, (target / rel).parent)
    manifest = target / MANIFEST
    manifest.parent.mkdir(parents=True, exist_ok=True)
    body = {"version": 1, "files": {rel: _sha(data) for rel, data in files.items()}}
    manifest.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    return result


def _read_manifest(target: Path) -> dict[str, str]:
    path = target / MANIFEST
    if not path.exists():
        return {}
    try:
        body = json.loads(path.read_text())
        return {str(k): str(v) for k, v in body["files"].items()}
    except (ValueError, KeyError, AttributeError, TypeError) as err:
        raise ScaffoldError(f"{MANIFEST}: not a scaffold manifest ({err})") from err


def _prune_empty_dirs(root: Path, directory: Path) -> None:
    while directory != root and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
