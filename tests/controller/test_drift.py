"""Hand edits and hand deletions are put back within one interval."""
from __future__ import annotations

from tests.controller.harness import Scenario, wait_for
from tests.gitops_repos import configmap, kustomization


def test_drift_is_corrected_within_one_interval(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.sync({
        "app/kustomization.yaml": kustomization("a.yaml", "b.yaml"),
        "app/a.yaml": configmap("a", {"color": "blue"}, namespace=ns),
        "app/b.yaml": configmap("b", {"size": "s"}, namespace=ns),
    }, interval="3s")

    scenario.kube.run("patch", "configmap", "a", "-n", ns, "--type=merge",
                      "-p", '{"data": {"color": "red"}}')
    scenario.kube.delete("configmap", "b", ns, wait=True)

    def healed() -> bool:
        a, b = scenario.configmap("a"), scenario.configmap("b")
        return bool(a and a["data"] == {"color": "blue"} and b and b["data"] == {"size": "s"})
    # interval 3s, plus one reconcile of slack
    wait_for(healed, 10, "the hand edit and the deleted object to be put back")


def test_drift_is_healed_within_seconds_not_at_the_interval(scenario: Scenario) -> None:
    """The Kustomization polls once an hour: only the watch on what it applied can bring the
    hand edit and the hand delete back this quickly."""
    ns = scenario.namespace
    scenario.sync({
        "app/kustomization.yaml": kustomization("a.yaml", "b.yaml"),
        "app/a.yaml": configmap("a", {"color": "blue"}, namespace=ns),
        "app/b.yaml": configmap("b", {"size": "s"}, namespace=ns),
    }, interval="1h", retryInterval="1h")

    scenario.kube.run("patch", "configmap", "a", "-n", ns, "--type=merge",
                      "-p", '{"data": {"color": "red"}}')
    wait_for(lambda: (scenario.configmap("a") or {}).get("data") == {"color": "blue"}, 10,
             "the hand edit to be undone")
    scenario.kube.delete("configmap", "b", ns, wait=True)
    wait_for(lambda: scenario.configmap("b") is not None, 10, "the deleted object to be back")
