"""Waiting for a deployment: until the cluster has applied a git revision and is healthy.

What a pipeline calls between "merged" and its post-deployment tests. The answer comes from
the Kustomizations' status when the cluster is reachable, else from the commit statuses the
controller posts on the forge (the GitOps connector). Either way each watched thing is judged
on its own: done, failed (with the reason the controller wrote), or still waiting (with what
for); one failure ends the wait at once, since a pipeline has nothing to gain from waiting out
the timeout on a commit that cannot apply.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from plinth.forge import CombinedStatus, StatusState
from plinth.reconcile_request import HANDLED_AT

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DEFAULT_NAMESPACE = "plinth-system"  # where `plinth new` puts a cluster's Kustomizations


class Verdict(StrEnum):
    DONE = "done"
    FAILED = "failed"
    WAITING = "waiting"


@dataclass(frozen=True)
class Check:
    """One watched thing (a Kustomization `ns/name`, or a status context) and its state."""

    what: str
    verdict: Verdict
    detail: str

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration ("90s", "5m", "1h30m"), as Kustomizations write them."""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    return sum(float(number) * _UNIT[unit] for number, unit in parts)


def revision_matches(revision: str, sha: str) -> bool:
    """`main@sha1:<sha>` (or a bare SHA) names commit `sha`, given whole or abbreviated."""
    commit = revision.rsplit(":", 1)[-1].rsplit("@", 1)[-1].lower()
    return len(sha) >= 7 and bool(commit) and commit.startswith(sha.lower())


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return {}


def judge_kustomization(obj: dict[str, Any], sha: str) -> Check:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    what = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    applied = str(status.get("lastAppliedRevision") or "")
    attempted = str(status.get("lastAttemptedRevision") or "")
    ready, stalled = _condition(status, "Ready"), _condition(status, "Stalled")
    reconciling = _condition(status, "Reconciling").get("status") == "True"
    on_revision = revision_matches(attempted, sha)
    if revision_matches(applied, sha) and ready.get("status") == "True":
        return Check(what, Verdict.DONE, f"applied {applied} and Ready")
    failed = stalled.get("status") == "True" or \
        (ready.get("status") == "False" and not reconciling)
    if on_revision and failed:
        why = ready if ready.get("status") == "False" else stalled
        return Check(what, Verdict.FAILED, f"{why.get('reason', '')}: {why.get('message', '')}")
    state = f"Ready={ready.get('status', 'Unknown')}" + \
        (f" ({ready.get('reason')})" if ready.get("reason") else "")
    return Check(what, Verdict.WAITING, f"last applied {applied or 'nothing'}, {state}")


def judge_request(obj: dict[str, Any], token: str) -> Check:
    """A reconcile request (`plinth reconcile`): done once the controller handled `token` and
    the object is Ready; failed when it handled it and is not."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    what = f"{obj.get('kind', '')} {meta.get('namespace', '')}/{meta.get('name', '')}"
    ready, stalled = _condition(status, "Ready"), _condition(status, "Stalled")
    if status.get(HANDLED_AT) != token:
        return Check(what, Verdict.WAITING, "the controller has not handled the request yet")
    if ready.get("status") == "True":
        return Check(what, Verdict.DONE, ready.get("message") or "Ready")
    if stalled.get("status") == "True" or (
            ready.get("status") == "False"
            and _condition(status, "Reconciling").get("status") != "True"):
        why = ready if ready.get("status") == "False" else stalled
        return Check(what, Verdict.FAILED, f"{why.get('reason', '')}: {why.get('message', '')}")
    return Check(what, Verdict.WAITING, f"{ready.get('reason') or 'reconciling'}: "
                 f"{ready.get('message', '')}")


def kustomization_checks(objects: Sequence[dict[str, Any]], names: Sequence[str],
                         sha: str) -> list[Check]:
    """A check per named Kustomization (`ns/name`, or `name` in plinth-system), or per
    Kustomization in the cluster when none is named."""
    found = {f"{(o.get('metadata') or {}).get('namespace', '')}/"
             f"{(o.get('metadata') or {}).get('name', '')}": o for o in objects}
    if not names:
        if not found:
            return [Check("cluster", Verdict.WAITING, "no Kustomization yet")]
        return [judge_kustomization(o, sha) for _, o in sorted(found.items())]
    keys = [n if "/" in n else f"{DEFAULT_NAMESPACE}/{n}" for n in names]
    return [judge_kustomization(found[k], sha) if k in found
            else Check(k, Verdict.WAITING, "no such Kustomization (yet)") for k in keys]


def status_checks(combined: CombinedStatus, contexts: Sequence[str]) -> list[Check]:
    """A check per commit status context: success is done, failure or error failed."""
    checks = []
    for context in contexts:
        status = combined.of(context)
        if status is None:
            checks.append(Check(context, Verdict.WAITING, "no status yet"))
        elif status.state is StatusState.SUCCESS:
            checks.append(Check(context, Verdict.DONE, status.description or "success"))
        elif status.state in (StatusState.FAILURE, StatusState.ERROR):
            checks.append(Check(context, Verdict.FAILED,
                                f"{status.state.value}: {status.description}"))
        else:
            checks.append(Check(context, Verdict.WAITING,
                                f"{status.state.value}: {status.description}"))
    return checks


def wait(poll: Callable[[], list[Check]], timeout: float, *, every: float = 1.0,
         clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Poll until every check is done (ok), one failed, or `timeout` seconds passed."""
    deadline = clock() + timeout
    while True:
        checks = poll()
        failed = [c for c in checks if c.verdict is Verdict.FAILED]
        if failed:
            return Outcome(False, "; ".join(str(c) for c in failed))
        waiting = [c for c in checks if c.verdict is not Verdict.DONE]
        if not waiting:
            return Outcome(True, "; ".join(str(c) for c in checks))
        if clock() >= deadline:
            return Outcome(False, f"timed out after {timeout:g}s waiting for "
                           + "; ".join(str(c) for c in waiting))
        sleep(min(every, max(0.0, deadline - clock())))
