"""Every failure ends in a written status, an Event and the metric, whatever raised it, and is
retried at the object's retryInterval; a failing source is reported on the Kustomizations that
follow it."""
from __future__ import annotations

import json
import time

from tests.controller.harness import ControllerProcess, Scenario, wait_for
from tests.gitops_repos import configmap, kustomization


def _events(scenario: Scenario, name: str) -> list[dict[str, str]]:
    out = scenario.kube.run("get", "events", "-n", scenario.namespace, "-o", "json",
                            "--field-selector", f"involvedObject.name={name}").stdout
    return list(json.loads(out)["items"])


def _conditions(scenario: Scenario, name: str) -> dict[str, dict[str, str]]:
    return {c["type"]: c for c in scenario.status(name).get("conditions") or []}


def _patch_status(scenario: Scenario, name: str, status: dict[str, object]) -> None:
    scenario.kube.run("patch", "kustomizations.plinth.dev", name, "-n", scenario.namespace,
                      "--subresource=status", "--type=merge", "-p",
                      json.dumps({"status": status}))


def _reconciles(controller: ControllerProcess, ns: str, name: str) -> float:
    for line in controller.http("/metrics")[1].splitlines():
        if line.startswith("plinth_reconcile_duration_seconds_count{") and \
                f'namespace="{ns}"' in line and f'name="{name}"' in line \
                and 'kind="Kustomization"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_unexpected_error_is_reported_like_any_failure_and_retried_at_retry_interval(
        scenario: Scenario, controller: ControllerProcess) -> None:
    ns = scenario.namespace
    scenario.sync({"app/kustomization.yaml": kustomization("a.yaml"),
                   "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)},
                  interval="1h", retryInterval="1s")
    entries = scenario.status("app")["inventory"]["entries"]
    # An inventory nobody can read (a hand-edited status): no step expects that error.
    _patch_status(scenario, "app", {"inventory": {"entries": [{"id": "garbage", "v": "v1"}]}})
    scenario.repo.commit({"app/a.yaml": configmap("a", {"v": "2"}, namespace=ns)})
    ready = scenario.wait_failed("app", "ReconciliationFailed")
    assert "ValueError" in ready["message"], ready
    conditions = _conditions(scenario, "app")
    assert "Reconciling" not in conditions
    assert "Stalled" not in conditions
    wait_for(lambda: any(e["reason"] == "ReconciliationFailed" and e["type"] == "Warning"
                         for e in _events(scenario, "app")), 30, "a Warning Event")
    metrics = controller.http("/metrics")[1]
    assert f'plinth_ready{{kind="Kustomization",name="app",namespace="{ns}"}} 0.0' in metrics
    # Retried every second (the retryInterval), not backed off (which would give 2 at most).
    before = _reconciles(controller, ns, "app")
    time.sleep(8)
    assert _reconciles(controller, ns, "app") - before >= 4
    assert (scenario.configmap("a") or {}).get("data") == {"v": "1"}  # nothing applied

    def repaired() -> bool:  # the controller may write its stale copy back: repair again
        if scenario.status("app")["inventory"]["entries"] != entries:
            _patch_status(scenario, "app", {"inventory": {"entries": entries}})
        return scenario.ready("app").get("status") == "True"
    wait_for(repaired, 30, "the Kustomization to recover once its status is repaired")
    assert (scenario.configmap("a") or {}).get("data") == {"v": "2"}


def test_a_failing_source_is_reported_on_its_kustomizations(scenario: Scenario) -> None:
    ns = scenario.namespace
    good = scenario.sync({"app/kustomization.yaml": kustomization("a.yaml"),
                          "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)})
    scenario.git_repository(url=scenario.repo.url.replace(f"{ns}.git", "gone.git"))
    ready = scenario.wait_failed("app", "ArtifactFailed")
    assert f"source GitRepository {ns}/repo is failing" in ready["message"], ready
    assert good[:12] in scenario.status("app")["lastAppliedRevision"]
    assert (scenario.configmap("a") or {}).get("data") == {"v": "1"}  # what runs, runs on
    scenario.git_repository()
    scenario.wait_applied("app", good)
