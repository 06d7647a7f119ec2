"""A workload that is not ready says why in its pods' own words, as `kubectl describe` would:
the image that cannot be pulled, the exit code of a crash loop, the scheduler's refusal; and a
workload stuck that way fails before its timeout.

No kubelet runs here: the tests write pod status through the status subresource as a kubelet
(or the scheduler) would, on the pods kube-controller-manager creates.
"""
from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from sync_controller.health import State, assess
from sync_controller.inventory import ObjectRef
from sync_controller.pod_reasons import (
    MAX_MESSAGE,
    STUCK_AFTER,
    PodReasons,
    most_telling,
    one_line,
    pod_reason,
    pod_selector,
)
from tests.controller.harness import Scenario, wait_for
from tests.gitops_repos import kustomization

IMAGE = "10.244.0.1:5000/plinth/web:9.9.9"


def _pod(name: str = "web-7d9c-abcde", **status: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "apps", "labels": {"app": "web"}},
            "status": {"phase": "Pending", **status}}


def _waiting(reason: str, message: str | None = None, **extra: Any) -> dict[str, Any]:
    waiting = {"reason": reason, **({"message": message} if message else {})}
    return {"name": "web", "image": IMAGE, "ready": False, "restartCount": 0,
            "state": {"waiting": waiting}, **extra}


# Pure: the reason read from a pod.

def test_image_pull_back_off_names_container_and_image() -> None:
    pod = _pod(containerStatuses=[_waiting("ImagePullBackOff",
                                           f'Back-off pulling image "{IMAGE}"')])
    reason = pod_reason(pod)
    assert reason is not None and reason.stuck
    assert str(reason) == (f'pod web-7d9c-abcde container web: ImagePullBackOff: '
                           f'Back-off pulling image "{IMAGE}"')


def test_crash_loop_reports_the_last_exit_not_the_back_off() -> None:
    crashing = _waiting("CrashLoopBackOff", "back-off 40s restarting failed container=web "
                        "pod=web-7d9c-abcde_apps(0f3c)", restartCount=4,
                        lastState={"terminated": {"reason": "Error", "exitCode": 1}})
    reason = pod_reason(_pod(phase="Running", containerStatuses=[crashing]))
    assert reason is not None and reason.stuck
    assert str(reason) == ("pod web-7d9c-abcde container web: CrashLoopBackOff: "
                           "last exit code 1 (Error), restarted 4 times")


def test_oom_killed_between_two_restarts() -> None:
    running = {"name": "web", "ready": False, "restartCount": 1, "state": {"running": {}},
               "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}
    reason = pod_reason(_pod(phase="Running", containerStatuses=[running]))
    assert reason is not None and reason.stuck
    assert str(reason) == ("pod web-7d9c-abcde container web: running, not ready: "
                           "last exit code 137 (OOMKilled), restarted 1 time")


def test_unschedulable_pod_gives_the_scheduler_message() -> None:
    message = "0/3 nodes are available: 3 Insufficient memory."
    pod = _pod(conditions=[{"type": "PodScheduled", "status": "False",
                            "reason": "Unschedulable", "message": message}])
    assert str(pod_reason(pod)) == f"pod web-7d9c-abcde: Unschedulable: {message}"


def test_init_container_config_error_names_the_init_container() -> None:
    pod = _pod(initContainerStatuses=[{**_waiting(
        "CreateContainerConfigError", 'secret "db" not found'), "name": "migrate"}],
        containerStatuses=[_waiting("PodInitializing")])
    assert str(pod_reason(pod)) == ('pod web-7d9c-abcde init container migrate: '
                                    'CreateContainerConfigError: secret "db" not found')


def test_failed_job_pod_gives_the_exit_code_not_the_termination_message() -> None:
    done = {"name": "web", "ready": False, "restartCount": 0, "state": {"terminated": {
        "reason": "Error", "exitCode": 2, "message": "password=hunter2 rejected"}}}
    reason = pod_reason(_pod(phase="Failed", containerStatuses=[done]))
    assert str(reason) == "pod web-7d9c-abcde container web: Error: exit code 2"


def test_evicted_pod() -> None:
    pod = _pod(phase="Failed", reason="Evicted",
               message="The node was low on resource: memory.")
    assert str(pod_reason(pod)) == ("pod web-7d9c-abcde: Evicted: "
                                    "The node was low on resource: memory.")


def test_ready_succeeded_and_terminating_pods_say_nothing() -> None:
    ready = _pod(phase="Running", conditions=[{"type": "Ready", "status": "True"}])
    leaving = _pod(containerStatuses=[_waiting("ErrImagePull", "not found")])
    leaving["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert pod_reason(ready) is None
    assert pod_reason(_pod(phase="Succeeded")) is None
    assert pod_reason(leaving) is None


def test_a_pod_with_nothing_to_say_gives_its_phase() -> None:
    assert str(pod_reason(_pod())) == "pod web-7d9c-abcde: Pending"
    assert str(pod_reason(_pod(containerStatuses=[_waiting("ContainerCreating")]))) == \
        "pod web-7d9c-abcde container web: ContainerCreating"


def test_the_most_telling_pod_wins() -> None:
    starting = _pod("web-a", containerStatuses=[_waiting("ContainerCreating")])
    failing = _pod("web-b", containerStatuses=[_waiting("ErrImagePull", "not found")])
    ready = _pod("web-c", phase="Running", conditions=[{"type": "Ready", "status": "True"}])
    assert str(most_telling([ready, starting, failing])) == \
        "pod web-b container web: ErrImagePull: not found"
    assert most_telling([ready]) is None


def test_messages_are_one_bounded_line_without_url_credentials() -> None:
    message = ("failed to pull\n\t image: GET https://robot:s3cret@registry.example/v2/:"
               + " unauthorized" * 100)
    text = one_line(message)
    assert "\n" not in text and "s3cret" not in text and "https://***@registry" in text
    assert len(text) == MAX_MESSAGE and text.endswith("…")
    reason = pod_reason(_pod(containerStatuses=[_waiting("ErrImagePull", message)]))
    assert reason is not None and len(str(reason)) < MAX_MESSAGE + 80


@pytest.mark.parametrize("api_version,kind", [
    ("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"), ("batch/v1", "Job")])
def test_workloads_select_their_pods(api_version: str, kind: str) -> None:
    workload = {"apiVersion": api_version, "kind": kind, "spec": {"selector": {
        "matchLabels": {"app": "web", "tier": "front"},
        "matchExpressions": [{"key": "track", "operator": "In", "values": ["a", "b"]},
                             {"key": "canary", "operator": "DoesNotExist"}]}}}
    assert pod_selector(workload) == "app=web,tier=front,track in (a,b),!canary"


def test_no_pods_to_look_at_for_other_kinds_or_an_empty_selector() -> None:
    assert pod_selector({"apiVersion": "v1", "kind": "Service",
                         "spec": {"selector": {"app": "web"}}}) is None
    assert pod_selector({"apiVersion": "example.com/v1", "kind": "Deployment",
                         "spec": {"selector": {"matchLabels": {"app": "web"}}}}) is None
    assert pod_selector({"apiVersion": "apps/v1", "kind": "Deployment",
                         "spec": {"selector": {}}}) is None


class _Pods:
    """The one call PodReasons makes: a label-selected LIST, counted."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods, self.lists = pods, 0

    async def list(self, api_version: str, kind: str, namespace: str,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        assert (api_version, kind, namespace, label_selector) == ("v1", "Pod", "apps", "app=web")
        self.lists += 1
        return self.pods


def test_stuck_is_timed_from_the_first_sighting_and_lists_are_spaced() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "web", "namespace": "apps"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}}}}
    pods = _Pods([_pod(containerStatuses=[_waiting("ErrImagePull", "not found")])])
    now = [100.0]
    reasons = PodReasons(pods, clock=lambda: now[0])  # type: ignore[arg-type]

    async def look(at: float) -> None:
        now[0] = at
        await reasons.explain(deployment)

    ref = ObjectRef("apps", "Deployment", "apps", "web", "v1")
    asyncio.run(look(100.0))
    asyncio.run(look(102.0))  # within LIST_EVERY: the last answer, no new LIST
    assert pods.lists == 1
    asyncio.run(look(100.0 + STUCK_AFTER))
    assert pods.lists == 2
    assert reasons.stuck_for(ref) == STUCK_AFTER
    pods.pods = [_pod(containerStatuses=[_waiting("ContainerCreating")])]
    asyncio.run(look(200.0))
    assert reasons.stuck_for(ref) == 0.0  # the story changed: clock reset


# Against the real API server: the Kustomization's status says why.

def _deployment(ns: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": IMAGE}]}}}}


def _job(ns: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "namespace": ns},
            "spec": {"backoffLimit": 6, "template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "migrate", "image": IMAGE}]}}}}


def _bare_pod(ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "big", "namespace": ns, "labels": {"app": "big"}},
            "spec": {"containers": [{"name": "big", "image": IMAGE, "resources": {
                "requests": {"cpu": "64"}}}]}}


def _synced_after_pod_status(scenario: Scenario, workload: dict[str, Any], selector: str,
                             status: dict[str, Any], **spec: Any) -> str:
    """`workload` exists with a pod whose status a kubelet (or the scheduler) wrote, and then a
    Kustomization that waits for it applies the same workload from git. Returns the pod name."""
    ns = scenario.namespace
    scenario.kube.apply(workload)
    pod = wait_for(lambda: _pod_name(scenario, selector), 30, f"a pod for {selector}")
    scenario.kube.run("patch", "pod", pod, "-n", ns, "--subresource=status", "--type=merge",
                      "-p", json.dumps({"status": status}))
    scenario.repo.commit({"app/kustomization.yaml": kustomization("workload.yaml"),
                          "app/workload.yaml": workload})
    scenario.git_repository()
    scenario.kustomization("app", "./app", wait=True, **spec)
    return pod


def _pod_name(scenario: Scenario, selector: str) -> str | None:
    listed = json.loads(scenario.kube.run("get", "pods", "-n", scenario.namespace, "-l",
                                          selector, "-o", "json").stdout)
    return next((p["metadata"]["name"] for p in listed["items"]), None)


def test_a_deployment_whose_image_cannot_be_pulled_says_so(scenario: Scenario) -> None:
    ns = scenario.namespace
    pod = _synced_after_pod_status(scenario, _deployment(ns), "app=web", {
        "phase": "Pending",
        "containerStatuses": [_waiting("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')]},
        timeout="5s")
    failed = scenario.wait_failed("app", "HealthCheckFailed")
    assert (f'Deployment/{ns}/web: 0/1 ready: pod {pod} container web: ImagePullBackOff: '
            f'Back-off pulling image "{IMAGE}"') in failed["message"]


def test_a_crash_looping_job_gives_its_last_exit_code(scenario: Scenario) -> None:
    ns = scenario.namespace
    crashing = {**_waiting("CrashLoopBackOff", "back-off 40s restarting failed container"),
                "name": "migrate", "restartCount": 3,
                "lastState": {"terminated": {"reason": "Error", "exitCode": 3,
                                             "startedAt": "2025-01-01T00:00:00Z",
                                             "finishedAt": "2025-01-01T00:00:01Z"}}}
    pod = _synced_after_pod_status(scenario, _job(ns), "job-name=migrate", {
        "phase": "Running", "containerStatuses": [crashing]}, timeout="5s")
    failed = scenario.wait_failed("app", "HealthCheckFailed")
    assert (f"Job/{ns}/migrate: job running: pod {pod} container migrate: CrashLoopBackOff: "
            f"last exit code 3 (Error), restarted 3 times") in failed["message"]


def test_an_unschedulable_pod_gives_the_scheduler_message(scenario: Scenario) -> None:
    ns = scenario.namespace
    message = ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
               "available: 1 No preemption victims found for incoming pod.")
    _synced_after_pod_status(scenario, _bare_pod(ns), "app=big", {
        "phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastTransitionTime": "2025-01-01T00:00:00Z"}]},
        timeout="5s")
    failed = scenario.wait_failed("app", "HealthCheckFailed")
    assert f"Pod/{ns}/big: pod Pending: pod big: Unschedulable: {message}" in failed["message"]


def test_a_stuck_image_pull_fails_before_the_timeout(scenario: Scenario) -> None:
    ns = scenario.namespace
    pull_error = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{IMAGE}": '
                  f'failed to resolve reference "{IMAGE}": {IMAGE}: not found')
    _synced_after_pod_status(scenario, _deployment(ns), "app=web", {
        "phase": "Pending", "containerStatuses": [_waiting("ErrImagePull", pull_error)]},
        timeout="10m")
    # While it waits, the Reconciling condition already says why.
    reconciling = wait_for(lambda: next((
        c for c in scenario.status("app").get("conditions") or []
        if c["type"] == "Reconciling" and "ErrImagePull" in c["message"]), None),
        30, "the wait to say why")
    assert f"Deployment/{ns}/web: 0/1 ready: pod web-" in reconciling["message"]
    failed = scenario.wait_failed("app", "HealthCheckFailed", timeout=STUCK_AFTER + 30)
    assert "ErrImagePull: rpc error: code = NotFound" in failed["message"]
    after = re.search(r"health check failed after (\d+)s: .*\(for (\d+)s\)", failed["message"])
    assert after, failed["message"]
    assert STUCK_AFTER <= int(after[1]) < 120 and STUCK_AFTER <= int(after[2]) < 120


def test_a_deployment_whose_pods_are_refused_gives_the_api_servers_reason() -> None:
    """No pod exists to ask (a quota refused them all): the ReplicaFailure condition says why."""
    refusal = ('pods "web-7d9c-x" is forbidden: failed quota: apps: must specify limits.cpu '
               'for: web')
    deployment = {"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 1},
                  "status": {"observedGeneration": 1, "conditions": [
                      {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                       "message": refusal}]}}
    health = assess(deployment)
    assert health.state is State.IN_PROGRESS
    assert health.message == f"0/1 updated: {refusal}"
