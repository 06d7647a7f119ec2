"""A Kustomization applies with the rights of its service account (impersonated), or of the
controller's default one, so one team's repository cannot grant itself cluster-admin."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plinth.localenv.gitdaemon import GitDaemon
from tests.controller.conftest import new_namespace
from tests.controller.harness import ControllerProcess, GitOpsRepo, Kube, Scenario
from tests.gitops_repos import configmap, kustomization

RBAC = "rbac.authorization.k8s.io/v1"


def _tenant(kube: Kube, ns: str) -> None:
    """Service account `deployer`: ConfigMaps of its own namespace, nothing else."""
    kube.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "deployer", "namespace": ns}},
        {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "deployer", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]},
        {"apiVersion": RBAC, "kind": "RoleBinding",
         "metadata": {"name": "deployer", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "deployer"},
         "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}]})


def _escalation(ns: str) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{ns}-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}]}


def _refuses_escalation(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.repo.commit({
        "app/kustomization.yaml": kustomization("a.yaml", "admin.yaml"),
        "app/a.yaml": configmap("a", {"v": "2"}, namespace=ns),
        "app/admin.yaml": _escalation(ns),
    })
    ready = scenario.wait_failed("app", "ValidationFailed")
    assert f"ClusterRoleBinding/{ns}-admin" in ready["message"], ready
    assert f"system:serviceaccount:{ns}:deployer" in ready["message"], ready
    assert scenario.kube.get("clusterrolebinding", f"{ns}-admin") is None
    assert (scenario.configmap("a") or {}).get("data") == {"v": "1"}


def test_a_kustomization_applies_with_its_service_accounts_rights(scenario: Scenario) -> None:
    ns = scenario.namespace
    _tenant(scenario.kube, ns)
    scenario.sync({"app/kustomization.yaml": kustomization("a.yaml"),
                   "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)},
                  serviceAccountName="deployer")
    _refuses_escalation(scenario)


@pytest.fixture
def locked_down(kube: Kube, git_server: GitDaemon, tmp_path: Path) -> Iterator[Scenario]:
    """A second controller, for namespaces `cts-*`, started with a default service account."""
    process = ControllerProcess(kube.kubeconfig, tmp_path / "controller", ["cts-*"],
                                ("--default-service-account", "deployer"))
    process.start()
    namespace = new_namespace(kube, "cts")
    git_server.create_repository(f"{namespace}.git")
    try:
        yield Scenario(kube, namespace, GitOpsRepo(git_server.url(f"{namespace}.git"),
                                                   tmp_path / "work"))
    finally:
        process.stop()
        kube.run("delete", "namespace", namespace, "--wait=false")


def test_the_default_service_account_binds_kustomizations_that_name_none(
        locked_down: Scenario) -> None:
    ns = locked_down.namespace
    _tenant(locked_down.kube, ns)
    locked_down.sync({"app/kustomization.yaml": kustomization("a.yaml"),
                      "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)})
    _refuses_escalation(locked_down)
