"""The GitOps connector against a real Gitea: a Kustomization's outcomes become commit statuses
on the revision it works on (pending, then success or failure with the reason), each posted
once, and a forge outage delays a status but never the sync; a generic Provider gets each
outcome once, signed."""
from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from plinth.forge.signature import verify
from tests.controller.forge_repo import ForgeRepo
from tests.controller.harness import Scenario, wait_for
from tests.gitops_repos import configmap, kustomization


def _state_of(on_forge: ForgeRepo, sha: str, state: str) -> list[str] | None:
    states = on_forge.states(sha)
    return states if states and states[-1] == state else None


def test_statuses_follow_a_good_and_a_broken_commit(scenario: Scenario,
                                                    on_forge: ForgeRepo) -> None:
    ns = scenario.namespace
    clone = on_forge.forge.clone_url(ns, "gitops")
    good = on_forge.repo.commit({"app/kustomization.yaml": kustomization("a.yaml"),
                                 "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)})
    scenario.git_repository(url=clone)
    scenario.kustomization("app", "./app")
    scenario.wait_applied("app", good)
    # pending, then the outcome; a pending overtaken by its outcome (a render fails in a
    # moment) is dropped rather than posted after it
    done = wait_for(lambda: _state_of(on_forge, good, "success"), 30, "a success status")
    assert done in (["pending", "success"], ["success"]), done
    broken = on_forge.repo.commit({"app/a.yaml": "kind: ConfigMap\nmetadata: {name: [\n"})
    states = wait_for(lambda: _state_of(on_forge, broken, "failure"), 30, "a failure status")
    assert states in (["pending", "failure"], ["failure"]), states
    failure = on_forge.statuses(broken)[-1]
    assert failure["description"].startswith("BuildFailed: ") and "a.yaml" in \
        failure["description"], failure
    time.sleep(6)  # three more intervals of the Kustomization: nothing is posted again
    assert on_forge.states(good) == done
    assert on_forge.states(broken) == states


def test_a_forge_outage_delays_the_status_but_never_the_sync(scenario: Scenario,
                                                            on_forge: ForgeRepo) -> None:
    ns = scenario.namespace
    sha = on_forge.repo.commit({"app/kustomization.yaml": kustomization("a.yaml"),
                                "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)})
    scenario.git_repository(url=on_forge.forge.clone_url(ns, "gitops"), interval="1h")
    wait_for(lambda: (scenario.status("repo", "gitrepositories.plinth.dev").get("artifact")
                      or {}).get("revision", "").endswith(sha), 30, "the source to fetch")
    on_forge.forge.stop()
    try:
        scenario.kustomization("app", "./app")
        scenario.wait_applied("app", sha)  # the sync does not wait for the forge
    finally:
        on_forge.forge.start()
    assert wait_for(lambda: _state_of(on_forge, sha, "success"), 90,
                    "the status once the forge is back") == ["success"]


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (the http.server name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_a_generic_provider_gets_each_outcome_once_signed(scenario: Scenario) -> None:
    ns = scenario.namespace
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        scenario.kube.apply(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook", "namespace": ns},
             "data": {"token": base64.b64encode(b"shared").decode()}},
            {"apiVersion": "plinth.dev/v1", "kind": "Provider",
             "metadata": {"name": "hook", "namespace": ns},
             "spec": {"type": "generic", "address": f"http://127.0.0.1:{server.server_port}/",
                      "secretRef": {"name": "hook"}}},
            {"apiVersion": "plinth.dev/v1", "kind": "Alert",
             "metadata": {"name": "errors", "namespace": ns},
             "spec": {"providerRef": {"name": "hook"}, "eventSeverity": "error",
                      "eventSources": [{"kind": "Kustomization", "name": "*"}]}})
        scenario.sync({"app/kustomization.yaml": kustomization("a.yaml"),
                       "app/a.yaml": configmap("a", {"v": "1"}, namespace=ns)})
        scenario.repo.commit({"app/a.yaml": "kind: ConfigMap\nmetadata: {name: [\n"})
        scenario.wait_failed("app", "BuildFailed")
        wait_for(lambda: _Recorder.received, 30, "the error to be posted")
        time.sleep(5)  # more failed retries of the same commit: no new post
        assert len(_Recorder.received) == 1, [b for _, b in _Recorder.received]
        headers, body = _Recorder.received[0]
        assert verify("shared", body, headers.get("X-Signature"))
        event = json.loads(body)
        assert event["involvedObject"] == {"kind": "Kustomization", "namespace": ns,
                                           "name": "app", "apiVersion": "plinth.dev/v1"}
        assert (event["severity"], event["reason"]) == ("error", "BuildFailed")
    finally:
        server.shutdown()
