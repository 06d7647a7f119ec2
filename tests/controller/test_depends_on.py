"""dependsOn: apps wait until infrastructure is Ready at the source's latest revision."""
from __future__ import annotations

from tests.controller.harness import Scenario
from tests.gitops_repos import configmap, kustomization


def test_dependent_waits_for_its_dependency(scenario: Scenario) -> None:
    ns = scenario.namespace
    extra_ns = f"{ns}-infra"
    sha = scenario.repo.commit({
        "infra/kustomization.yaml": kustomization("ns.yaml"),
        "infra/ns.yaml": {"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": extra_ns}},
        "apps/kustomization.yaml": kustomization("a.yaml"),
        "apps/a.yaml": configmap("a", {"v": "1"}, namespace=extra_ns),
    })
    scenario.git_repository()
    # infra is suspended: apps must not go ahead (its namespace would not even exist).
    scenario.kustomization("infra", "./infra", suspend=True)
    scenario.kustomization("apps", "./apps", dependsOn=[{"name": "infra"}])
    waiting = scenario.wait_failed("apps", "DependencyNotReady")
    assert "infra" in waiting["message"]
    assert scenario.kube.get("namespace", extra_ns) is None

    scenario.kustomization("infra", "./infra", suspend=False)
    scenario.wait_applied("infra", sha)
    scenario.wait_applied("apps", sha, timeout=20)
    assert scenario.configmap("a", extra_ns) is not None
    scenario.kube.run("delete", "namespace", extra_ns, "--wait=false")
