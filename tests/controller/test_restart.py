"""A controller killed in the middle of an apply converges after restart, leaving no orphan:
what it applied before dying is in the inventory, so a later commit still prunes it."""
from __future__ import annotations

import json
from pathlib import Path

from plinth.localenv.gitdaemon import GitDaemon
from tests.controller.conftest import new_namespace
from tests.controller.harness import ControllerProcess, GitOpsRepo, Kube, Scenario, wait_for
from tests.gitops_repos import configmap, kustomization

COUNT = 300


def _owned(kube: Kube, ns: str) -> set[str]:
    out = kube.run("get", "configmaps", "-n", ns, "-l", "kustomize.plinth.dev/name=app",
                   "-o", "json").stdout
    return {item["metadata"]["name"] for item in json.loads(out)["items"]}


def test_restart_mid_apply_converges_without_orphans(kube: Kube, git_server: GitDaemon,
                                                     tmp_path: Path) -> None:
    ns = new_namespace(kube, "rs")  # outside the session controller's `ct-*`
    git_server.create_repository(f"{ns}.git")
    repo = GitOpsRepo(git_server.url(f"{ns}.git"), tmp_path / "work")
    names = [f"cm-{i:03d}" for i in range(COUNT)]
    repo.commit({"app/kustomization.yaml": kustomization(*(f"{n}.yaml" for n in names)),
                 **{f"app/{n}.yaml": configmap(n, {"i": n}, namespace=ns) for n in names}})
    scenario = Scenario(kube, ns, repo)
    scenario.git_repository()
    scenario.kustomization("app", "./app", interval="2s")

    controller = ControllerProcess(kube.kubeconfig, tmp_path / "controller", ["rs-*"])
    controller.start()
    wait_for(lambda: len(_owned(kube, ns)) > 0, 60, "the apply to begin", every=0.05)
    controller.stop(kill=True)
    assert len(_owned(kube, ns)) < COUNT, "the apply finished before the kill; raise COUNT"

    kept = names[:10]
    final = repo.commit({"app/kustomization.yaml": kustomization(*(f"{n}.yaml" for n in kept))},
                        remove=tuple(f"app/{n}.yaml" for n in names[10:]))
    controller.start()
    try:
        scenario.wait_applied("app", final, timeout=120)
        wait_for(lambda: _owned(kube, ns) == set(kept), 30, "only the kept objects to remain")
        for line in controller.log.read_text().splitlines():
            json.loads(line)  # every log line is one JSON object
    finally:
        controller.stop()
        kube.run("delete", "namespace", ns, "--wait=false")
