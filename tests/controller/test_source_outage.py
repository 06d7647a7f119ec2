"""Git unreachable: what runs keeps running, status says why (on the source and on each
Kustomization that follows it), and sync resumes on recovery.
Credentials from a Secret reach the git server and never the status."""
from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from plinth.localenv.gitdaemon import GitDaemon
from plinth.localenv.githttp import GitHttpServer
from tests.controller.harness import GitOpsRepo, Scenario, wait_for
from tests.fixtures.servers import serving
from tests.gitops_repos import configmap, kustomization

SOURCE = "gitrepositories.plinth.dev"
KUSTOMIZATION = "kustomizations.plinth.dev"


@pytest.fixture
def own_git_server(tmp_path: Path) -> Iterator[GitDaemon]:
    yield from serving(GitDaemon(tmp_path / "git"))


def not_ready_since(scenario: Scenario, name: str, kind: str,
                    moment: datetime) -> Callable[[], dict[str, Any] | None]:
    """A check for Ready=False written at or after `moment`: a condition from before (stale, or
    False for another reason) does not count."""
    def check() -> dict[str, Any] | None:
        ready = scenario.ready(name, kind)
        if ready.get("status") != "False":
            return None
        return ready if datetime.fromisoformat(ready["lastTransitionTime"]) >= moment else None
    return check


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
    assert scenario.ready("repo", SOURCE)["status"] == "True"

    outage = datetime.now(timezone.utc).replace(microsecond=0)  # conditions are in seconds
    own_git_server.stop()

    failed = wait_for(not_ready_since(scenario, "repo", SOURCE, outage), 30,
                      "the GitRepository to report the outage")
    assert failed["reason"] == "GitOperationFailed"
    assert "127.0.0.1" in failed["message"]
    following = wait_for(not_ready_since(scenario, "app", KUSTOMIZATION, outage), 30,
                         "the Kustomization to report its source's outage")
    assert following["reason"] == "ArtifactFailed"
    assert f"GitRepository {ns}/repo" in following["message"]
    # What runs stays: the Kustomization goes on from the last artifact.
    assert str(scenario.status("app")["lastAppliedRevision"]).endswith(first)
    a = scenario.configmap("a")
    assert a is not None and a["data"] == {"v": "1"}

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
    wait_for(lambda: scenario.ready("repo", SOURCE).get("status") == "False", 30,
             "the wrong password to be refused")
    message = scenario.ready("repo", SOURCE)["message"]
    assert password not in message

    scenario.kube.apply(secret(password))
    scenario.kustomization("app", "./app")
    status = scenario.wait_applied("app", sha, timeout=90)
    assert password not in str(status)
    assert password not in str(scenario.status("repo", SOURCE))
