"""Webhook receivers: a signed push wakes the GitRepository at once (its interval is an hour),
and nothing else does: a bad or missing signature, another event, another branch, an unknown
path, an oversized body, or a flood of forged requests."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from tests.controller.harness import ControllerProcess, Scenario, wait_for
from tests.gitops_repos import configmap, kustomization

TOKEN = "s3cret-webhook-token"


def _post(controller: ControllerProcess, path: str, body: bytes,
          headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{controller.receiver_port}{path}",
                                     data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _signed(body: bytes, event: str = "push", key: str = TOKEN) -> dict[str, str]:
    digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": event, "X-Hub-Signature-256": f"sha256={digest}",
            "Content-Type": "application/json"}


def _receiver(scenario: Scenario, type_: str = "github") -> str:
    ns = scenario.namespace
    scenario.kube.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook", "namespace": ns},
         "data": {"token": base64.b64encode(TOKEN.encode()).decode()}},
        {"apiVersion": "plinth.dev/v1", "kind": "Receiver",
         "metadata": {"name": "push", "namespace": ns},
         "spec": {"type": type_, "secretRef": {"name": "hook"},
                  "resources": [{"kind": "GitRepository", "name": "repo"}]}})

    def path() -> str | None:
        ready = scenario.ready("push", "receivers.plinth.dev")
        status = scenario.status("push", "receivers.plinth.dev")
        return str(status["webhookPath"]) if ready.get("status") == "True" else None
    return wait_for(path, 30, "the Receiver to be ready")


def _slow_sync(scenario: Scenario) -> str:
    """A repository fetched every hour: only a webhook can bring a new commit in time."""
    ns = scenario.namespace
    sha = scenario.repo.commit({"app/kustomization.yaml": kustomization("a.yaml"),
                                "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)})
    scenario.git_repository(interval="1h")
    scenario.kustomization("app", "./app", interval="1h")
    scenario.wait_applied("app", sha)
    return sha


def _push(scenario: Scenario, value: str, branch: str = "main") -> tuple[str, bytes]:
    sha = scenario.repo.commit({"app/a.yaml": configmap("a", {"v": value},
                                                        namespace=scenario.namespace)})
    body = json.dumps({"ref": f"refs/heads/{branch}", "after": sha}).encode()
    return sha, body


def _not_applied_within(scenario: Scenario, sha: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert not str(scenario.status("app").get("lastAppliedRevision", "")).endswith(sha)
        time.sleep(0.5)


def test_a_signed_push_syncs_at_once(scenario: Scenario, controller: ControllerProcess) -> None:
    _slow_sync(scenario)
    path = _receiver(scenario)
    sha, body = _push(scenario, "2")
    code, answer = _post(controller, path, body, _signed(body))
    assert code == 200 and f"{scenario.namespace}/repo" in answer, answer
    scenario.wait_applied("app", sha, timeout=20)  # the interval is an hour
    assert (scenario.configmap("a") or {}).get("data") == {"v": "2"}


def test_forged_unwanted_and_unknown_requests_change_nothing(
        scenario: Scenario, controller: ControllerProcess) -> None:
    _slow_sync(scenario)
    path = _receiver(scenario)
    sha, body = _push(scenario, "3")
    refused: list[tuple[str, dict[str, str], bytes, str, int]] = [
        ("unsigned", {"X-GitHub-Event": "push"}, body, path, 401),
        ("wrong key", _signed(body, key="guess"), body, path, 401),
        ("body changed after signing", _signed(body), body + b" ", path, 401),
        ("another event", _signed(body, event="issues"), body, path, 202),
        ("unknown path", _signed(body), body, "/hook/" + "0" * 64, 404),
        ("oversized", _signed(b"x" * (2 << 20)), b"x" * (2 << 20), path, 413),
    ]
    for what, headers, payload, where, expected in refused:
        code, answer = _post(controller, where, payload, headers)
        assert code == expected, (what, code, answer)
    other = json.dumps({"ref": "refs/heads/feature", "after": sha}).encode()
    code, answer = _post(controller, path, other, _signed(other))
    assert code == 200 and json.loads(answer) == {"reconciling": []}, answer
    for _ in range(300):  # a flood of forgeries: answered, no work
        assert _post(controller, path, body, {"X-GitHub-Event": "push",
                                              "X-Hub-Signature-256": "sha256=00"})[0] == 401
    _not_applied_within(scenario, sha, 5)
    assert controller.http("/healthz")[0] == 200


def test_a_receiver_without_its_secret_says_so(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.kube.apply({"apiVersion": "plinth.dev/v1", "kind": "Receiver",
                         "metadata": {"name": "push", "namespace": ns},
                         "spec": {"type": "gitea", "secretRef": {"name": "missing"},
                                  "resources": [{"name": "repo"}]}})

    def said() -> dict[str, Any] | None:
        ready = scenario.ready("push", "receivers.plinth.dev")
        return ready if ready.get("status") == "False" else None
    ready = wait_for(said, 30, "the Receiver to say its secret is missing")
    assert ready["reason"] == "TokenNotFound" and f"{ns}/missing" in ready["message"]
