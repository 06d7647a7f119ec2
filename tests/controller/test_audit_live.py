"""The audit's live state against the real API server and controller: an object deleted by hand
is missing, one edited by hand names the manager who did it, and the controller's own
re-applies and the cluster's own writes are no drift."""
from __future__ import annotations

from plinth.audit import live_state
from tests.controller.harness import Scenario
from tests.gitops_repos import configmap, kustomization


def test_hand_edits_and_deletes_are_drift_with_who_made_them(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.sync({"app/kustomization.yaml": kustomization("a.yaml", "b.yaml"),
                   "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns),
                   "app/b.yaml": configmap("b", {"v": "1"}, namespace=ns)},
                  interval="1h", retryInterval="1h")
    kubeconfig = scenario.kube.kubeconfig.read_text()

    def ours() -> list[str]:
        (mine,) = [k for k in live_state(kubeconfig) if k.name == f"{ns}/app"]
        assert mine.objects == 2 and mine.ready == "True"
        return [*mine.missing, *(f"{e.object} by {e.manager}" for e in mine.edited)]
    assert ours() == []
    # suspended, or the controller puts the edits back within seconds (its drift watch)
    scenario.kustomization("app", "./app", interval="1h", retryInterval="1h", suspend=True)
    scenario.kube.apply(configmap("a", {"v": "by hand"}, namespace=ns))  # manager "test"
    scenario.kube.delete("configmap", "b", ns, wait=True)
    assert ours() == [f"ConfigMap/{ns}/b", f"ConfigMap/{ns}/a by test"]
