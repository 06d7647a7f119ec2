"""A suspended Kustomization applies nothing new until resumed."""
from __future__ import annotations

import time

from tests.controller.harness import Scenario
from tests.gitops_repos import configmap, kustomization


def test_suspend_stops_applying_and_resume_catches_up(scenario: Scenario) -> None:
    ns = scenario.namespace
    first = scenario.sync({
        "app/kustomization.yaml": kustomization("a.yaml"),
        "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns),
    })

    scenario.kustomization("app", "./app", suspend=True)
    second = scenario.repo.commit({"app/a.yaml": configmap("a", {"v": "2"}, namespace=ns)})
    time.sleep(6)  # three intervals of the Kustomization, five of its source
    a = scenario.configmap("a")
    assert a is not None and a["data"] == {"v": "1"}
    assert scenario.status("app")["lastAppliedRevision"].endswith(first)

    scenario.kustomization("app", "./app", suspend=False)
    scenario.wait_applied("app", second, timeout=20)
    a = scenario.configmap("a")
    assert a is not None and a["data"] == {"v": "2"}
