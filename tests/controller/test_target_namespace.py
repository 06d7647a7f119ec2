"""targetNamespace moves every namespaced object; cluster-scoped ones stay cluster-scoped."""
from __future__ import annotations

from tests.controller.harness import Scenario
from tests.gitops_repos import configmap, kustomization


def test_target_namespace_overrides_the_namespace_in_git(scenario: Scenario) -> None:
    ns = scenario.namespace
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"{ns}-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}
    sha = scenario.repo.commit({
        "app/kustomization.yaml": kustomization("a.yaml", "role.yaml"),
        "app/a.yaml": configmap("a", {"v": "1"}, namespace="somewhere-else"),
        "app/role.yaml": role,
    })
    scenario.git_repository()
    scenario.kustomization("app", "./app", targetNamespace=ns)
    status = scenario.wait_applied("app", sha)
    assert scenario.configmap("a") is not None
    assert scenario.kube.get("clusterrole", f"{ns}-reader") is not None
    ids = sorted(e["id"] for e in status["inventory"]["entries"])
    assert ids == [f"_{ns}-reader_rbac.authorization.k8s.io_ClusterRole", f"{ns}_a__ConfigMap"]
    scenario.kube.run("delete", "clusterrole", f"{ns}-reader")
