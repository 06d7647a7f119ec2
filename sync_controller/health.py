"""kstatus-like health of a live object: Current, InProgress or Failed, with a reason.

Rules follow sigs.k8s.io/cli-utils kstatus for the workload kinds and fall back to conditions
(`Ready`, `Stalled`) for custom resources; an object without status rules is Current once it
exists. `assess` reads nothing but the object: why a workload's pods are not ready is
`pod_reasons`' part.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class State(Enum):
    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"


@dataclass(frozen=True)
class Health:
    state: State
    message: str


def _current(message: str = "ready") -> Health:
    return Health(State.CURRENT, message)


def _progress(message: str) -> Health:
    return Health(State.IN_PROGRESS, message)


def assess(obj: dict[str, Any]) -> Health:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return _progress("being deleted")
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return _progress(f"controller has not observed generation {generation} yet")
    rule = _RULES.get(str(obj.get("kind")))
    return rule(obj, status) if rule else _by_conditions(status)


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def _deployment(obj: dict[str, Any], status: dict[str, Any]) -> Health:
    if "observedGeneration" not in status:
        return _progress("rollout not observed yet")
    progressing = _condition(status, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(State.FAILED, progressing.get("message") or "progress deadline exceeded")
    want = int((obj.get("spec") or {}).get("replicas", 1))
    # Pods its ReplicaSet cannot even create (a quota, an admission webhook) leave no pod to
    # ask why: the Deployment's ReplicaFailure condition carries the API server's refusal.
    failure = _condition(status, "ReplicaFailure")
    refused = f": {failure.get('message')}" if failure and failure.get("status") == "True" else ""
    for field, what in (("updatedReplicas", "updated"), ("readyReplicas", "ready"),
                        ("availableReplicas", "available")):
        have = int(status.get(field) or 0)
        if have < want:
            return _progress(f"{have}/{want} {what}{refused}")
    if int(status.get("replicas") or 0) > want:
        return _progress(f"old replicas still terminating ({status.get('replicas')} > {want})")
    return _current(f"{want} replicas available")


def _statefulset(obj: dict[str, Any], status: dict[str, Any]) -> Health:
    if "observedGeneration" not in status:
        return _progress("rollout not observed yet")
    want = int((obj.get("spec") or {}).get("replicas", 1))
    for field, what in (("readyReplicas", "ready"), ("currentReplicas", "at current revision")):
        have = int(status.get(field) or 0)
        if have < want:
            return _progress(f"{have}/{want} {what}")
    if status.get("updateRevision") and status.get("currentRevision") != status.get(
            "updateRevision"):
        return _progress("rolling update in progress")
    return _current(f"{want} replicas ready")


def _daemonset(obj: dict[str, Any], status: dict[str, Any]) -> Health:
    if "observedGeneration" not in status:
        return _progress("rollout not observed yet")
    want = int(status.get("desiredNumberScheduled") or 0)
    for field, what in (("updatedNumberScheduled", "updated"), ("numberAvailable", "available")):
        have = int(status.get(field) or 0)
        if have < want:
            return _progress(f"{have}/{want} {what}")
    return _current(f"{want} pods available")


def _job(obj: dict[str, Any], status: dict[str, Any]) -> Health:
    failed = _condition(status, "Failed")
    if failed and failed.get("status") == "True":
        return Health(State.FAILED, failed.get("message") or "job failed")
    complete = _condition(status, "Complete")
    if complete and complete.get("status") == "True":
        return _current("job complete")
    return _progress("job running")


def _pod(obj: dict[str, Any], status: dict[str, Any]) -> Health:
    phase = status.get("phase")
    if phase == "Succeeded":
        return _current("pod succeeded")
    if phase == "Failed":
        return Health(State.FAILED, status.get("message") or "pod failed")
    ready = _condition(status, "Ready")
    if ready and ready.get("status") == "True":
        return _current("pod ready")
    return _progress(f"pod {phase or 'pending'}")


def _pvc(obj: dict[str, Any], status: dict[str, Any]) -> Health:
    phase = status.get("phase")
    return _current("bound") if phase == "Bound" else _progress(f"claim {phase or 'pending'}")


def _crd(obj: dict[str, Any], status: dict[str, Any]) -> Health:
    established = _condition(status, "Established")
    if established and established.get("status") == "True":
        return _current("established")
    return _progress("not established yet")


def _by_conditions(status: dict[str, Any]) -> Health:
    stalled = _condition(status, "Stalled")
    if stalled and stalled.get("status") == "True":
        return Health(State.FAILED, stalled.get("message") or "stalled")
    ready = _condition(status, "Ready")
    if ready is None:
        return _current("exists")
    if ready.get("status") == "True":
        return _current(ready.get("message") or "ready")
    return _progress(ready.get("message") or "not ready")


_RULES = {
    "Deployment": _deployment,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "ReplicaSet": _deployment,
    "Job": _job,
    "Pod": _pod,
    "PersistentVolumeClaim": _pvc,
    "CustomResourceDefinition": _crd,
}
