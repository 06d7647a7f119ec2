"""Validate rendered objects against the Kubernetes OpenAPI schemas and CRD schemas.

kustomize happily renders wrong field types and unknown fields; the API server would reject or
silently prune them. Checking offline, strictly (unknown fields are errors, as with
`kubectl --validate=strict`), lets `plinth render`/`validate` fail a pull request instead.
"""
from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from plinth.kustomize_refs import MAX_FILE_BYTES, SourceError, check_yaml
from plinth.manifest_yaml import Loader
from plinth.render import origin_of


KUBERNETES_VERSION = "1.33.0"


class SchemasNotInstalled(Exception):
    """Package data validation reads is missing: the controller's CRD manifests (of
    `sync_controller`) or kubernetes-validate's schema files."""


@dataclass(frozen=True)
class Problem:
    where: str  # the file the object came from, or the rendered path
    obj: str  # Kind namespace/name
    message: str
    # (apiVersion, kind) when no schema is known for the object's kind (--skip-unknown skips it)
    unknown: tuple[str, str] | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.obj}: {self.message}"


def describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '?')} {ns}{meta.get('name', '?')}"


def plinth_crd_files() -> list[Traversable]:
    """The controller's CRD manifests where `sync_controller` is installed (checkout or wheel).

    Reading them imports only that package's `__init__` (a docstring), none of its modules.
    """
    folder = resources.files("sync_controller") / "crds"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")),
                   key=lambda f: f.name) if folder.is_dir() else []
    if not files:
        raise SchemasNotInstalled(f"no Plinth CRDs in {folder}: is plinth installed without its "
                               "package data (sync_controller/crds/*.yaml)?")
    return files


def load_crds(paths: Iterable[Path] = ()) -> list[dict[str, Any]]:
    """The Plinth CRDs, plus CRDs from `paths` (files or folders of YAML). The Plinth CRDs are
    parsed once per process (`plinth render` parses them while kustomize runs) and shared:
    change a copy of one, never the one given."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.y*ml")) if path.is_dir() else [path])
    return [*_plinth_crds(), *_crds_in(files)]


@functools.cache
def _plinth_crds() -> tuple[dict[str, Any], ...]:
    return tuple(_crds_in(plinth_crd_files()))


def _crds_in(files: Iterable[Path | Traversable]) -> list[dict[str, Any]]:
    crds = []
    for file in files:
        for doc in yaml.load_all(file.read_text(), Loader=Loader):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                crds.append(doc)
    return crds


class SchemaSet:
    """Looks up a schema per apiVersion/kind: CRDs first, then the built-in Kubernetes kinds.

    The built-in schemas are the strict JSON schemas that the kubernetes-validate package ships
    (data only): its own `validate` parses their 1.4 MB of shared definitions again for every
    object, so each file is read once per process and each kind's validator is reused.
    Validators are jsonschema-rs's (compiled schemas: 300 objects take a millisecond, where the
    pure-Python jsonschema took a quarter of a second), offline: a schema's `$ref` reaches
    neither the network nor the file system, whatever a repository's CRD says.
    """

    def __init__(self, crds: Iterable[dict[str, Any]],
                 kubernetes_version: str = KUBERNETES_VERSION) -> None:
        self.kubernetes_version = kubernetes_version
        self._crd: dict[tuple[str, str], dict[str, Any]] = {}
        self._crd_validators: dict[tuple[str, str], jsonschema_rs.Validator | str] = {}
        for crd in crds:
            self.add_crd(crd)

    def add_crd(self, crd: dict[str, Any]) -> None:
        """Each version's schema; parts not shaped as a CRD's are passed over (the CRD object
        itself is validated as a built-in kind, which names what is wrong with it)."""
        spec = _mapping(crd.get("spec"))
        group, kind = spec.get("group"), _mapping(spec.get("names")).get("kind")
        if not isinstance(group, str) or not isinstance(kind, str):
            return
        versions = spec.get("versions")
        for version in versions if isinstance(versions, list) else ():
            version = _mapping(version)
            schema = _mapping(version.get("schema")).get("openAPIV3Schema")
            if isinstance(version.get("name"), str) and isinstance(schema, dict):
                key = (f"{group}/{version['name']}", kind)
                self._crd[key] = schema  # made strict when an object of it is validated
                self._crd_validators.pop(key, None)

    def validate(self, obj: dict[str, Any], where: str) -> list[Problem]:
        name = describe(obj)
        if not isinstance(obj.get("apiVersion"), str) or not isinstance(obj.get("kind"), str):
            return [Problem(where, name, "apiVersion and kind must be strings")]
        key = (obj["apiVersion"], obj["kind"])
        validator = self._crd_validator(key) if key in self._crd else \
            _builtin_validator(self.kubernetes_version, *key)
        if validator is None and _builtin_group(self.kubernetes_version, key[0]):
            return [Problem(where, name, _not_served(self.kubernetes_version, *key))]
        if validator is None:
            return [Problem(where, name,
                            f"no schema for {obj['apiVersion']} {obj['kind']}: not a Kubernetes "
                            "kind and no CRD for it is known in the repository (add it with "
                            "--crd, or --skip-unknown)", unknown=key)]
        if isinstance(validator, str):
            return [Problem(where, name, validator)]
        # Two paths first differ below one node, so there both are keys or both are indexes.
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.instance_path))
        return [Problem(where, name, f"{_path(err.instance_path)}: {err.message}")
                for err in errors]

    def _crd_validator(self, key: tuple[str, str]) -> jsonschema_rs.Validator | str:
        """The CRD's validator, or why its schema cannot validate anything (a CRD in a
        repository is input like any other file)."""
        if key not in self._crd_validators:
            try:
                self._crd_validators[key] = jsonschema_rs.Draft202012Validator(
                    _strict(self._crd[key]), validate_formats=False, offline=True,
                    pattern_options=jsonschema_rs.RegexOptions())
            except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError,
                    ValueError) as err:
                # the first line says what; the rest repeats the schema and the instance
                why = (str(err).splitlines() or [type(err).__name__])[0]
                why = why if len(why) <= 300 else f"{why[:300]}..."
                self._crd_validators[key] = (f"the CRD schema of {key[0]} {key[1]} is not a "
                                             f"usable JSON schema: {why}")
        return self._crd_validators[key]


@functools.cache
def _builtin_validator(kubernetes_version: str, api_version: str, kind: str
                       ) -> jsonschema_rs.Validator | None:
    """The validator of a built-in kind, made once per process: every SchemaSet (a render, each
    root of `plinth validate`) shares it. None for a kind kubernetes-validate has no file for."""
    # rbac.authorization.k8s.io/v1 -> rbac-v1, the package's file naming
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    name = f"{kind.lower()}-{group_version}.json"
    if "/" in name:  # not a file of the package's folder, whatever it names
        return None
    schema = _builtin_file(kubernetes_version, name)
    if schema is None:
        return None
    return jsonschema_rs.Draft202012Validator(
        schema, registry=_definitions(kubernetes_version), validate_formats=False, offline=True,
        pattern_options=jsonschema_rs.RegexOptions())


def warm(kubernetes_version: str = KUBERNETES_VERSION) -> None:
    """Parse the shared definitions and the Plinth CRDs now: `plinth render` calls it on
    another thread while kustomize runs. A missing package is said by the validation that
    follows, not here."""
    try:
        _definitions(kubernetes_version)
        _plinth_crds()
    except SchemasNotInstalled:
        pass


@functools.cache
def _definitions(kubernetes_version: str) -> jsonschema_rs.Registry:
    """The 1.4 MB of definitions every built-in schema refers to, parsed once."""
    definitions = _definitions_document(kubernetes_version)
    return jsonschema_rs.Registry([(definitions["$id"], definitions)])


@functools.cache
def _definitions_document(kubernetes_version: str) -> dict[str, Any]:
    definitions = _builtin_file(kubernetes_version, "_definitions.json")
    if not isinstance(definitions, dict):
        raise SchemasNotInstalled(f"the kubernetes-validate package has no schemas of "
                                  f"Kubernetes {kubernetes_version}")
    return definitions


@functools.cache
def _builtin_kinds(kubernetes_version: str) -> dict[str, frozenset[str]]:
    """Kind -> the apiVersions Kubernetes serves it as, by the definitions' own marks."""
    served: dict[str, set[str]] = {}
    for definition in _definitions_document(kubernetes_version).get("$defs", {}).values():
        for gvk in definition.get("x-kubernetes-group-version-kind") or []:
            group, version = gvk.get("group"), gvk.get("version")
            served.setdefault(gvk.get("kind"), set()).add(
                f"{group}/{version}" if group else version)
    return {kind: frozenset(versions) for kind, versions in served.items()}


def _builtin_group(kubernetes_version: str, api_version: str) -> bool:
    """Whether `api_version` is in a group only Kubernetes itself can serve: one without a dot
    (no CRD may have such a group, `extensions` and the core group among them), or one of the
    groups its definitions name."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group in _builtin_groups(kubernetes_version)


@functools.cache
def _builtin_groups(kubernetes_version: str) -> frozenset[str]:
    return frozenset(version.rpartition("/")[0]
                     for versions in _builtin_kinds(kubernetes_version).values()
                     for version in versions)


def _not_served(kubernetes_version: str, api_version: str, kind: str) -> str:
    """Why an object of a built-in group without a schema is an error, not an unknown kind:
    the API server would refuse it, whatever CRDs there are (a removed API, say)."""
    served = sorted(v for v in _builtin_kinds(kubernetes_version).get(kind, ())
                    if _builtin_validator(kubernetes_version, v, kind) is not None)
    where = f"; it serves {kind} as {', '.join(served)}" if served else ""
    minor = ".".join(kubernetes_version.split(".")[:2])
    return f"Kubernetes {minor} does not serve {api_version} {kind}{where}"


def _builtin_file(kubernetes_version: str, name: str) -> Any:
    """A schema file of kubernetes-validate, found without importing the package (its
    `__init__` loads code this module does not use)."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / "kubernetes-json-schema" / \
        f"v{kubernetes_version}-local-strict"
    try:
        return json.loads((folder / name).read_bytes())
    except FileNotFoundError:
        return None


def validate_objects(objects: list[dict[str, Any]], rendered_path: str,
                     crds: Iterable[dict[str, Any]] = ()) -> list[Problem]:
    """Every problem of every object; CRDs in the same render count (CRD + CR in one commit)."""
    schemas = SchemaSet([*crds, *(o for o in objects
                                  if o.get("kind") == "CustomResourceDefinition")])
    problems: list[Problem] = []
    for obj in objects:
        clean = _without_origin(obj)
        origin = origin_of(obj)
        where = origin or rendered_path  # render already made origins repo-relative
        problems.extend(schemas.validate(clean, where))
    return problems


def repository_crds(root: Path, kinds: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """CRDs for `kinds` ((apiVersion, kind) pairs) written in YAML files of the work tree at
    `root` (hidden folders aside): a repository that installs an operator carries the schemas
    of its kinds. The first CRD that serves a pair is its schema.

    Only documents that are a CRD naming one of the kinds are parsed, until every pair is
    served: bundles of CRDs run to megabytes (kubeflow's manifests hold 23 MB in 59 files,
    copies of Istio's among them, 13 s to parse whole, for every render)."""
    wanted = set(kinds)
    if not wanted:
        return []
    # `kind: Widget` (names.kind) in any style; a literal start keeps the search quick
    names = re.compile(r"kind[\"']?\s*:\s*[\"']?(?:%s)[\"']?(?=[\s,}]|$)" % "|".join(
        re.escape(kind) for kind in sorted({kind for _, kind in wanted})), re.MULTILINE)
    crds: list[dict[str, Any]] = []
    for path in _crd_files(root):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        for document in _DOCUMENT_START.split(text):
            if "CustomResourceDefinition" not in document or not names.search(document):
                continue
            try:
                check_yaml(document, path.name)
                docs = list(yaml.load_all(document, Loader=Loader))
            except (yaml.YAMLError, SourceError):
                continue  # not a readable manifest: it holds no schema anyone can use
            for doc in docs:
                served = _served(doc) & wanted if isinstance(doc, dict) else set()
                if served:
                    crds.append(doc)
                    wanted -= served
            if not wanted:
                return crds
    return crds


def _served(crd: dict[str, Any]) -> set[tuple[str, str]]:
    """The (apiVersion, kind) pairs a CRD gives a schema for."""
    spec = _mapping(crd.get("spec"))
    kind = _mapping(spec.get("names")).get("kind")
    if crd.get("kind") != "CustomResourceDefinition" or not isinstance(kind, str):
        return set()
    versions = spec.get("versions")
    return {(f"{spec.get('group')}/{_mapping(v).get('name')}", kind)
            for v in (versions if isinstance(versions, list) else [])}


# A document starts at `---` at the start of a line: inside a block scalar (always indented)
# it cannot occur, so a stream splits there into its documents without being parsed.
_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE)


@functools.lru_cache(maxsize=4)
def _crd_files(root: Path) -> tuple[Path, ...]:
    """The YAML files under `root` (hidden folders aside) that mention a CRD, found once per
    process: `plinth validate` asks for every folder it renders."""
    found: list[Path] = []
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(top) / name
            if not name.endswith((".yaml", ".yml")) or not path.is_file() or \
                    path.stat().st_size > MAX_FILE_BYTES:
                continue
            try:
                if "CustomResourceDefinition" in path.read_text():
                    found.append(path)
            except (OSError, UnicodeDecodeError):
                continue
    return tuple(sorted(found))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _without_origin(obj: dict[str, Any]) -> dict[str, Any]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if "config.kubernetes.io/origin" not in annotations:
        return obj
    clean = copy.deepcopy(obj)
    del clean["metadata"]["annotations"]["config.kubernetes.io/origin"]
    if not clean["metadata"]["annotations"]:
        del clean["metadata"]["annotations"]
    return clean


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(object)"


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's OpenAPI v3 schema as the strict JSON Schema (2020-12) the API server applies.

    Unknown fields, which the API server prunes, are errors. OpenAPI's own words are said in
    JSON Schema's: `exclusiveMinimum: true` beside `minimum: 1` is `exclusiveMinimum: 1`, and
    `nullable: true` lets null through. Patterns are Go's (RE2) syntax, as the validators'
    RegexOptions read them: `(?i)` and `\\z` are valid there, not in ECMA's."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if isinstance(node.get(exclusive), bool) and node.pop(exclusive) and bound in node:
                node[exclusive] = node.pop(bound)
        if node.get("nullable") is True:
            if isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            if isinstance(node.get("enum"), list) and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        if (node.get("type") == "object" and "properties" in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
                and "additionalProperties" not in node):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties"):
            children = node.get(key)
            for child in children.values() if isinstance(children, dict) else ():
                walk(child)
        for key in ("items", "additionalProperties", "not"):
            walk(node.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            children = node.get(key)
            for child in children if isinstance(children, list) else ():
                walk(child)

    walk(schema)
    # apiVersion, kind and metadata are always allowed at the root, whatever the CRD lists.
    # (A `properties` that is no mapping is left for the validator to call the schema unusable.)
    props = schema.setdefault("properties", {})
    if isinstance(props, dict):
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    return schema
