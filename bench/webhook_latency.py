"""Benchmark: from `git push` to objects applied, through the forge's webhook, against the
least the controller must do for that commit (kustomize + `kubectl apply --server-side` of
the same overlay). The GitRepository and Kustomization intervals are an hour, so only the
webhook can bring the commit in. Prints per-push latency, the peer's time, and the overhead
(latency - peer); the target is an overhead under a second. Figures, never asserts.

    .venv/bin/python bench/webhook_latency.py [--pushes 5]
"""
from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plinth.forge import RepoRef  # noqa: E402
from plinth.forge.signature import receiver_path  # noqa: E402
from bench.measure import control_plane  # noqa: E402
from plinth.localenv.forge import LocalForge  # noqa: E402
from tests.controller.harness import (ControllerProcess, GitOpsRepo, Kube,  # noqa: E402
                                      Scenario, wait_for)
from tests.gitops_repos import configmap, kustomization  # noqa: E402

NS = "bench-hook"
SECRET = "bench-webhook-token"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=5)
    pushes = parser.parse_args().pushes
    with control_plane() as (tmp, _, kube):
        forge = LocalForge(tmp / "forge")
        forge.start()
        try:
            results = run(pushes, tmp, kube, forge)
        finally:
            forge.stop()
    print(json.dumps(results, indent=2))


def run(pushes: int, tmp: Path, kube: Kube, forge: LocalForge) -> dict[str, object]:
    kube.run("create", "namespace", NS)
    client = forge.client()
    client.ensure_organization("bench", visibility="public")
    ref = RepoRef("bench", "gitops")
    client.ensure_repository(ref, private=False)
    push_url = forge.clone_url("bench", "gitops").replace(
        "://", f"://{LocalForge.admin}:{forge.token()}@", 1)
    repo = GitOpsRepo(push_url, tmp / "work")
    objects = [configmap(f"cm-{i:03d}", {"payload": "x" * 200}, namespace=NS)
               for i in range(50)]
    sha = repo.commit({"app/kustomization.yaml": kustomization("objects.yaml", "a.yaml"),
                       "app/objects.yaml": objects,
                       "app/a.yaml": configmap("a", {"v": "0"}, namespace=NS)})
    controller = ControllerProcess(kube.kubeconfig, tmp / "controller", ["bench-*"],
                                   ("--log-level", "info"))
    controller.start()
    scenario = Scenario(kube, NS, repo)
    scenario.git_repository(url=forge.clone_url("bench", "gitops"), interval="1h")
    scenario.kustomization("app", "./app", interval="1h")
    scenario.wait_applied("app", sha, timeout=120)
    kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook",
                                                                   "namespace": NS},
                "data": {"token": base64.b64encode(SECRET.encode()).decode()}},
               {"apiVersion": "plinth.dev/v1", "kind": "Receiver",
                "metadata": {"name": "push", "namespace": NS},
                "spec": {"type": "gitea", "secretRef": {"name": "hook"},
                         "resources": [{"kind": "GitRepository", "name": "repo"}]}})
    wait_for(lambda: scenario.ready("push", "receivers.plinth.dev").get("status") == "True",
             30, "the Receiver")
    client.ensure_webhook(ref, f"http://127.0.0.1:{controller.receiver_port}"
                          f"{receiver_path(SECRET, NS, 'push')}", SECRET)

    latencies, peers = [], []
    for value in range(1, pushes + 1):
        started = time.monotonic()
        sha = repo.commit({"app/a.yaml": configmap("a", {"v": str(value)}, namespace=NS)})
        wait_for(lambda: (scenario.configmap("a") or {}).get("data") == {"v": str(value)},
                 120, f"push {value} to be applied", every=0.05)
        latencies.append(time.monotonic() - started)
        peer_started = time.monotonic()
        rendered = kube.run("kustomize", str(repo.work / "app")).stdout
        kube.run("apply", "--server-side", "--field-manager=peer", "--force-conflicts",
                 "-f", "-", stdin=rendered)
        peers.append(time.monotonic() - peer_started)
    controller.stop()
    overheads = [l - p for l, p in zip(latencies, peers)]
    return {"pushes": pushes, "objects": 51,
            "push_to_applied_s": [round(x, 2) for x in latencies],
            "kustomize_plus_apply_s": [round(x, 2) for x in peers],
            "median_overhead_s": round(statistics.median(overheads), 2),
            "note": "push_to_applied includes git push itself; intervals are 1h"}


if __name__ == "__main__":
    main()
