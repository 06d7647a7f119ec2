"""Deleting a Kustomization with prune deletes what it applied; without prune, it stays."""
from __future__ import annotations

from tests.controller.harness import Scenario, wait_for
from tests.gitops_repos import configmap, kustomization


def _synced(scenario: Scenario, prune: bool) -> None:
    ns = scenario.namespace
    scenario.sync({
        "app/kustomization.yaml": kustomization("a.yaml"),
        "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns),
    }, prune=prune)
    live = scenario.kube.get("kustomizations.plinth.dev", "app", ns) or {}
    assert "finalizers.plinth.dev" in live["metadata"].get("finalizers", [])


def test_deleting_a_pruning_kustomization_deletes_its_objects(scenario: Scenario) -> None:
    _synced(scenario, prune=True)
    scenario.kube.run("delete", "kustomizations.plinth.dev", "app", "-n", scenario.namespace,
                      "--timeout=30s")
    wait_for(lambda: scenario.configmap("a") is None, 20, "ConfigMap a to be deleted")


def test_deleting_a_non_pruning_kustomization_keeps_its_objects(scenario: Scenario) -> None:
    _synced(scenario, prune=False)
    scenario.kube.run("delete", "kustomizations.plinth.dev", "app", "-n", scenario.namespace,
                      "--timeout=30s")
    assert scenario.configmap("a") is not None
