"""A string written as a YAML scalar that reads back as that same string: what every edit
of a single value in a YAML file (image setters, promotions, the template's tags) writes."""
from __future__ import annotations

import json

import yaml


def render_scalar(value: str, style: str | None = None) -> str:
    """`value` as a scalar of `style` (None plain, `'` or `"`); plain only while it still
    reads back as that string (a tag like 1.10 would read as a number)."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style is None and _reads_back(value):
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a double-quoted YAML scalar


def _reads_back(value: str) -> bool:
    try:
        return bool(yaml.safe_load(f"[{value}]") == [value])
    except yaml.YAMLError:
        return False
