"""The dynamic providers driven directly, as the engine would: create, diff, update, delete
against a real git server and real local servers."""
from __future__ import annotations

from pathlib import Path

import git

from components.gitops_repo import GitOpsRepoProvider
from components.local_servers import BareRepositoryProvider, LocalServerProvider
from plinth.localenv.registry import LocalRegistry
from plinth.repospec import AppSpec, EnvironmentSpec, RepoSpec


def _spec(tag: str) -> dict[str, object]:
    return RepoSpec(cluster="c1", environments=[EnvironmentSpec(name="dev")],
                    apps=[AppSpec(name="web", image="plinth/web", tag=tag)]).model_dump(mode="json")


def test_git_server_repository_and_gitops_publish_lifecycle(tmp_path: Path) -> None:
    servers, repos, gitops = LocalServerProvider(), BareRepositoryProvider(), GitOpsRepoProvider()
    server_props = {"kind": "git", "state_dir": str(tmp_path / "git")}
    server = servers.create(server_props)
    try:
        assert server.outs["endpoint"].startswith("http://127.0.0.1:")
        assert not servers.diff(server.id, server.outs, server_props).changes

        repo_props = {"server_state_dir": server_props["state_dir"], "name": "gitops",
                      "branch": "main"}
        repo = repos.create(repo_props)
        assert (Path(repo.id) / "HEAD").exists()
        moved = repos.diff(repo.id, repo.outs, {**repo_props, "name": "other"})
        assert moved.changes and moved.replaces == ["name"]

        props = {"spec": _spec("1.0.0"), "url": repo.outs["url"], "branch": "main",
                 "username": server.outs["username"], "password": server.outs["password"]}
        created = gitops.create(props)
        assert "password" not in created.outs
        bare = git.Repo(repo.id)
        assert bare.commit("main").hexsha == created.outs["commit"]
        assert not gitops.diff(created.id, created.outs, props).changes

        bumped = {**props, "spec": _spec("1.1.0")}
        assert gitops.diff(created.id, created.outs, bumped).changes
        updated = gitops.update(created.id, created.outs, bumped)
        assert updated.outs["changed"] == [".plinth/scaffold.json",
                                           "apps/overlays/dev/kustomization.yaml"]
        assert bare.commit("main").parents[0].hexsha == created.outs["commit"]

        repos.delete(repo.id, repo.outs)
        assert not Path(repo.id).exists()
    finally:
        servers.delete(server.id, server.outs)
    assert not (tmp_path / "git").exists()


def test_stopped_server_is_an_update_that_restarts_it(tmp_path: Path) -> None:
    servers = LocalServerProvider()
    props = {"kind": "registry", "state_dir": str(tmp_path / "registry")}
    created = servers.create(props)
    try:
        LocalRegistry(tmp_path / "registry").stop()  # as after a reboot
        diff = servers.diff(created.id, created.outs, props)
        assert diff.changes and not diff.replaces
        updated = servers.update(created.id, created.outs, props)
        assert updated.outs["endpoint"] == created.outs["endpoint"]  # same port, same data
        assert LocalRegistry(tmp_path / "registry").running()
    finally:
        servers.delete(created.id, created.outs)
