"""SSH sources: a deploy key and known_hosts from a Secret, against a real sshd."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

from plinth.git_auth import Credentials
from sync_controller.source import GitSource, Ref, SourceError
from tests.controller.harness import GitOpsRepo, Scenario
from tests.fixtures.sshd import GitSshServer
from tests.gitops_repos import configmap, kustomization


def test_ssh_deploy_key_fetches_and_unknown_host_is_refused(
        git_ssh_server: GitSshServer, tmp_path: Path) -> None:
    url = git_ssh_server.create_repository("ssh-refs.git")
    repo = GitOpsRepo(url, tmp_path / "work", git_ssh_server.git_env())
    sha = repo.commit({"README.md": "hello\n"})

    good = Credentials(identity=git_ssh_server.identity, known_hosts=git_ssh_server.known_hosts)
    artifact = GitSource(tmp_path / "cache", url, good).fetch(Ref(branch="main"))
    assert artifact.commit == sha and (artifact.path / "README.md").read_text() == "hello\n"

    stranger = Credentials(identity=git_ssh_server.identity, known_hosts="")
    with pytest.raises(SourceError) as refused:
        GitSource(tmp_path / "cache2", url, stranger).fetch(Ref(branch="main"))
    assert "Host key verification failed" in str(refused.value)
    assert "PRIVATE KEY" not in str(refused.value)


def test_gitrepository_over_ssh_syncs(scenario: Scenario, git_ssh_server: GitSshServer,
                                      tmp_path: Path) -> None:
    ns = scenario.namespace
    url = git_ssh_server.create_repository(f"{ns}.git")
    repo = GitOpsRepo(url, tmp_path / "work-ssh", git_ssh_server.git_env())
    sha = repo.commit({
        "app/kustomization.yaml": kustomization("a.yaml"),
        "app/a.yaml": configmap("a", {"v": "ssh"}, namespace=ns),
    })

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()
    scenario.kube.apply({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "deploy-key", "namespace": ns},
                         "data": {"identity": b64(git_ssh_server.identity),
                                  "known_hosts": b64(git_ssh_server.known_hosts)}})
    scenario.git_repository(url=url, secretRef={"name": "deploy-key"})
    scenario.kustomization("app", "./app")
    scenario.wait_applied("app", sha)
    a = scenario.configmap("a")
    assert a is not None and a["data"] == {"v": "ssh"}
