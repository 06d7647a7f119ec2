"""The typed configuration of a stack: the `plinth:*` keys of `stacks/Pulumi.<stack>.yaml`.

One model for the Pulumi program and the CLI (`plinth diff --stack`). A wrong type, unknown key
or missing value fails with the file, the key and what was expected, before anything else runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from plinth.repospec import RepoSpec, Strict

NAMESPACE = "plinth"


class StackConfigError(Exception):
    """The stack configuration is missing or invalid; the message names file and key."""


class StackConfig(Strict):
    gitops: RepoSpec

    @classmethod
    def from_keys(cls, values: dict[str, Any], source: str) -> StackConfig:
        """From `{key: value}` of the `plinth` namespace (keys without the `plinth:` prefix)."""
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            problems = "; ".join(
                f"{NAMESPACE}:{'.'.join(str(p) for p in e['loc'])}"
                f"{'' if e['type'] == 'missing' else '=' + repr(e.get('input'))}: {e['msg']}"
                for e in err.errors())
            raise StackConfigError(f"{source}: {problems}") from None


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / "stacks" / f"Pulumi.{stack}.yaml"


def load_stack(project_dir: Path, stack: str) -> StackConfig:
    path = stack_file(project_dir, stack)
    if not path.exists():
        raise StackConfigError(f"{path}: no such stack file (stack {stack!r})")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise StackConfigError(f"{path}: not valid YAML: {err}") from None
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise StackConfigError(f"{path}: config: expected a mapping")
    prefix = f"{NAMESPACE}:"
    values = {k[len(prefix):]: v for k, v in config.items() if str(k).startswith(prefix)}
    return StackConfig.from_keys(values, str(path))
