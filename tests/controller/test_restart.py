"""A controller killed in the middle of an apply converges after restart, leaving no orphan:
what it applied before dying is in the inventory, so a later commit still prunes it. A
controller restarted over an unchanged repository applies only what changed while it was
down: the stamps on the objects tell it what it applied."""
from __future__ import annotations

import json
from pathlib import Path

from plinth.localenv.gitdaemon import GitDaemon
from tests.controller.conftest import new_namespace
from sync_controller.applied_memory import STAMP_LABEL
from tests.controller.harness import ControllerProcess, GitOpsRepo, Kube, Scenario, wait_for
from tests.controller.test_unchanged import (changes, pod_template, reconciles, settled,
                                             writes_on)
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


def test_a_restarted_controller_applies_only_what_changed_while_it_was_down(
        kube: Kube, git_server: GitDaemon, tmp_path: Path) -> None:
    ns = new_namespace(kube, "rc")
    git_server.create_repository(f"{ns}.git")
    repo = GitOpsRepo(git_server.url(f"{ns}.git"), tmp_path / "work")
    scenario = Scenario(kube, ns, repo)
    settled(scenario)
    names = [f"t{i}" for i in range(20)]
    controller = ControllerProcess(kube.kubeconfig, tmp_path / "controller", ["rc-*"])
    controller.start()
    try:
        scenario.sync({"app/kustomization.yaml": kustomization(*(f"{n}.yaml" for n in names)),
                       **{f"app/{n}.yaml": pod_template(n, ns) for n in names}})
        stamps = {(kube.get("podtemplate", n, ns) or {})["metadata"]["labels"]
                  [STAMP_LABEL] for n in names}
        assert len(stamps) == len(names), stamps  # one digest per object
        controller.stop()

        # while it is down: one object edited, one deleted
        kube.run("patch", "podtemplate", "t3", "-n", ns, "--type=merge",
                 "-p", '{"template": {"metadata": {"labels": {"app": "by-hand"}}}}')
        kube.delete("podtemplate", "t7", ns, wait=True)
        before = writes_on(kube)
        controller.start()

        def healed() -> bool:
            t3, t7 = kube.get("podtemplate", "t3", ns), kube.get("podtemplate", "t7", ns)
            return bool(t3 and t3["template"]["metadata"]["labels"] == {"app": "t3"} and t7)
        wait_for(healed, 30, "the edit and the deletion made while it was down to be undone")
        wait_for(lambda: reconciles(controller, ns) >= 3, 30, "three reconciles")
        writes = changes(before, writes_on(kube))
        # t3 and t7 validated and applied, nothing else (the hand edits came before `before`)
        assert writes == {"APPLY dry-run": 2, "APPLY": 2}, writes

        # the spec is part of the stamp: a changed one applies everything again
        controller.stop()
        kube.run("patch", "kustomizations.plinth.dev", "app", "-n", ns, "--type=merge",
                 "-p", '{"spec": {"force": true}}')
        before = writes_on(kube)
        controller.start()
        wait_for(lambda: writes_on(kube).get("APPLY", 0) - before.get("APPLY", 0) >= len(names),
                 30, "every object to be applied again")
    finally:
        controller.stop()
        kube.run("delete", "namespace", ns, "--wait=false")
