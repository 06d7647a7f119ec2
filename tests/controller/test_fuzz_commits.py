"""Random mutations of a good repository, pushed to the real git server, end every time in
either the applied revision or a written refusal, and a refusal leaves the cluster unchanged."""
from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.controller.harness import Scenario, wait_for
from tests.gitops_repos import Link, configmap, kustomization

pytestmark = pytest.mark.e2e
FILES = ("app/kustomization.yaml", "app/a.yaml", "app/b.yaml")


def _good(ns: str) -> dict[str, Any]:
    return {"app/kustomization.yaml": kustomization("a.yaml", "b.yaml"),
            "app/a.yaml": configmap("a", {"v": "1"}, namespace=None),
            "app/b.yaml": [configmap("b", {"v": "1"}, namespace=ns),
                           {"apiVersion": "v1", "kind": "Service",
                            "metadata": {"name": "web", "namespace": ns},
                            "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}]}


names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=70)
values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                   st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                       st.integers(), max_size=2))
mutations = st.one_of(
    st.tuples(st.just("bytes"), st.sampled_from(FILES), st.binary(max_size=300)),
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.floats(0.0, 1.0)),
    st.tuples(st.just("remove"), st.sampled_from(FILES), st.none()),
    st.tuples(st.just("value"), st.sampled_from(("data", "metadata", "kind", "apiVersion")),
              values),
    st.tuples(st.just("add"), st.sampled_from(("ConfigMap", "Secret", "Service", "Widget",
                                               "CustomResourceDefinition")), names),
    st.tuples(st.just("link"), st.sampled_from(FILES),
              st.sampled_from(("/etc/passwd", "../../../../../etc/hostname", "b.yaml", "/",
                               "..", "missing.yaml"))),
)


def _mutate(ns: str, good: dict[str, Any], kind: str, what: Any, arg: Any
            ) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The files to write and the files to remove for one mutation of `good`."""
    if kind == "bytes":
        return {what: arg}, ()
    if kind == "truncate":
        text = _text(good[what])
        return {what: text[:int(len(text) * arg)]}, ()
    if kind == "remove":
        return {}, (what,)
    if kind == "value":
        changed = configmap("a", {"v": "1"}, namespace=None)
        changed[what] = arg
        return {"app/a.yaml": changed}, ()
    if kind == "add":
        obj = {"apiVersion": "v1" if what in ("ConfigMap", "Secret", "Service") else
               "example.com/v1", "kind": what, "metadata": {"name": arg, "namespace": ns}}
        return {"app/kustomization.yaml": kustomization("a.yaml", "b.yaml", "c.yaml"),
                "app/c.yaml": obj}, ()
    return {what: Link(arg)}, ()


def _text(content: Any) -> str:
    if isinstance(content, list):
        return yaml.safe_dump_all(content, sort_keys=False)
    return yaml.safe_dump(content, sort_keys=False)


def _outcome(scenario: Scenario, sha: str) -> dict[str, Any] | None:
    """Ready once the controller has settled on `sha`: applied, refused, or its source
    refused it (then the commit is named in the message)."""
    status = scenario.status("app")
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    ready = conditions.get("Ready", {})
    if conditions.get("Reconciling", {}).get("status") == "True":
        return None
    attempted = str(status.get("lastAttemptedRevision", "")).endswith(sha)
    if attempted or (ready.get("status") == "False" and sha[:12] in ready.get("message", "")):
        return {"status": status, "ready": ready}
    return None


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=mutations)
def test_any_mutation_is_applied_or_refused_without_a_change(
        scenario: Scenario, mutation: tuple[str, Any, Any]) -> None:
    ns = scenario.namespace
    good = _good(ns)
    if not scenario.status("app"):
        scenario.sync(good, interval="1h")  # no retry mid-picture (see test_refused_commit)
    before = scenario.resource_versions()
    write, remove = _mutate(ns, good, *mutation)
    sha = scenario.repo.commit(write, remove=remove)
    settled = wait_for(lambda: _outcome(scenario, sha), 60, f"an outcome for {mutation!r}")
    ready = settled["ready"]
    if ready.get("status") == "True":
        assert str(settled["status"]["lastAppliedRevision"]).endswith(sha)
    else:
        assert ready.get("reason") and ready.get("message"), ready
        assert scenario.resource_versions() == before, (mutation, ready)
    # back to the good tree for the next example
    extra = scenario.repo.work / "app" / "c.yaml"
    restored = scenario.repo.commit(
        good, remove=("app/c.yaml",) if extra.exists() or extra.is_symlink() else ())
    scenario.wait_applied("app", restored)
