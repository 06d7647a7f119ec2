"""An unchanged repository costs next to nothing: once a revision is applied, later reconciles
list the applied objects (one request per kind and namespace) and apply nothing, as the API
server's own request counters show; an object edited or deleted by hand is still put back,
and only that object is validated and applied again. Writes are counted on named objects
(scope "resource"): the namespace controller empties other tests' namespaces by collection."""
from __future__ import annotations

from typing import Any

from tests.controller.harness import (ControllerProcess, Kube, Scenario, api_requests,
                                      wait_for)
from tests.gitops_repos import kustomization

def settled(scenario: Scenario) -> None:
    """No PodTemplate of an earlier test is left (its namespace's deletes would count here)."""
    def none_left() -> bool:
        return not scenario.kube.run("get", "podtemplates", "-A", "-o", "name").stdout.strip()
    wait_for(none_left, 120, "earlier tests' PodTemplates to be gone")


def counted(controller: ControllerProcess, metric: str, namespace: str, name: str = "app"
            ) -> float:
    """A per-Kustomization count from the controller's own /metrics."""
    _, text = controller.http("/metrics")
    for line in text.splitlines():
        if line.startswith(f"{metric}{{") and 'kind="Kustomization"' in line and \
                f'namespace="{namespace}"' in line and f'name="{name}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def reconciles(controller: ControllerProcess, namespace: str) -> float:
    """How many times the controller reconciled Kustomization `app` (its own histogram)."""
    return counted(controller, "plinth_reconcile_duration_seconds_count", namespace)


def writes_on(kube: Kube) -> dict[str, float]:
    """Requests on single PodTemplates, reads aside."""
    return {verb: n for verb, n in api_requests(kube, "podtemplates", "resource").items()
            if verb != "GET"}


def changes(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {v: n - before.get(v, 0) for v, n in after.items() if n != before.get(v, 0)}


def pod_template(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PodTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}


def test_a_no_change_reconcile_lists_and_applies_nothing(scenario: Scenario,
                                                          controller: ControllerProcess
                                                          ) -> None:
    ns = scenario.namespace
    settled(scenario)
    names = [f"t{i}" for i in range(20)]
    scenario.sync({"app/kustomization.yaml": kustomization(*(f"{n}.yaml" for n in names)),
                   **{f"app/{n}.yaml": pod_template(n, ns) for n in names}}, interval="2s")
    kube = scenario.kube
    # PodTemplates: a kind no other test applies, so the API server's counters are this test's
    before, done = writes_on(kube), reconciles(controller, ns)
    wait_for(lambda: reconciles(controller, ns) >= done + 3, 30, "three more reconciles")
    writes = changes(before, writes_on(kube))
    assert writes == {}, writes

    edited = writes_on(kube)
    kube.run("patch", "podtemplate", "t3", "-n", ns, "--type=merge",
             "-p", '{"template": {"metadata": {"labels": {"app": "by-hand"}}}}')
    kube.delete("podtemplate", "t7", ns, wait=True)

    def healed() -> bool:
        t3, t7 = kube.get("podtemplate", "t3", ns), kube.get("podtemplate", "t7", ns)
        return bool(t3 and t3["template"]["metadata"]["labels"] == {"app": "t3"} and t7)
    wait_for(healed, 15, "the hand edit and the deleted object to be put back")
    done = reconciles(controller, ns)
    wait_for(lambda: reconciles(controller, ns) >= done + 3, 30, "three more reconciles")
    healing = changes(edited, writes_on(kube))
    # t3 and t7 each validated once and applied once, nothing else (the hand edits
    # themselves: one PATCH, one DELETE)
    assert healing == {"PATCH": 1, "DELETE": 1, "APPLY dry-run": 2, "APPLY": 2}, healing


def test_a_scaled_deployment_is_put_back(scenario: Scenario) -> None:
    """`kubectl scale` writes the scale subresource: that is an edit, not a status."""
    ns = scenario.namespace
    labels = {"app": "web"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "web", "namespace": ns},
                  "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels}, "spec": {
                               "containers": [{"name": "web", "image": "busybox"}]}}}}
    scenario.sync({"app/kustomization.yaml": kustomization("web.yaml"),
                   "app/web.yaml": deployment}, interval="2s")
    scenario.kube.run("scale", "deployment", "web", "-n", ns, "--replicas=5")
    try:
        wait_for(lambda: (scenario.kube.get("deployment", "web", ns) or {})["spec"]["replicas"]
                 == 2, 15, "the replicas from git again")
    except AssertionError as err:
        live = scenario.kube.get("deployment", "web", ns) or {}
        raise AssertionError(f"{err}; managedFields: {live['metadata'].get('managedFields')}; "
                             f"status: {scenario.status('app')}") from None


def test_a_new_revision_validates_and_applies_only_what_it_changes(scenario: Scenario) -> None:
    ns = scenario.namespace
    settled(scenario)
    names = [f"t{i}" for i in range(20)]
    files: dict[str, object] = {
        "app/kustomization.yaml": kustomization(*(f"{n}.yaml" for n in names)),
        **{f"app/{n}.yaml": pod_template(n, ns) for n in names}}
    scenario.sync(files, interval="2s")
    kube = scenario.kube
    before = writes_on(kube)
    changed = pod_template("t5", ns)
    changed["template"]["metadata"]["labels"]["tier"] = "new"
    kept = [n for n in names if n != "t9"]
    sha = scenario.repo.commit({
        "app/kustomization.yaml": kustomization(*(f"{n}.yaml" for n in kept)),
        "app/t5.yaml": changed}, remove=("app/t9.yaml",))
    scenario.wait_applied("app", sha)
    assert kube.get("podtemplate", "t9", ns) is None
    writes = changes(before, writes_on(kube))
    assert writes == {"APPLY dry-run": 1, "APPLY": 1, "DELETE": 1}, writes
    t5 = kube.get("podtemplate", "t5", ns) or {}
    assert t5["template"]["metadata"]["labels"] == {"app": "t5", "tier": "new"}


def test_a_commit_that_changes_nothing_a_kustomization_reads_renders_nothing_again(
        scenario: Scenario, controller: ControllerProcess) -> None:
    """Many Kustomizations on one repository: each renders again only when a commit changes
    what its last render read (its folder, the bases it uses), and still reports the new
    revision as applied."""
    ns, repo = scenario.namespace, scenario.repo
    sha = repo.commit({
        "a/kustomization.yaml": kustomization("a.yaml", "../base"),
        "a/a.yaml": pod_template("a", ns),
        "base/kustomization.yaml": kustomization("base.yaml"),
        "base/base.yaml": pod_template("base", ns),
        "b/kustomization.yaml": kustomization("b.yaml"),
        "b/b.yaml": pod_template("b", ns)})
    scenario.git_repository()
    for name in ("a", "b"):
        scenario.kustomization(name, f"./{name}", interval="1h")
    for name in ("a", "b"):
        scenario.wait_applied(name, sha)

    def renders() -> tuple[float, float]:
        return (counted(controller, "plinth_renders_total", ns, "a"),
                counted(controller, "plinth_renders_total", ns, "b"))

    def commit(files: dict[str, object]) -> tuple[float, float]:
        before = renders()
        sha = repo.commit(files)
        for name in ("a", "b"):
            scenario.wait_applied(name, sha)
        after = renders()
        return after[0] - before[0], after[1] - before[1]

    assert renders() == (1, 1)
    b = pod_template("b", ns)
    b["template"]["metadata"]["labels"]["tier"] = "2"
    assert commit({"b/b.yaml": b}) == (0, 1)
    assert commit({"README.md": "# elsewhere\n", "c/other.yaml": pod_template("c", ns)}) == (0, 0)
    base = pod_template("base", ns)
    base["template"]["metadata"]["labels"]["tier"] = "2"
    assert commit({"base/base.yaml": base}) == (1, 0)
    assert commit({"a/new-file-unread.yaml": pod_template("x", ns)}) == (1, 0)  # beneath a/
    live = scenario.kube.get("podtemplate", "base", ns) or {}
    assert live["template"]["metadata"]["labels"] == {"app": "base", "tier": "2"}
    assert scenario.kube.get("podtemplate", "x", ns) is None  # not in a's kustomization
