"""Publishing the scaffolded repo to a real git server over authenticated HTTP."""
from __future__ import annotations

import os
from pathlib import Path

import git
import pytest

from plinth.git_auth import Credentials
from plinth.gitops_publish import PublishError, publish
from plinth.localenv.githttp import GitHttpServer
from plinth.repospec import AppSpec, EnvironmentSpec, RepoSpec


def _spec(tag: str = "1.0.0") -> RepoSpec:
    return RepoSpec(cluster="local", environments=[EnvironmentSpec(name="dev")],
                    apps=[AppSpec(name="web", image="plinth/web", tag=tag)])


@pytest.fixture
def remote(git_http_server: GitHttpServer, request: pytest.FixtureRequest
           ) -> tuple[str, Credentials]:
    name = f"{request.node.name}.git"
    git_http_server.create_repository(name)
    user, password = git_http_server.credentials()
    return git_http_server.url(name), Credentials(username=user, password=password)


def _clone(url: str, creds: Credentials, where: Path) -> git.Repo:
    authed = url.replace("http://", f"http://{creds.username}:{creds.password}@")
    return git.Repo.clone_from(authed, where, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})


def test_publish_is_idempotent_and_one_change_is_one_commit(
        remote: tuple[str, Credentials], tmp_path: Path) -> None:
    url, creds = remote
    first = publish(_spec(), url, "main", creds, "bootstrap")
    assert first.changed and "clusters/local/kustomization.yaml" in first.changed
    again = publish(_spec(), url, "main", creds, "bootstrap")
    assert (again.commit, again.changed) == (first.commit, [])
    bumped = publish(_spec("1.1.0"), url, "main", creds, "update")
    # the commit holds the overlay and the scaffold manifest that records its new hash
    assert bumped.changed == [".plinth/scaffold.json", "apps/overlays/dev/kustomization.yaml"]
    history = list(_clone(url, creds, tmp_path / "c").iter_commits("main"))
    assert [c.hexsha for c in history] == [bumped.commit, first.commit]
    assert "updated apps/overlays/dev/kustomization.yaml" in str(history[0].message)


def test_human_commits_are_kept_and_generated_files_rebased_on_top(
        remote: tuple[str, Credentials], tmp_path: Path) -> None:
    url, creds = remote
    publish(_spec(), url, "main", creds, "bootstrap")
    human = _clone(url, creds, tmp_path / "human")
    (tmp_path / "human" / "NOTES.md").write_text("ours\n")
    human.index.add(["NOTES.md"])
    human_commit = human.index.commit("a person's commit").hexsha
    human.git.push("origin", "main")

    result = publish(_spec("2.0.0"), url, "main", creds, "update")
    history = [c.hexsha for c in _clone(url, creds, tmp_path / "after").iter_commits("main")]
    assert history[:2] == [result.commit, human_commit]


def test_edited_generated_file_stops_with_its_name(remote: tuple[str, Credentials],
                                                   tmp_path: Path) -> None:
    url, creds = remote
    first = publish(_spec(), url, "main", creds, "bootstrap")
    human = _clone(url, creds, tmp_path / "human")
    edited = tmp_path / "human" / "apps" / "overlays" / "dev" / "kustomization.yaml"
    edited.write_text(edited.read_text() + "# tuned by hand\n")
    human.index.add([str(edited)])
    human.index.commit("hand edit")
    human.git.push("origin", "main")

    with pytest.raises(PublishError, match="apps/overlays/dev/kustomization.yaml"):
        publish(_spec("3.0.0"), url, "main", creds, "update")
    tip = _clone(url, creds, tmp_path / "after").head.commit
    assert tip.message.startswith("hand edit") and tip.parents[0].hexsha == first.commit


def test_wrong_password_fails_without_leaking_it(remote: tuple[str, Credentials]) -> None:
    url, creds = remote
    wrong = Credentials(username=creds.username, password="wrong-s3cret-value")
    with pytest.raises(PublishError) as err:
        publish(_spec(), url, "main", wrong, "bootstrap")
    assert "wrong-s3cret-value" not in str(err.value)
