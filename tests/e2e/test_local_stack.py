"""`pulumi up -s local` through the real engine: local control plane, git server, registry and
controller process are started, the scaffolded GitOps repo is pushed, and the controller syncs
it. A second `up` changes nothing, a config change previews exactly that change and reaches the
cluster through git, and `destroy` leaves no objects, repositories or processes behind."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import git
import pytest

from plinth.localenv.tools import find_tool
from tests.controller.harness import Kube, wait_for
from tests.fixtures.servers import PulumiBackend, require_tools

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _project(tmp_path: Path) -> Path:
    """The program, its Pulumi.yaml and stacks, in a scratch folder (the stack file gets an
    encryption salt, which must not land in the checkout)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "stacks", project / "stacks")
    (project / ".venv").symlink_to(ROOT / ".venv")  # Pulumi.yaml's virtualenv option
    stack_file = project / "stacks" / "Pulumi.local.yaml"
    lines = stack_file.read_text().splitlines(keepends=True)
    stack_file.write_text("".join(l for l in lines if not l.startswith("encryptionsalt:")))
    return project


def _steps(preview_json: str) -> list[tuple[str, str]]:
    doc = json.loads(preview_json)
    return sorted((s["op"], s["urn"].rsplit("::", 1)[-1]) for s in doc.get("steps", [])
                  if s["op"] != "same")


def _processes_under(path: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(path) in line]


def _appliers(obj: dict[str, Any]) -> set[str]:
    return {m["manager"] for m in obj["metadata"].get("managedFields", [])
            if m["operation"] == "Apply"}


def _image(kube: Kube) -> str:
    deploy: dict[str, Any] = kube.get("deployment", "web", "apps") or {}
    return str(((deploy.get("spec") or {}).get("template") or {}).get("spec", {})
               .get("containers", [{}])[0].get("image", ""))


def test_local_stack_up_sync_change_destroy(pulumi_backend: PulumiBackend,
                                            tmp_path: Path) -> None:
    require_tools("etcd", "kube-apiserver", "kube-controller-manager", "kubectl",
                  "docker-registry", "pulumi-resource-pulumi-python")
    project = _project(tmp_path)
    state = project / ".plinth" / "stacks" / "local"
    run = pulumi_backend.run
    run("stack", "init", "local", cwd=project)
    try:
        up = run("up", "--yes", "--skip-preview", cwd=project)
        assert "kubeconfig" in up.stdout and "[secret]" in up.stdout
        kube = Kube(find_tool("kubectl"), state / "control-plane" / "admin.kubeconfig")

        for kind, name, ns in (("crd", "kustomizations.plinth.dev", None),
                               ("clusterrolebinding", "plinth-controller", None),
                               ("deployment", "plinth-controller", "plinth-system"),
                               ("secret", "gitops-auth", "plinth-system"),
                               ("secret", "plinth-registry", "plinth-system"),
                               ("gitrepositories.plinth.dev", "gitops", "plinth-system"),
                               ("kustomizations.plinth.dev", "plinth-system", "plinth-system")):
            assert kube.get(kind, name, ns) is not None, f"{kind} {name} missing"
        gitops = git.Repo(state / "git" / "repos" / "gitops")
        outputs = json.loads(run("stack", "output", "--json", cwd=project).stdout)
        assert gitops.commit("main").hexsha == outputs["gitops_commit"]
        assert (state / "git" / "repos" / "app" / "HEAD").exists()

        # The controller (a local process: no kubelet here) syncs the pushed repo.
        registry = outputs["registry"]
        wait_for(lambda: _image(kube) == f"{registry}/plinth/web:1.0.0" and kube.get(
            "kustomizations.plinth.dev", "infrastructure", "plinth-system"), 90,
            "the apps of the GitOps repo to be applied")

        # After bootstrap git owns the controller's install, Pulumi owns the root objects.
        deployment = kube.get("deployment", "plinth-controller", "plinth-system") or {}
        assert "plinth" in _appliers(deployment)
        root = kube.get("kustomizations.plinth.dev", "plinth-system", "plinth-system") or {}
        assert "plinth" not in _appliers(root)
        # Nothing to do, even after the controller applied its own manifests from git.
        run("up", "--yes", "--expect-no-changes", cwd=project)

        config = ["config", "set", "--path", "plinth:gitops.apps[0].tag", "1.0.1"]
        run(*config, cwd=project)
        preview = run("preview", "--json", cwd=project).stdout
        assert _steps(preview) == [("update", "gitops-published")]
        run("up", "--yes", "--skip-preview", cwd=project)
        commits = list(gitops.iter_commits("main"))
        assert len(commits) == 2 and "apps/overlays/dev/kustomization.yaml" in str(
            commits[0].message)
        wait_for(lambda: _image(kube) == f"{registry}/plinth/web:1.0.1", 90,
                 "the new tag to reach the cluster through git")
    finally:
        run("destroy", "--yes", "--skip-preview", cwd=project)
    assert not _processes_under(state), _processes_under(state)
    assert not (state / "control-plane").exists()
    assert not (state / "git").exists() and not (state / "registry").exists()
