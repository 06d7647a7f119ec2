"""A change to an immutable field fails validation without `force`, and recreates with it."""
from __future__ import annotations

from typing import Any

from tests.controller.harness import Scenario
from tests.gitops_repos import kustomization


def _deployment(ns: str, selector: str) -> dict[str, Any]:
    labels = {"app": selector}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web",
                                                           "image": "nginx:1.27"}]}}}}


def _deploy_then_change_selector(scenario: Scenario, force: bool) -> tuple[str, str]:
    ns = scenario.namespace
    first = scenario.repo.commit({
        "app/kustomization.yaml": kustomization("web.yaml"),
        "app/web.yaml": _deployment(ns, "web"),
    })
    scenario.git_repository()
    scenario.kustomization("app", "./app", force=force)
    scenario.wait_applied("app", first)
    uid = (scenario.kube.get("deployment", "web", ns) or {})["metadata"]["uid"]
    second = scenario.repo.commit({"app/web.yaml": _deployment(ns, "web-v2")})
    return uid, second


def test_immutable_change_without_force_applies_nothing(scenario: Scenario) -> None:
    uid, _ = _deploy_then_change_selector(scenario, force=False)
    failed = scenario.wait_failed("app", "ValidationFailed")
    assert "immutable" in failed["message"] and "spec.force" in failed["message"]
    live = scenario.kube.get("deployment", "web", scenario.namespace) or {}
    assert live["metadata"]["uid"] == uid
    assert live["spec"]["selector"]["matchLabels"] == {"app": "web"}


def test_immutable_change_with_force_recreates(scenario: Scenario) -> None:
    uid, second = _deploy_then_change_selector(scenario, force=True)
    scenario.wait_applied("app", second)
    live = scenario.kube.get("deployment", "web", scenario.namespace) or {}
    assert live["metadata"]["uid"] != uid
    assert live["spec"]["selector"]["matchLabels"] == {"app": "web-v2"}
