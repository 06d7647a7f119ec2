"""The stack's typed config, read from the Pulumi runtime before any resource is registered.

The model is `plinth.stack_config.StackConfig`, shared with `plinth diff --stack`. Secret keys
are read separately, as secrets, and never enter the model (or an error message).
"""
from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from plinth.stack_config import NAMESPACE, StackConfig

SECRET_KEYS = {"registryPassword", "forgeToken"}


def _value(raw: Any) -> Any:
    if isinstance(raw, str) and raw[:1] in "{[":
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def load() -> StackConfig:
    raw = {**get_config_env(), **CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    values = {key[len(prefix):]: _value(value) for key, value in raw.items()
              if key.startswith(prefix) and key[len(prefix):] not in SECRET_KEYS}
    return StackConfig.from_keys(values, f"stacks/Pulumi.{pulumi.get_stack()}.yaml")


def secret(key: str) -> pulumi.Output[str] | None:
    value = pulumi.Config(NAMESPACE).get_secret(key)
    return value
