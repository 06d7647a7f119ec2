"""`plinth wait`: against the real API server and controller, it returns 0 once a revision is
applied and Ready, 1 with the controller's reason on a broken commit, 1 naming what it waited
for on a timeout; against a real Gitea it reads the commit statuses instead."""
from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from plinth.cli import cli
from plinth.forge import ForgeClient, RepoRef, StatusState
from plinth.localenv.forge import LocalForge
from plinth.wait import Verdict, kustomization_checks, revision_matches
from tests.controller.harness import Scenario
from tests.gitops_repos import configmap, kustomization

TOKEN_ENV = "PLINTH_TEST_FORGE_TOKEN"
CONTEXT = "plinth/local/apps"


def plinth_wait(scenario: Scenario, sha: str, *extra: str) -> Result:
    return CliRunner().invoke(cli, [
        "wait", "--revision", sha, "--kubeconfig", str(scenario.kube.kubeconfig),
        "--kustomization", f"{scenario.namespace}/app", *extra])


def app_files(scenario: Scenario, value: str) -> dict[str, object]:
    return {"app/kustomization.yaml": kustomization("a.yaml"),
            "app/a.yaml": configmap("a", {"v": value}, namespace=scenario.namespace)}


def test_wait_returns_0_once_the_revision_is_applied_and_ready(scenario: Scenario) -> None:
    sha = scenario.repo.commit(app_files(scenario, "1"))
    scenario.git_repository()
    scenario.kustomization("app", "./app")
    result = plinth_wait(scenario, sha[:12], "--timeout", "60s")
    assert result.exit_code == 0, result.output
    assert f"{scenario.namespace}/app: applied main@sha1:{sha} and Ready" in result.stdout
    assert (scenario.configmap("a") or {}).get("data") == {"v": "1"}


def test_wait_exits_1_with_the_reason_on_a_broken_commit(scenario: Scenario) -> None:
    scenario.sync(app_files(scenario, "1"))
    broken = scenario.repo.commit({"app/a.yaml": "kind: ConfigMap\nmetadata: {name: [\n"})
    result = plinth_wait(scenario, broken, "--timeout", "60s")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"failed: {scenario.namespace}/app: BuildFailed: "), \
        result.stderr
    assert "a.yaml" in result.stderr and "Traceback" not in result.output


def test_wait_times_out_naming_what_it_waits_for(scenario: Scenario) -> None:
    applied = scenario.sync(app_files(scenario, "1"))
    result = plinth_wait(scenario, "0123456789abcdef", "--timeout", "2s")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        f"failed: timed out after 2s waiting for {scenario.namespace}/app: last applied "
        f"main@sha1:{applied}, Ready=True"), result.stderr


def test_wait_for_a_kustomization_that_does_not_exist_times_out(scenario: Scenario) -> None:
    result = CliRunner().invoke(cli, [
        "wait", "--revision", "0123456", "--kubeconfig", str(scenario.kube.kubeconfig),
        "--kustomization", f"{scenario.namespace}/nope", "--timeout", "1s"])
    assert result.exit_code == 1
    assert f"{scenario.namespace}/nope: no such Kustomization (yet)" in result.stderr


def test_revisions_match_by_whole_or_abbreviated_sha() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert revision_matches(f"main@sha1:{sha}", sha)
    assert revision_matches(f"main@sha1:{sha}", sha[:7].upper())
    assert revision_matches(sha, sha[:10])
    assert not revision_matches(f"main@sha1:{sha}", sha[:6])
    assert not revision_matches(f"main@sha1:{sha}", "1234567")
    assert not revision_matches("", sha)


def test_without_names_every_kustomization_counts() -> None:
    def obj(ns: str, applied: str) -> dict[str, object]:
        return {"metadata": {"namespace": ns, "name": "apps"},
                "status": {"lastAppliedRevision": f"main@sha1:{applied}",
                           "conditions": [{"type": "Ready", "status": "True"}]}}
    checks = kustomization_checks([obj("b", "1234567aa"), obj("a", "1234567bb")], [],
                                  "1234567a")
    assert [(c.what, c.verdict) for c in checks] == [("a/apps", Verdict.WAITING),
                                                     ("b/apps", Verdict.DONE)]
    assert kustomization_checks([], [], "1234567")[0].verdict is Verdict.WAITING


# -- from the forge's commit statuses -----------------------------------------------------------


@pytest.fixture
def forge_commit(forge: LocalForge, request: pytest.FixtureRequest
                 ) -> Iterator[tuple[ForgeClient, RepoRef, str]]:
    """A repository with one commit, on which the test posts statuses."""
    client = forge.client()
    client.ensure_organization("plinth-wait")
    ref = RepoRef("plinth-wait", re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:80])
    client.delete_repository(ref)
    client.create_repository(ref, auto_init=True)
    yield client, ref, client.resolve(ref, "main")
    client.delete_repository(ref)


def forge_wait(forge: LocalForge, ref: RepoRef, sha: str, *extra: str) -> Result:
    return CliRunner(env={TOKEN_ENV: forge.token()}).invoke(cli, [
        "wait", "--revision", sha, "--forge-url", forge.url, "--repository", str(ref),
        "--token-env", TOKEN_ENV, "--context", CONTEXT, *extra])


def test_forge_mode_returns_0_when_the_status_turns_success(
        forge: LocalForge, forge_commit: tuple[ForgeClient, RepoRef, str]) -> None:
    client, ref, sha = forge_commit
    client.post_status(ref, sha, StatusState.PENDING, CONTEXT, description="applying")
    later = threading.Timer(1.5, lambda: client.post_status(
        ref, sha, StatusState.SUCCESS, CONTEXT, description="Applied revision"))
    later.start()
    try:
        result = forge_wait(forge, ref, sha, "--timeout", "30s")
    finally:
        later.join()
    assert result.exit_code == 0, result.output
    assert f"{CONTEXT}: Applied revision" in result.stdout


def test_forge_mode_exits_1_with_the_description_on_failure(
        forge: LocalForge, forge_commit: tuple[ForgeClient, RepoRef, str]) -> None:
    client, ref, sha = forge_commit
    client.post_status(ref, sha, StatusState.FAILURE, CONTEXT,
                       description="BuildFailed: app/a.yaml: not YAML")
    result = forge_wait(forge, ref, sha, "--timeout", "30s")
    assert result.exit_code == 1, result.output
    assert result.stderr == f"failed: {CONTEXT}: failure: BuildFailed: app/a.yaml: not YAML\n"


def test_forge_mode_times_out_without_a_status(
        forge: LocalForge, forge_commit: tuple[ForgeClient, RepoRef, str]) -> None:
    _, ref, sha = forge_commit
    result = forge_wait(forge, ref, sha, "--timeout", "1s")
    assert result.exit_code == 1, result.output
    assert f"timed out after 1s waiting for {CONTEXT}: no status yet" in result.stderr


def test_forge_mode_needs_a_context(forge: LocalForge) -> None:
    result = CliRunner(env={TOKEN_ENV: "x"}).invoke(cli, [
        "wait", "--revision", "0123456", "--forge-url", forge.url, "--repository", "a/b",
        "--token-env", TOKEN_ENV])
    assert result.exit_code == 2
    assert "name the commit status to wait for with --context" in result.stderr
