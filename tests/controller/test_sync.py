"""First sync creates what git holds; a new commit updates it; status tells what happened."""
from __future__ import annotations

from tests.controller.harness import Scenario
from tests.gitops_repos import configmap, kustomization


def test_first_sync_creates_objects_and_reports_status(scenario: Scenario) -> None:
    ns = scenario.namespace
    sha = scenario.repo.commit({
        "app/kustomization.yaml": kustomization("config.yaml"),
        "app/config.yaml": configmap("settings", {"color": "blue"}, namespace=ns),
    })
    scenario.git_repository()
    scenario.kustomization("app", "./app")

    status = scenario.wait_applied("app", sha)

    live = scenario.configmap("settings")
    assert live is not None and live["data"] == {"color": "blue"}
    assert live["metadata"]["labels"]["kustomize.plinth.dev/name"] == "app"
    assert any(m["manager"] == "plinth" and m["operation"] == "Apply"
               for m in live["metadata"]["managedFields"])
    assert status["lastAppliedRevision"] == f"main@sha1:{sha}"
    assert status["lastAttemptedRevision"] == f"main@sha1:{sha}"
    assert status["inventory"]["entries"] == [{"id": f"{ns}_settings__ConfigMap", "v": "v1"}]
    ready = scenario.ready("app")
    assert ready["reason"] == "ReconciliationSucceeded"
    assert ready["observedGeneration"] == 1 and ready["lastTransitionTime"]
    source = scenario.ready("repo", "gitrepositories.plinth.dev")
    assert source["status"] == "True"
    assert scenario.status("repo", "gitrepositories.plinth.dev")["artifact"]["revision"] == \
        f"main@sha1:{sha}"


def test_new_commit_updates_objects(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.sync({
        "app/kustomization.yaml": kustomization("config.yaml"),
        "app/config.yaml": configmap("settings", {"color": "blue"}, namespace=ns),
    }, interval="10m")

    second = scenario.repo.commit({"app/config.yaml": configmap("settings", {"color": "green"},
                                                                namespace=ns)})
    # The Kustomization's own interval is 10m: only the new revision can trigger this apply.
    scenario.wait_applied("app", second, timeout=30)
    live = scenario.configmap("settings")
    assert live is not None and live["data"] == {"color": "green"}


def test_object_without_namespace_goes_to_the_kustomization_namespace(
        scenario: Scenario) -> None:
    """Also: a GitRepository and a Kustomization may share a name, as `flux-system` does."""
    sha = scenario.repo.commit({
        "app/kustomization.yaml": kustomization("config.yaml"),
        "app/config.yaml": configmap("plain", {"a": "1"}, namespace=None),
    })
    scenario.git_repository("app")
    scenario.kustomization("app", "./app", sourceRef={"kind": "GitRepository", "name": "app"})
    scenario.wait_applied("app", sha)
    assert scenario.configmap("plain") is not None
