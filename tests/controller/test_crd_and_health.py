"""A CRD and its custom resources in one commit; health waits pass and time out (no kubelet
runs here, so the test sets the status a workload controller would)."""
from __future__ import annotations

import json
import time
from typing import Any

from tests.controller.harness import Scenario, wait_for
from tests.gitops_repos import kustomization


def _crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets", "singular": "widget",
                           "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "properties": {
                                       "spec": {"type": "object",
                                                "properties": {"size": {"type": "integer"}}},
                                       "status": {"type": "object",
                                                  "x-kubernetes-preserve-unknown-fields": True}}
                               }}}]}}


def _widget(group: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": ns}, "spec": {"size": 3}}


def test_crd_and_custom_resource_in_the_same_commit(scenario: Scenario) -> None:
    ns = scenario.namespace
    group = f"{ns}.example.com"
    sha = scenario.repo.commit({
        "app/kustomization.yaml": kustomization("crd.yaml", "widget.yaml"),
        "app/crd.yaml": _crd(group),
        "app/widget.yaml": _widget(group, ns),
    })
    scenario.git_repository()
    scenario.kustomization("app", "./app")
    scenario.wait_applied("app", sha)
    widget = scenario.kube.get(f"widgets.{group}", "w", ns)
    assert widget is not None and widget["spec"] == {"size": 3}
    scenario.kube.run("delete", "crd", f"widgets.{group}", "--wait=false")


def test_health_check_waits_for_a_custom_resource_to_be_ready(scenario: Scenario) -> None:
    ns = scenario.namespace
    group = f"{ns}.example.com"
    scenario.kube.apply(_crd(group))
    scenario.kube.run("wait", "--for=condition=Established", f"crd/widgets.{group}")
    # The widget exists and its own controller says it is not Ready yet.
    scenario.kube.apply(_widget(group, ns))
    _set_ready(scenario, group, "False")
    sha = scenario.repo.commit({
        "app/kustomization.yaml": kustomization("widget.yaml"),
        "app/widget.yaml": _widget(group, ns),
    })
    scenario.git_repository()
    scenario.kustomization("app", "./app", timeout="60s", healthChecks=[
        {"apiVersion": f"{group}/v1", "kind": "Widget", "name": "w"}])
    wait_for(lambda: "kustomize.plinth.dev/name" in ((scenario.kube.get(
        f"widgets.{group}", "w", ns) or {}).get("metadata", {}).get("labels") or {}),
        30, "the widget to be applied")
    # Applied, but not Ready: the health check holds the reconcile.
    assert scenario.ready("app").get("status") != "True"
    _set_ready(scenario, group, "True")
    scenario.wait_applied("app", sha, timeout=30)
    scenario.kube.run("delete", "crd", f"widgets.{group}", "--wait=false")


def _set_ready(scenario: Scenario, group: str, value: str) -> None:
    status = {"status": {"conditions": [{"type": "Ready", "status": value}]}}
    scenario.kube.run("patch", f"widgets.{group}", "w", "-n", scenario.namespace,
                      "--subresource=status", "--type=merge", "-p", json.dumps(status))


def _deployment(ns: str, replicas: int) -> dict[str, Any]:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web",
                                                           "image": "nginx:1.27"}]}}}}


def test_wait_passes_when_every_workload_is_available(scenario: Scenario) -> None:
    ns = scenario.namespace
    sha = scenario.repo.commit({
        "app/kustomization.yaml": kustomization("web.yaml"),
        "app/web.yaml": _deployment(ns, replicas=0),
    })
    scenario.git_repository()
    scenario.kustomization("app", "./app", wait=True, timeout="30s")
    scenario.wait_applied("app", sha)


def test_wait_times_out_when_a_rollout_never_completes(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.repo.commit({
        "app/kustomization.yaml": kustomization("web.yaml"),
        "app/web.yaml": _deployment(ns, replicas=1),  # no kubelet: never available
    })
    scenario.git_repository()
    scenario.kustomization("app", "./app", wait=True, timeout="3s")
    failed = scenario.wait_failed("app", "HealthCheckFailed")
    assert f"Deployment/{ns}/web" in failed["message"]
    assert scenario.kube.get("deployment", "web", ns) is not None


def test_a_new_revision_waits_for_the_new_generation_not_the_one_listed_before(
        scenario: Scenario) -> None:
    """The second revision changes a healthy widget: its health is judged on the object as
    applied (generation 2, not yet observed), never on the listing taken before the apply,
    where generation 1 was observed and Ready."""
    ns = scenario.namespace
    group = f"{ns}.example.com"
    scenario.kube.apply(_crd(group))
    scenario.kube.run("wait", "--for=condition=Established", f"crd/widgets.{group}")
    first = scenario.repo.commit({"app/kustomization.yaml": kustomization("widget.yaml"),
                                  "app/widget.yaml": _widget(group, ns)})
    scenario.git_repository()
    scenario.kustomization("app", "./app", timeout="60s", wait=True, interval="2s")

    def observe(generation: int) -> None:
        status = {"status": {"observedGeneration": generation,
                             "conditions": [{"type": "Ready", "status": "True"}]}}
        scenario.kube.run("patch", f"widgets.{group}", "w", "-n", ns, "--subresource=status",
                          "--type=merge", "-p", json.dumps(status))
    wait_for(lambda: scenario.kube.get(f"widgets.{group}", "w", ns), 30, "the widget")
    observe(1)
    scenario.wait_applied("app", first, timeout=30)
    time.sleep(3)  # a no-change reconcile, so the controller remembers what it applied
    second = scenario.repo.commit({"app/widget.yaml": {**_widget(group, ns),
                                                       "spec": {"size": 4}}})
    wait_for(lambda: (scenario.kube.get(f"widgets.{group}", "w", ns) or {})
             .get("spec", {}).get("size") == 4, 30, "the second revision to be applied")
    time.sleep(3)
    status = scenario.status("app")
    assert not str(status.get("lastAppliedRevision", "")).endswith(second), status
    observe(2)
    scenario.wait_applied("app", second, timeout=30)
    scenario.kube.run("delete", "crd", f"widgets.{group}", "--wait=false")
