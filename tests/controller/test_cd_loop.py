"""The whole CD loop on the real Gitea, controller and API server: a promotion opens a pull
request, branch protection holds the merge until the required check passes, the merge is
synced, its commit turns green, and `plinth wait` returns."""
from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from plinth.cli import cli
from plinth.forge import ForgeError, StatusState
from tests.controller.harness import Scenario, wait_for
from tests.controller.forge_repo import ForgeRepo

TOKEN_ENV = "PLINTH_TEST_FORGE_TOKEN"
OVERLAY = """\
resources: [deployment.yaml]
images:
  - name: registry.example/web
    newTag: {tag} # {{"$imagepolicy": "{ns}:web:tag"}}
"""


def _deployment() -> dict[str, Any]:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "web", "image": "registry.example/web:0.0.0"}]}}}}


def test_promote_review_merge_sync_green_wait(scenario: Scenario, on_forge: ForgeRepo,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ns = scenario.namespace
    client = on_forge.forge.client()
    files: dict[str, Any] = {}
    for env, tag in (("dev", "1.1.0"), ("prod", "1.0.0")):
        files[f"apps/overlays/{env}/kustomization.yaml"] = OVERLAY.format(tag=tag, ns=ns)
        files[f"apps/overlays/{env}/deployment.yaml"] = _deployment()
    on_forge.repo.commit(files)
    scenario.git_repository(url=on_forge.forge.clone_url(ns, "gitops"))
    scenario.kustomization("app", "./apps/overlays/prod", targetNamespace=ns)
    client.protect_branch(on_forge.ref, "main", required_contexts=["ci/validate"])

    monkeypatch.setenv(TOKEN_ENV, on_forge.forge.token())
    promoted = CliRunner().invoke(cli, [
        "promote", "--from", "dev", "--to", "prod", "--forge-url", on_forge.forge.url,
        "--repository", str(on_forge.ref), "--token-env", TOKEN_ENV])
    assert promoted.exit_code == 0, promoted.output
    pull = client.find_pull_request(on_forge.ref, "plinth/promote-dev-to-prod", "main")
    assert pull is not None and "1.0.0" in pull.body and "1.1.0" in pull.body, pull

    with pytest.raises(ForgeError):  # the required check has not passed
        client.merge_pull_request(on_forge.ref, pull.number)
    client.post_status(on_forge.ref, pull.head_sha, StatusState.SUCCESS, "ci/validate",
                       description="rendered and validated")
    merged = client.merge_pull_request(on_forge.ref, pull.number)
    sha = merged.merge_commit_sha
    assert sha

    waited = CliRunner().invoke(cli, ["wait", "--revision", sha, "--kustomization",
                                      f"{ns}/app", "--kubeconfig",
                                      str(scenario.kube.kubeconfig), "--timeout", "90s"])
    assert waited.exit_code == 0, waited.output
    live = scenario.kube.get("deployment", "web", ns) or {}
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.example/web:1.1.0"
    wait_for(lambda: on_forge.states(sha)[-1:] == ["success"], 60, "the merge to turn green")
