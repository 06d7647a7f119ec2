"""Git unreachable: what runs keeps running, status says why, and sync resumes on recovery.
Credentials from a Secret reach the git server and never the status."""
from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from plinth.localenv.gitdaemon import GitDaemon
from plinth.localenv.githttp import GitHttpServer
from tests.controller.harness import GitOpsRepo, Scenario, wait_for
from tests.fixtures.servers import serving
from tests.gitops_repos import configmap, kustomization


@pytest.fixture
def own_git_server(tmp_path: Path) -> Iterator[GitDaemon]:
    yield from serving(GitDaemon(tmp_path / "git"))


def test_git_server_down_keeps_objects_and_recovery_resumes(
        scenario: Scenario, own_git_server: GitDaemon, tmp_path: Path) -> None:
    ns = scenario.namespace
    own_git_server.create_repository("outage.git")
    repo = GitOpsRepo(own_git_server.url("outage.git"), tmp_path / "work-outage")
    first = repo.commit({
        "app/kustomization.yaml": kustomization("a.yaml"),
        "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns),
    })
    scenario.git_repository(url=repo.url)
    scenario.kustomization("app", "./app")
    scenario.wait_applied("app", first)

    own_git_server.stop()

    def source_failed() -> dict[str, str] | None:
        ready = scenario.ready("repo", "gitrepositories.plinth.dev")
        return ready if ready.get("status") == "False" else None
    failed = wait_for(source_failed, 30, "the GitRepository to report the outage")
    assert failed["reason"] == "GitOperationFailed"
    assert "127.0.0.1" in failed["message"]
    # What runs stays, and the Kustomization goes on from the last artifact.
    assert scenario.configmap("a") is not None
    scenario.wait_applied("app", first)

    own_git_server.start()
    second = repo.commit({"app/a.yaml": configmap("a", {"v": "2"}, namespace=ns)})
    scenario.wait_applied("app", second, timeout=90)  # the source backs off up to its interval
    a = scenario.configmap("a")
    assert a is not None and a["data"] == {"v": "2"}


def test_basic_auth_from_secret_and_no_secret_in_status(
        scenario: Scenario, git_http_server: GitHttpServer, tmp_path: Path) -> None:
    ns = scenario.namespace
    user, password = git_http_server.credentials()
    git_http_server.create_repository(f"{ns}.git")
    plain_url = git_http_server.url(f"{ns}.git")
    authed = plain_url.replace("http://", f"http://{user}:{password}@")
    repo = GitOpsRepo(authed, tmp_path / "work-auth")
    sha = repo.commit({
        "app/kustomization.yaml": kustomization("a.yaml"),
        "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns),
    })

    def secret(password_value: str) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "git-auth", "namespace": ns},
                "data": {"username": base64.b64encode(user.encode()).decode(),
                         "password": base64.b64encode(password_value.encode()).decode()}}

    scenario.kube.apply(secret("wrong-" + password))
    scenario.git_repository(url=plain_url, secretRef={"name": "git-auth"})
    wait_for(lambda: scenario.ready("repo", "gitrepositories.plinth.dev").get("status")
             == "False", 30, "the wrong password to be refused")
    message = scenario.ready("repo", "gitrepositories.plinth.dev")["message"]
    assert password not in message

    scenario.kube.apply(secret(password))
    scenario.kustomization("app", "./app")
    status = scenario.wait_applied("app", sha, timeout=90)
    assert password not in str(status)
    assert password not in str(scenario.status("repo", "gitrepositories.plinth.dev"))
