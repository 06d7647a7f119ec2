"""A real controller process per test session, watching namespaces `ct-*`; each test gets its
own namespace and GitOps repository, so tests never see each other's objects."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from plinth.localenv.controlplane import LocalControlPlane
from plinth.localenv.gitdaemon import GitDaemon
from tests.controller.forge_repo import on_forge  # noqa: F401 (a fixture for every module)
from tests.controller.harness import ControllerProcess, GitOpsRepo, Kube, Scenario

CRDS = Path(__file__).resolve().parents[2] / "sync_controller" / "crds"


@pytest.fixture(scope="session")
def kube(control_plane: LocalControlPlane, kubectl: Path) -> Kube:
    kube = Kube(kubectl, control_plane.kubeconfig)
    kube.run("apply", "--server-side", "-f", str(CRDS))
    kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS))
    return kube


@pytest.fixture(scope="session")
def controller(kube: Kube, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[ControllerProcess]:
    process = ControllerProcess(kube.kubeconfig, tmp_path_factory.mktemp("controller"),
                                ["ct-*"])
    process.start()
    yield process
    process.stop()


def new_namespace(kube: Kube, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(4)}"
    kube.run("create", "namespace", name)
    return name


@pytest.fixture
def scenario(kube: Kube, controller: ControllerProcess, git_server: GitDaemon,
             tmp_path: Path) -> Iterator[Scenario]:
    namespace = new_namespace(kube, "ct")
    git_server.create_repository(f"{namespace}.git")
    yield Scenario(kube, namespace, GitOpsRepo(git_server.url(f"{namespace}.git"),
                                               tmp_path / "work"))
    if controller.proc is not None and controller.proc.poll() is not None:
        pytest.fail(f"the controller died:\n{controller.log.read_text()[-4000:]}")
    kube.run("delete", "namespace", namespace, "--wait=false")
