"""The typed API and the CRDs declare the same fields, required fields, defaults and enums, so
the API server and the controller never disagree on what a spec means."""
from __future__ import annotations

from typing import Any

import pytest

from plinth.schemas import load_crds
from sync_controller.api import SPECS, spec_of
from sync_controller.outcome import Stalling


def _crd_spec_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for crd in load_crds():
        (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
        schemas[crd["spec"]["names"]["kind"]] = \
            version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schemas


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**_resolve(defs[node["$ref"].rsplit("/", 1)[1]], defs), **siblings}
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        return {**_resolve(options[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
    return node


def _meaningful(value: Any) -> Any:
    """Nones and empty containers say nothing (the CRD leaves such defaults out)."""
    if isinstance(value, dict):
        value = {k: _meaningful(v) for k, v in value.items()}
        value = {k: v for k, v in value.items() if v is not None}
    return value if value not in ({}, []) else None


def _enum(node: dict[str, Any]) -> list[Any] | None:
    return [node["const"]] if "const" in node else node.get("enum")


def _compare(crd: dict[str, Any], model: dict[str, Any], defs: dict[str, Any],
             where: str) -> list[str]:
    model = _resolve(model, defs)
    problems = []
    if _meaningful(crd.get("default")) != _meaningful(model.get("default")):
        problems.append(f"{where}: default {crd.get('default')!r} != {model.get('default')!r}")
    if crd.get("enum") != _enum(model):
        problems.append(f"{where}: enum {crd.get('enum')} != {_enum(model)}")
    if "items" in crd:
        problems += _compare(crd["items"], model.get("items", {}), defs, f"{where}[]")
    if "properties" in crd and "properties" in model:  # else opaque to the model by design
        if set(crd["properties"]) != set(model["properties"]):
            problems.append(f"{where}: fields {sorted(crd['properties'])} != "
                            f"{sorted(model['properties'])}")
        if set(crd.get("required", [])) != set(model.get("required", [])):
            problems.append(f"{where}: required {crd.get('required')} != "
                            f"{model.get('required')}")
        for name in set(crd["properties"]) & set(model["properties"]):
            problems += _compare(crd["properties"][name], model["properties"][name], defs,
                                 f"{where}.{name}")
    return problems


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_model_and_crd_agree(kind: str) -> None:
    schema = SPECS[kind].model_json_schema(by_alias=True)
    crd = _crd_spec_schemas()[kind]
    assert _compare(crd, schema, schema.get("$defs", {}), f"{kind}.spec") == []


def test_the_comparison_finds_a_disagreement() -> None:
    crd = _crd_spec_schemas()["Kustomization"]
    changed = {**crd, "properties": {**crd["properties"],
                                     "prune": {"type": "boolean", "default": False}}}
    schema = SPECS["Kustomization"].model_json_schema(by_alias=True)
    assert _compare(changed, schema, schema["$defs"], "k") == ["k.prune: default False != True"]


def test_an_invalid_spec_names_every_field() -> None:
    with pytest.raises(Stalling) as err:
        spec_of({"kind": "Kustomization", "spec": {"sourceRef": {}, "path": "./a",
                                                   "interval": "soon"}})
    assert err.value.reason == "InvalidSpec"
    assert "spec.interval: 'soon' is not a duration" in err.value.message
    assert "spec.sourceRef.name: Field required" in err.value.message
