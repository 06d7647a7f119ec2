"""Hostile and broken repositories, one per class of attack or accident: each ends with the
controller alive and within its memory limit, a refusal on the Kustomization within seconds that
names the file, the cluster unchanged, and a good commit afterwards applied at once."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.controller.harness import ControllerProcess, Scenario, wait_for
from tests.gitops_repos import Link, configmap, kustomization

# What the Deployment's memory limit leaves the controller beside kustomize's own bound.
CONTROLLER_LIMIT = 512 * 1024 * 1024


def _laughs(levels: int, fanout: int) -> str:
    """Anchors of anchors: a few hundred bytes that expand to fanout**levels nodes."""
    lines = ["a0: &a0 [lol]"]
    for level in range(1, levels):
        refs = ", ".join(f"*a{level - 1}" for _ in range(fanout))
        lines.append(f"a{level}: &a{level} [{refs}]")
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: laughs}\ndata:\n"
            + "".join(f"  {line}\n" for line in lines) + f"  all: *a{levels - 1}\n")


def _hostile(ns: str) -> dict[str, tuple[dict[str, Any], str, str]]:
    """name -> (files committed over the good tree, Ready reason, what the message names)."""
    listing = kustomization("a.yaml", "bad.yaml")
    return {
        "link-out-of-the-repository": (
            {"app/kustomization.yaml": listing, "app/bad.yaml": Link("/etc/passwd")},
            "", "bad.yaml"),
        "link-up-and-out": (
            {"app/kustomization.yaml": listing,
             "app/bad.yaml": Link("../../../../../../../etc/hostname")}, "", "bad.yaml"),
        "kustomization-not-utf8": (
            {"app/kustomization.yaml": b"resources:\n- a.yaml\n# \xff\xfe caf\xe9\n"},
            "BuildFailed", "kustomization.yaml"),
        "resource-not-utf8": (
            {"app/kustomization.yaml": listing,
             "app/bad.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xe9t\xe9}\n"},
            "BuildFailed", "bad.yaml"),
        "billion-laughs": (
            {"app/kustomization.yaml": listing, "app/bad.yaml": _laughs(9, 9)},
            "BuildFailed", "bad.yaml"),
        "self-referential-alias": (
            {"app/kustomization.yaml": listing,
             "app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loop}\n"
                             "data: &loop {self: *loop}\n"}, "BuildFailed", "bad.yaml"),
        "deep-nesting": (
            {"app/kustomization.yaml": listing,
             "app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\n"
                             "data: " + "[" * 5000 + "]" * 5000 + "\n"}, "BuildFailed", "bad.yaml"),
        "base-outside-the-repository": (
            {"app/kustomization.yaml": kustomization("a.yaml", "../../../etc")},
            "BuildFailed", "kustomization.yaml"),
        "remote-base": (
            {"app/kustomization.yaml": kustomization(
                "a.yaml", "https://github.com/example/repo//base?ref=main")},
            "BuildFailed", "kustomization.yaml"),
        "remote-base-scp-style": (  # fetched over ssh by kustomize, were it let through
            {"app/kustomization.yaml": kustomization("a.yaml", "deploy@git.acme.test:gitops")},
            "BuildFailed", "is a remote reference"),
        "not-yaml": (
            {"app/kustomization.yaml": listing,
             "app/bad.yaml": "kind: ConfigMap\nmetadata: {name: x\n  data: ["},
            "BuildFailed", "bad.yaml"),
        "invalid-object-in-a-new-namespace": (
            {"app/kustomization.yaml": kustomization("a.yaml", "ns.yaml", "bad.yaml"),
             "app/ns.yaml": {"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": f"{ns}-new"}},
             "app/bad.yaml": {"apiVersion": "v1", "kind": "Service",
                              "metadata": {"name": "web", "namespace": f"{ns}-new"},
                              "spec": {"ports": [{"port": "eighty"}]}}},
            "ValidationFailed", "bad.yaml"),
        "unknown-kind": (
            {"app/kustomization.yaml": listing,
             "app/bad.yaml": {"apiVersion": "example.com/v1", "kind": "Nothing",
                              "metadata": {"name": "x", "namespace": ns}}},
            "ValidationFailed", "bad.yaml"),
        "cluster-admin-for-everyone": (
            {"app/kustomization.yaml": listing,
             "app/bad.yaml": {"apiVersion": "rbac.authorization.k8s.io/v1",
                              "kind": "ClusterRoleBinding", "metadata": {"name": f"{ns}-all"},
                              "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                          "kind": "ClusterRole", "name": "cluster-admin"},
                              "subjects": [{"kind": "Group", "name": "system:authenticated",
                                            "apiGroup": "rbac.authorization.k8s.io"}]}},
            "ValidationFailed", "bad.yaml"),
    }


def _peak_rss(controller: ControllerProcess) -> int:
    assert controller.proc is not None and controller.proc.poll() is None, "controller died"
    for line in Path(f"/proc/{controller.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("case", sorted(_hostile("ns")))
def test_a_hostile_repository_is_refused_and_changes_nothing(
        scenario: Scenario, controller: ControllerProcess, case: str) -> None:
    ns = scenario.namespace
    files, reason, named = _hostile(ns)[case]
    good = {"app/kustomization.yaml": kustomization("a.yaml"),
            "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)}
    if case == "cluster-admin-for-everyone":  # a tenant: its own service account's rights
        _deployer(scenario)
        scenario.sync(good, interval="1h", serviceAccountName="deployer")
    else:
        scenario.sync(good, interval="1h")
    before = scenario.resource_versions()
    sha = scenario.repo.commit(files)

    def refused() -> dict[str, Any] | None:
        ready = scenario.ready("app")
        status = scenario.status("app")
        if ready.get("status") != "False":
            return None
        if str(status.get("lastAttemptedRevision", "")).endswith(sha) or \
                sha[:12] in ready.get("message", ""):
            return ready
        return None
    ready = wait_for(refused, 10, f"{case} to be refused")
    assert not reason or ready["reason"] == reason, ready
    assert named in ready["message"], ready
    assert len(ready["message"]) < 2000 and "goroutine" not in ready["message"], ready
    assert scenario.resource_versions() == before
    assert _peak_rss(controller) < CONTROLLER_LIMIT
    fixed = scenario.repo.commit({**good, "app/a.yaml": configmap("a", {"v": "2"}, namespace=ns)},
                                 remove=tuple(p for p in files if p not in good))
    scenario.wait_applied("app", fixed, timeout=30)
    assert (scenario.configmap("a") or {}).get("data") == {"v": "2"}


def _deployer(scenario: Scenario) -> None:
    from tests.controller.test_service_account import _tenant
    _tenant(scenario.kube, scenario.namespace)
