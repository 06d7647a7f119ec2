"""A Kustomization whose path has no kustomization.yaml applies the manifests there, as Flux
does, and kustomize's warnings about a path that has one reach its Ready message."""
from __future__ import annotations

from tests.controller.harness import Scenario
from tests.gitops_repos import configmap, kustomization


def test_a_path_of_plain_manifests_is_applied_and_pruned(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.sync({"app/a.yaml": configmap("a", {"v": "1"}, namespace=ns),
                   "app/more/b.yaml": configmap("b", {"v": "1"}, namespace=ns),
                   "app/values.yaml": "replicas: 3\n"})
    assert scenario.configmap("a") is not None and scenario.configmap("b") is not None
    second = scenario.repo.commit({}, remove=("app/more/b.yaml",))
    scenario.wait_applied("app", second)
    assert scenario.configmap("b") is None  # pruned: the generated list no longer has it


def test_kustomize_warnings_are_in_the_ready_message(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.sync({"app/kustomization.yaml": kustomization("a.yaml",
                                                           commonLabels={"team": "a"}),
                   "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)})
    message = scenario.ready("app")["message"]
    assert "kustomize warns: " in message and "commonLabels" in message, message
