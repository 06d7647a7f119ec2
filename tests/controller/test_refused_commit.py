"""A refused commit leaves the cluster exactly as it was: the same objects with the same
resourceVersions, even when the commit brings the Namespace or the CRD its refused objects
need (those can only be dry-run once they exist, so the attempt creates them and removes them
again)."""
from __future__ import annotations

import secrets
from typing import Any

from tests.controller.harness import Scenario
from tests.controller.test_crd_and_health import _crd
from tests.gitops_repos import configmap, kustomization


def _good(scenario: Scenario) -> str:
    ns = scenario.namespace
    # A refused commit is retried at the interval, and each retry briefly makes the
    # Namespace or CRD it needs again: an hour keeps retries out of the picture taken here.
    return scenario.sync({"app/kustomization.yaml": kustomization("a.yaml"),
                          "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)},
                         interval="1h")


def _refused(scenario: Scenario, files: dict[str, Any], reason: str = "ValidationFailed"
             ) -> dict[str, Any]:
    sha = scenario.repo.commit(files)

    def attempted() -> bool:
        return str(scenario.status("app").get("lastAttemptedRevision", "")).endswith(sha)
    ready = scenario.wait_failed("app", reason)
    assert attempted()
    return ready


def test_a_new_namespace_of_a_refused_commit_is_not_left_behind(scenario: Scenario) -> None:
    ns = scenario.namespace
    _good(scenario)
    before = scenario.resource_versions()
    new = f"{ns}-new"
    ready = _refused(scenario, {
        "app/kustomization.yaml": kustomization("a.yaml", "ns.yaml", "bad.yaml"),
        "app/a.yaml": configmap("a", {"v": "2"}, namespace=ns),
        "app/ns.yaml": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": new}},
        "app/bad.yaml": {"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "web", "namespace": new},
                         "spec": {"ports": [{"port": "eighty"}]}},
    })
    assert f"Service/{new}/web" in ready["message"] and "app/bad.yaml" in ready["message"]
    assert scenario.resource_versions() == before


def test_a_new_crd_of_a_refused_commit_is_not_left_behind(scenario: Scenario) -> None:
    ns = scenario.namespace
    _good(scenario)
    before = scenario.resource_versions()
    group = f"{ns}.example.com"
    ready = _refused(scenario, {
        "app/kustomization.yaml": kustomization("a.yaml", "crd.yaml", "widget.yaml"),
        "app/a.yaml": configmap("a", {"v": "2"}, namespace=ns),
        "app/crd.yaml": _crd(group),
        # refused by the new CRD's own schema: size is an integer
        "app/widget.yaml": {"apiVersion": f"{group}/v1", "kind": "Widget",
                            "metadata": {"name": "w", "namespace": ns},
                            "spec": {"size": "three"}},
    })
    assert f"Widget/{ns}/w" in ready["message"] and "app/widget.yaml" in ready["message"]
    assert scenario.resource_versions() == before


def test_a_refused_commit_keeps_the_inventory_it_had(scenario: Scenario) -> None:
    """Nothing of a refused commit was applied, so nothing of it is recorded to prune later
    (a tenant's service account may not even be allowed to look at it)."""
    ns = scenario.namespace
    _good(scenario)
    entries = scenario.status("app")["inventory"]["entries"]
    _refused(scenario, {
        "app/kustomization.yaml": kustomization("a.yaml", "b.yaml", "bad.yaml"),
        "app/b.yaml": configmap("b", {"v": "1"}, namespace=None),
        "app/bad.yaml": {"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "web", "namespace": ns},
                         "spec": {"ports": [{"port": "eighty"}]}},
    })
    assert scenario.status("app")["inventory"]["entries"] == entries


def _service(name: str, cluster_ip: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"clusterIP": cluster_ip, "ports": [{"port": 80}]}}


def test_a_failed_apply_records_namespaced_objects_with_their_namespace(
        scenario: Scenario) -> None:
    """The inventory is written before applying, so a crash or failure mid-apply leaves
    nothing unknown to prune: an object without a namespace is recorded in the one it gets."""
    ns = scenario.namespace
    _good(scenario)
    # Each Service passes its dry-run alone; applied, the second finds the address taken.
    address = f"10.96.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 2}"
    _refused(scenario, {
        "app/kustomization.yaml": kustomization("a.yaml", "b.yaml", "one.yaml", "two.yaml"),
        "app/b.yaml": configmap("b", {"v": "1"}, namespace=None),
        "app/one.yaml": _service("one", address),
        "app/two.yaml": _service("two", address),
    }, reason="ReconciliationFailed")
    ids = {e["id"] for e in scenario.status("app")["inventory"]["entries"]}
    assert {f"{ns}_b__ConfigMap", f"{ns}_one__Service", f"{ns}_two__Service"} <= ids, ids
    assert not {"_b__ConfigMap", "_one__Service", "_two__Service"} & ids, ids
