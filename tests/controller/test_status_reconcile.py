"""`plinth status` and `plinth reconcile` against the real API server and controller: a reconcile
request is handled at once (not at the hour-long interval), its outcome is the exit code, a broken
commit's reason is printed; status lists every object with its revision and readiness."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner, Result

from plinth.cli import cli
from tests.controller.harness import Scenario
from tests.gitops_repos import configmap, kustomization


def plinth(scenario: Scenario, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--kubeconfig", str(scenario.kube.kubeconfig)])


def hourly(scenario: Scenario, value: str) -> str:
    """A GitRepository and Kustomization that poll once an hour, applied at `value`."""
    sha = scenario.repo.commit(files(scenario, value))
    scenario.git_repository(interval="1h")
    scenario.kustomization("app", "./app", interval="1h", retryInterval="1h")
    scenario.wait_applied("app", sha)
    return sha


def files(scenario: Scenario, value: str) -> dict[str, object]:
    return {"app/kustomization.yaml": kustomization("a.yaml"),
            "app/a.yaml": configmap("a", {"v": value}, namespace=scenario.namespace)}


def test_reconcile_with_source_applies_a_new_commit_now(scenario: Scenario) -> None:
    hourly(scenario, "1")
    second = scenario.repo.commit(files(scenario, "2"))
    time.sleep(3)
    assert (scenario.configmap("a") or {}).get("data") == {"v": "1"}  # an hour to go
    result = plinth(scenario, "reconcile", "kustomization", "app", "-n", scenario.namespace,
                    "--with-source", "--timeout", "60s")
    assert result.exit_code == 0, result.output
    assert (scenario.configmap("a") or {}).get("data") == {"v": "2"}
    assert "source: " in result.stdout and second in result.stdout
    assert scenario.status("app")["lastAppliedRevision"].endswith(second)


def test_reconcile_of_a_broken_commit_exits_1_with_the_reason(scenario: Scenario) -> None:
    hourly(scenario, "1")
    scenario.repo.commit({"app/a.yaml": "kind: ConfigMap\nmetadata: {name: [\n"})
    result = plinth(scenario, "reconcile", "kustomization", "app", "-n", scenario.namespace,
                    "--with-source", "--timeout", "60s")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        f"failed: Kustomization {scenario.namespace}/app: BuildFailed: "), result.stderr
    assert "a.yaml" in result.stderr and "Traceback" not in result.output
    assert (scenario.configmap("a") or {}).get("data") == {"v": "1"}


def test_reconcile_refuses_a_suspended_or_missing_object(scenario: Scenario) -> None:
    hourly(scenario, "1")
    scenario.kustomization("app", "./app", interval="1h", suspend=True)
    suspended = plinth(scenario, "reconcile", "kustomization", "app", "-n", scenario.namespace)
    assert suspended.exit_code == 2 and "is suspended" in suspended.output, suspended.output
    missing = plinth(scenario, "reconcile", "gitrepository", "nope", "-n", scenario.namespace)
    assert missing.exit_code == 2 and "nope not found" in missing.output, missing.output


def test_status_lists_every_object_with_its_revision_and_fails_when_one_is_not_ready(
        scenario: Scenario) -> None:
    sha = hourly(scenario, "1")
    result = plinth(scenario, "status", "-n", scenario.namespace, "-o", "json")
    assert result.exit_code == 0, result.output
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    assert set(rows) == {("GitRepository", "repo"), ("Kustomization", "app")}
    assert rows[("Kustomization", "app")]["revision"] == f"main@sha1:{sha}"
    assert rows[("GitRepository", "repo")]["ready"] == "True"
    table = plinth(scenario, "status", "-n", scenario.namespace, "--kind", "Kustomization")
    assert table.exit_code == 0 and f"{scenario.namespace}/app" in table.stdout
    assert "GitRepository" not in table.stdout

    scenario.repo.commit({"app/a.yaml": "kind: ConfigMap\nmetadata: {name: [\n"})
    assert plinth(scenario, "reconcile", "kustomization", "app", "-n", scenario.namespace,
                  "--with-source").exit_code == 1
    failing = plinth(scenario, "status", "-n", scenario.namespace, "-o", "json")
    assert failing.exit_code == 1
    app = next(r for r in json.loads(failing.stdout) if r["kind"] == "Kustomization")
    assert app["ready"] == "False" and "a.yaml" in app["message"]


def test_status_watch_prints_an_object_again_when_it_changes(scenario: Scenario) -> None:
    hourly(scenario, "1")
    watcher = subprocess.Popen(
        [str(Path(sys.executable).parent / "plinth"), "status", "-n", scenario.namespace, "--watch",
         "-o", "json", "--kubeconfig", str(scenario.kube.kubeconfig)],
        stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    lines: queue.Queue[str] = queue.Queue()
    assert watcher.stdout is not None
    stdout = watcher.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        time.sleep(3)  # the first listing, and a poll with nothing new
        second = scenario.repo.commit(files(scenario, "2"))
        assert plinth(scenario, "reconcile", "kustomization", "app", "-n", scenario.namespace,
                      "--with-source").exit_code == 0
        deadline, seen = time.monotonic() + 20, ""
        while second not in seen or "Kustomization" not in seen:
            seen = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        assert json.loads(seen)["revision"] == f"main@sha1:{second}"
    finally:
        watcher.terminate()
        watcher.wait(10)
