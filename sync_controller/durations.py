"""Go-style durations ("1m30s", "500ms"), the form Flux users write in `interval` and `timeout`."""
from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class DurationError(ValueError):
    pass


def parse_duration(text: str, field: str) -> float:
    """Seconds in `text`; `field` (if any) names the spec key in the error a user sees."""
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        where = f"{field}: " if field else ""
        raise DurationError(f"{where}{text!r} is not a duration such as 30s, 5m or 1h30m")
    return sum(float(number) * _UNIT[unit] for number, unit in parts)
