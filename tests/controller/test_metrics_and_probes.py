"""/healthz, /readyz and /metrics answer, and the metrics describe the reconciles; Events too."""
from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from plinth.localenv.process import free_port
from tests.controller.harness import ControllerProcess, Scenario, wait_for
from tests.gitops_repos import configmap, kustomization


def test_probes_answer(controller: ControllerProcess) -> None:
    assert controller.http("/healthz") == (200, "ok")
    assert controller.http("/readyz") == (200, "ok")


def test_unreachable_api_server_makes_it_unready_with_a_reason_but_alive(tmp_path: Path) -> None:
    closed = f"https://127.0.0.1:{free_port()}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": closed}}],
        "users": [{"name": "gone", "user": {"token": "unused"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}]}))
    process = ControllerProcess(kubeconfig, tmp_path / "controller", ["ct-*"])
    process.launch()
    try:
        def answer() -> tuple[int, str] | None:
            status, text = process.http("/readyz")
            return (status, text) if status else None
        status, reason = wait_for(answer, 30, "an answer on /readyz")
        assert status == 503
        assert reason.startswith("API server unreachable: ") and "127.0.0.1" in reason
        assert "\n" not in reason
        time.sleep(3)  # past the first retry of discovery: still up, still only unready
        assert process.http("/healthz") == (200, "ok")
        assert process.http("/readyz")[0] == 503
    finally:
        process.stop()


def test_metrics_and_events_describe_a_reconcile(scenario: Scenario,
                                                 controller: ControllerProcess) -> None:
    ns = scenario.namespace
    sha = scenario.sync({
        "app/kustomization.yaml": kustomization("a.yaml"),
        "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns),
    })

    labels = f'kind="Kustomization",name="app",namespace="{ns}"'
    status, text = controller.http("/metrics")
    assert status == 200
    assert f"plinth_ready{{{labels}}} 1.0" in text
    assert f"plinth_objects_applied_total{{{labels}}} 1.0" in text
    assert f"plinth_reconcile_duration_seconds_count{{{labels}}}" in text

    def event() -> list[dict[str, str]]:
        out = scenario.kube.run("get", "events", "-n", ns, "-o", "json").stdout
        return [e for e in json.loads(out)["items"]
                if e["involvedObject"]["kind"] == "Kustomization"
                and e["reason"] == "ReconciliationSucceeded"]
    events = wait_for(event, 20, "a ReconciliationSucceeded event")
    assert sha in events[0]["message"] and "1 changed" in events[0]["message"]
