"""Pure rules of the controller: durations, inventory ids and stale sets, health, conditions."""
from __future__ import annotations

import pytest

from sync_controller.conditions import set_condition
from sync_controller.durations import DurationError, parse_duration
from sync_controller.health import State, assess
from sync_controller.inventory import ObjectRef, from_status, stale, to_status


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400),
                                          ("500ms", 0.5), ("1.5s", 1.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "spec.interval") == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "5d", "1h-2m"])
def test_bad_duration_names_the_field(text: str) -> None:
    with pytest.raises(DurationError, match="spec.interval"):
        parse_duration(text, "spec.interval")


def test_inventory_round_trip_and_stale_by_id() -> None:
    deploy = ObjectRef.of({"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "web", "namespace": "apps"}})
    role = ObjectRef.of({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                         "metadata": {"name": "reader"}})
    assert deploy.id == "apps_web_apps_Deployment"
    assert role.id == "_reader_rbac.authorization.k8s.io_ClusterRole"
    assert from_status({"inventory": to_status([deploy, role])}) == sorted([deploy, role])
    newer = ObjectRef("apps", "Deployment", "apps", "web", "v2")
    assert stale([deploy, role], [newer]) == [role]  # a version bump is no prune


def _deployment(want: int, **status: int) -> dict[str, object]:
    return {"kind": "Deployment", "metadata": {"generation": 2},
            "spec": {"replicas": want}, "status": {"observedGeneration": 2, **status}}


def test_deployment_health() -> None:
    assert assess(_deployment(2, updatedReplicas=2, readyReplicas=2, availableReplicas=2,
                              replicas=2)).state is State.CURRENT
    assert assess(_deployment(2, updatedReplicas=2, readyReplicas=1,
                              availableReplicas=1)).state is State.IN_PROGRESS
    stale_gen = _deployment(0)
    stale_gen["status"] = {"observedGeneration": 1}
    assert assess(stale_gen).state is State.IN_PROGRESS
    deadline = _deployment(1)
    deadline["status"] = {"observedGeneration": 2, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}
    assert assess(deadline).state is State.FAILED


def test_job_and_custom_resource_health() -> None:
    def job(condition: str) -> dict[str, object]:
        return {"kind": "Job", "status": {"conditions": [{"type": condition,
                                                          "status": "True"}]}}
    assert assess(job("Complete")).state is State.CURRENT
    assert assess(job("Failed")).state is State.FAILED
    assert assess({"kind": "Job", "status": {}}).state is State.IN_PROGRESS
    widget = {"kind": "Widget", "status": {"conditions": [{"type": "Ready", "status": "False",
                                                           "message": "warming up"}]}}
    assert assess(widget).message == "warming up"
    assert assess({"kind": "Widget"}).state is State.CURRENT  # no status rules: exists


def test_transition_time_moves_only_when_status_flips() -> None:
    first = set_condition([], "Ready", False, "Progressing", "starting", 1)
    first[0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    same = set_condition(first, "Ready", False, "Failed", "still not", 2)
    assert same[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert same[0]["observedGeneration"] == 2
    flipped = set_condition(same, "Ready", True, "Succeeded", "ok", 2)
    assert flipped[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
