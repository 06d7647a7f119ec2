"""Asking the controller for a reconcile now, as `flux reconcile` does: a person (or `plinth
reconcile`) sets an annotation to a new value, the controller reconciles the object at once and
writes the value it handled into the object's status, beside the outcome. One definition for
both sides."""
from __future__ import annotations

from typing import Any

REQUESTED_AT = "reconcile.plinth.dev/requestedAt"
HANDLED_AT = "lastHandledReconcileAt"  # in status


def requested(obj: dict[str, Any]) -> str | None:
    """The request an object carries (any new value is a new request), if any."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT)
    return str(value) if value else None
