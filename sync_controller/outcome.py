"""How one reconcile of any kind ends: a `Result` when it succeeds, a typed error when it does
not (as Flux's runtime does: stalling, waiting, or generic).

Reconcilers only return or raise; the operator alone turns either into the status conditions,
an Event, the metrics and the next run, so every kind, and every error nobody expected, is
reported the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from sync_controller import conditions as cond

UNEXPECTED = "ReconciliationFailed"


@dataclass(frozen=True)
class Result:
    """A reconcile that did its job: Ready=True with `reason` and `message`, again after
    `requeue_after` seconds. `changed` says it changed something (objects, a revision, tags, a
    push); `applied` and `pruned` count a Kustomization's objects, `rendered` says whether it
    ran kustomize (not when nothing it reads changed)."""

    reason: str
    message: str
    requeue_after: float
    changed: bool = False
    revision: str | None = None
    applied: int = 0
    pruned: int = 0
    rendered: bool = False


class ReconcileError(Exception):
    """A failure with the reason the Ready condition carries; retried at the retry interval."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Stalling(ReconcileError):
    """Retrying cannot help: only a new commit or a spec change can (Stalled=True)."""


class Waiting(ReconcileError):
    """Something it needs is not there or not ready yet; `retry_after` overrides the retry
    interval when it comes sooner (an Event of type Normal, not Warning)."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(reason, message)
        self.retry_after = retry_after


def failure_of(err: BaseException) -> ReconcileError:
    """Any error as a ReconcileError: an unexpected one keeps its type in the message, since
    the message is all a user sees of it."""
    if isinstance(err, ReconcileError):
        return err
    text = str(err) or "no detail"
    return ReconcileError(UNEXPECTED, f"unexpected error: {type(err).__name__}: {text}")


def write_success(status: dict[str, object], generation: int, result: Result) -> None:
    conditions = status.get("conditions") or []
    assert isinstance(conditions, list)
    status["conditions"] = cond.remove_condition(
        cond.remove_condition(conditions, cond.RECONCILING), cond.STALLED)
    cond.set_ready(status, True, result.reason, result.message, generation)


def write_failure(status: dict[str, object], generation: int, failed: ReconcileError) -> None:
    """Ready=False with the reason, Reconciling cleared, Stalled only while stalling."""
    conditions = status.get("conditions") or []
    assert isinstance(conditions, list)
    conditions = cond.remove_condition(conditions, cond.RECONCILING)
    if isinstance(failed, Stalling):
        conditions = cond.set_condition(conditions, cond.STALLED, True, failed.reason,
                                        failed.message, generation)
    else:
        conditions = cond.remove_condition(conditions, cond.STALLED)
    status["conditions"] = conditions
    cond.set_ready(status, False, failed.reason, failed.message, generation)
