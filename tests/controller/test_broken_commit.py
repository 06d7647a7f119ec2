"""A commit that cannot be rendered or validated applies nothing and prunes nothing, and the
status names the file and the object."""
from __future__ import annotations

from tests.controller.harness import Scenario
from tests.gitops_repos import configmap, kustomization


def _good(scenario: Scenario) -> str:
    ns = scenario.namespace
    return scenario.sync({
        "app/kustomization.yaml": kustomization("a.yaml", "b.yaml"),
        "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns),
        "app/b.yaml": configmap("b", {"v": "1"}, namespace=ns),
    })


def _unchanged(scenario: Scenario, good: str) -> None:
    a, b = scenario.configmap("a"), scenario.configmap("b")
    assert a is not None and a["data"] == {"v": "1"}
    assert b is not None and b["data"] == {"v": "1"}
    status = scenario.status("app")
    assert status["lastAppliedRevision"].endswith(good)
    assert not status["lastAttemptedRevision"].endswith(good)


def test_broken_yaml_applies_nothing_and_prunes_nothing(scenario: Scenario) -> None:
    good = _good(scenario)
    ns = scenario.namespace
    # a.yaml changes, b.yaml leaves git, and c.yaml is not YAML at all.
    scenario.repo.commit({
        "app/kustomization.yaml": kustomization("a.yaml", "c.yaml"),
        "app/a.yaml": configmap("a", {"v": "2"}, namespace=ns),
        "app/c.yaml": "kind: ConfigMap\nmetadata: {name: c\n  data: [",
    }, remove=("app/b.yaml",))
    ready = scenario.wait_failed("app", "BuildFailed")
    assert "c.yaml" in ready["message"]
    _unchanged(scenario, good)


def test_invalid_object_applies_nothing_and_prunes_nothing(scenario: Scenario) -> None:
    good = _good(scenario)
    ns = scenario.namespace
    bad = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": ns},
           "spec": {"ports": [{"port": "eighty"}], "selektor": {"app": "web"}}}
    scenario.repo.commit({
        "app/kustomization.yaml": kustomization("a.yaml", "svc.yaml"),
        "app/a.yaml": configmap("a", {"v": "2"}, namespace=ns),
        "app/svc.yaml": bad,
    }, remove=("app/b.yaml",))
    ready = scenario.wait_failed("app", "ValidationFailed")
    assert f"Service/{ns}/web" in ready["message"]
    assert "app/svc.yaml" in ready["message"]
    _unchanged(scenario, good)
    assert scenario.kube.get("service", "web", ns) is None
    stalled = next(c for c in scenario.status("app")["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"


def test_fixing_the_commit_recovers(scenario: Scenario) -> None:
    _good(scenario)
    ns = scenario.namespace
    scenario.repo.commit({"app/a.yaml": "not: [valid"})
    scenario.wait_failed("app", "BuildFailed")
    fixed = scenario.repo.commit({"app/a.yaml": configmap("a", {"v": "3"}, namespace=ns)})
    scenario.wait_applied("app", fixed)
    a = scenario.configmap("a")
    assert a is not None and a["data"] == {"v": "3"}
    assert all(c["type"] != "Stalled" for c in scenario.status("app")["conditions"])
