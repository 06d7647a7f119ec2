"""A file removed from git deletes its objects; opted-out and foreign objects survive."""
from __future__ import annotations

from typing import Any

from tests.controller.harness import Scenario, wait_for
from tests.gitops_repos import configmap, kustomization


def _two_configmaps(scenario: Scenario, annotations: dict[str, str] | None = None,
                    **spec: Any) -> str:
    ns = scenario.namespace
    sha = scenario.sync({
        "app/kustomization.yaml": kustomization("keep.yaml", "drop.yaml"),
        "app/keep.yaml": configmap("keep", {"a": "1"}, namespace=ns),
        "app/drop.yaml": configmap("drop", {"b": "2"}, namespace=ns, annotations=annotations),
    }, **spec)
    assert scenario.configmap("drop") is not None
    return sha


def _remove_drop(scenario: Scenario) -> str:
    sha = scenario.repo.commit({"app/kustomization.yaml": kustomization("keep.yaml")},
                               remove=("app/drop.yaml",))
    scenario.wait_applied("app", sha)
    return sha


def test_removed_file_prunes_its_objects(scenario: Scenario) -> None:
    _two_configmaps(scenario)
    _remove_drop(scenario)
    wait_for(lambda: scenario.configmap("drop") is None, 20, "ConfigMap drop to be pruned")
    assert scenario.configmap("keep") is not None
    ids = [e["id"] for e in scenario.status("app")["inventory"]["entries"]]
    assert ids == [f"{scenario.namespace}_keep__ConfigMap"]


def test_prune_disabled_annotation_keeps_the_object(scenario: Scenario) -> None:
    _two_configmaps(scenario, annotations={"plinth.dev/prune": "disabled"})
    _remove_drop(scenario)
    assert scenario.configmap("drop") is not None
    ids = [e["id"] for e in scenario.status("app")["inventory"]["entries"]]
    assert f"{scenario.namespace}_drop__ConfigMap" not in ids


def test_prune_false_keeps_removed_objects(scenario: Scenario) -> None:
    _two_configmaps(scenario, prune=False)
    _remove_drop(scenario)
    assert scenario.configmap("drop") is not None


def test_objects_it_did_not_apply_are_never_pruned(scenario: Scenario) -> None:
    """A ConfigMap of the same name made by hand is not ours, even after git drops it."""
    _two_configmaps(scenario, interval="10m")
    # Suspended: a re-label of an object still in git is drift the controller would put back
    # within seconds; here someone takes the object over while no reconcile runs.
    scenario.kustomization("app", "./app", interval="10m", suspend=True)
    scenario.kube.run("label", "configmap", "drop", "-n", scenario.namespace, "--overwrite",
                      "kustomize.plinth.dev/name=someone-else")
    sha = scenario.repo.commit({"app/kustomization.yaml": kustomization("keep.yaml")},
                               remove=("app/drop.yaml",))
    # resumed on the new revision only: on the old one, the re-label is drift to put back
    wait_for(lambda: str(((scenario.status("repo", "gitrepositories.plinth.dev").get(
        "artifact") or {}).get("revision", ""))).endswith(sha), 30, "the source to fetch")
    scenario.kustomization("app", "./app", interval="10m", suspend=False)
    scenario.wait_applied("app", sha)
    drop = scenario.configmap("drop")
    assert drop is not None
    assert drop["metadata"]["labels"]["kustomize.plinth.dev/name"] == "someone-else"
