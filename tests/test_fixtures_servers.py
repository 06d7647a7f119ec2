"""Each server fixture serves for real: the control plane answers kubectl, git accepts a push,
the registry enforces its htpasswd auth."""
from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import git
import pytest

from plinth.localenv.controlplane import LocalControlPlane
from plinth.localenv.gitdaemon import GitDaemon
from plinth.localenv.githttp import GitHttpServer
from plinth.localenv.registry import LocalRegistry
from plinth.localenv.tools import find_tool, tool_env


def test_control_plane_serves_the_api_and_runs_controllers(control_plane: LocalControlPlane) -> None:
    def kubectl(*args: str) -> str:
        return subprocess.run(
            [str(find_tool("kubectl")), f"--kubeconfig={control_plane.kubeconfig}", *args],
            text=True, capture_output=True, check=True, env=tool_env(),
        ).stdout

    assert "default" in kubectl("get", "namespaces", "-o", "name")
    kubectl("create", "namespace", "fixture-check")
    # The controller-manager's serviceaccount controller fills every new namespace. (`kubectl
    # wait` fails at once on an object that does not exist yet, so poll for it.)
    deadline = time.monotonic() + 60
    while "serviceaccount/default" not in kubectl("-n", "fixture-check", "get",
                                                  "serviceaccounts", "-o", "name"):
        assert time.monotonic() < deadline, "no default ServiceAccount after 60s"
        time.sleep(0.2)
    kubectl("delete", "namespace", "fixture-check", "--wait=true", "--timeout=60s")
    assert (control_plane.kubeconfig.stat().st_mode & 0o077) == 0


def test_git_server_accepts_push_and_serves_clone(git_server: GitDaemon, tmp_path: Path) -> None:
    git_server.create_repository("fixture.git")
    work = git.Repo.init(tmp_path / "work", initial_branch="main")
    (tmp_path / "work" / "README").write_text("hello\n")
    work.index.add(["README"])
    commit = work.index.commit("first")
    work.git.push(git_server.url("fixture.git"), "main")
    clone = git.Repo.clone_from(git_server.url("fixture.git"), tmp_path / "clone")
    assert clone.head.commit.hexsha == commit.hexsha


def test_registry_requires_its_credentials(oci_registry: LocalRegistry) -> None:
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{oci_registry.url}/v2/_catalog", timeout=5)
    assert denied.value.code == 401
    user, password = oci_registry.credentials()
    request = urllib.request.Request(f"{oci_registry.url}/v2/_catalog")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        # the registry is shared by the session: other tests may have pushed to it already
        assert isinstance(json.load(response)["repositories"], list)


def test_git_http_server_requires_credentials(git_http_server: GitHttpServer,
                                              tmp_path: Path) -> None:
    git_http_server.create_repository("http.git")
    url = git_http_server.url("http.git")
    denied = subprocess.run(["git", "ls-remote", url], capture_output=True, text=True,
                            env={**tool_env(), "GIT_TERMINAL_PROMPT": "0"})
    assert denied.returncode != 0
    user, password = git_http_server.credentials()
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    env = {**tool_env(), "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": "http.extraHeader",
           "GIT_CONFIG_VALUE_0": f"Authorization: Basic {auth}"}
    work = git.Repo.init(tmp_path / "w", initial_branch="main")
    (tmp_path / "w" / "f").write_text("x" * 2_000_000)  # over http.postBuffer: chunked push
    work.index.add(["f"])
    sha = work.index.commit("big").hexsha
    work.git.push(url, "main", env=env)
    listed = subprocess.run(["git", "ls-remote", url], capture_output=True, text=True, env=env,
                            check=True).stdout
    assert f"{sha}\trefs/heads/main" in listed
