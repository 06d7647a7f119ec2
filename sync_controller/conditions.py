"""Standard Kubernetes conditions (`Ready`, `Reconciling`, `Stalled`) kept in a status."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[dict[str, Any]], type_: str, status: bool, reason: str,
                  message: str, generation: int) -> list[dict[str, Any]]:
    """A new list with `type_` set; lastTransitionTime moves only when the status flips."""
    value = "True" if status else "False"
    old = next((c for c in conditions if c.get("type") == type_), None)
    since = old["lastTransitionTime"] if old and old.get("status") == value and \
        old.get("lastTransitionTime") else now()
    new = {"type": type_, "status": value, "reason": reason, "message": message[:32768],
           "observedGeneration": generation, "lastTransitionTime": since}
    return [c for c in conditions if c.get("type") != type_] + [new]


def set_ready(status: dict[str, Any], ready: bool, reason: str, message: str,
              generation: int) -> None:
    """The usual end of a reconcile: the Ready condition, for the generation it looked at."""
    status["observedGeneration"] = generation
    status["conditions"] = set_condition(status.get("conditions") or [], READY, ready, reason,
                                         message, generation)


def remove_condition(conditions: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [c for c in conditions if c.get("type") != type_]


def get_condition(status: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for condition in (status or {}).get("conditions") or []:
        if condition.get("type") == type_:
            return dict(condition)
    return None
