"""How Plinth reads Kubernetes YAML: safe types only, with libyaml's parser where PyYAML has it
(ten times quicker on big output), and `=` read as the string it is.

PyYAML resolves a plain `=` to YAML 1.1's "value key" type, which its safe constructors cannot
build, so a document kustomize and kubectl read without a second thought (the enum
`[ '!=', =, =~ ]` of prometheus-operator's CRDs) failed to load. Go's YAML reads it as a
string, and so does this loader.
"""
from __future__ import annotations

import yaml

_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_BASE):  # type: ignore[valid-type,misc]  # the base is chosen at import
    pass


Loader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


def yaml_problem(err: yaml.YAMLError) -> str:
    """A parser's error in one line, where and what, without the source lines PyYAML quotes."""
    mark = getattr(err, "problem_mark", None)
    if isinstance(err, yaml.MarkedYAMLError) and mark is not None:
        what = ", ".join(part for part in (err.context, err.problem) if part)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}"
    return " ".join(str(err).split())
