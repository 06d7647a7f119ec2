"""Benchmark: the sync controller against `kubectl apply --server-side` on the same API server.

Reconciles a generated overlay of N objects from a fresh commit, then a no-change reconcile,
then a commit that changes one object, and applies the same rendered objects with kubectl (a
fresh namespace, then again unchanged). Prints wall time, controller CPU, the API requests
each step cost on the objects' kind (the API server's own counters) and peak memory, and the ratios
to kubectl and of the no-change reconcile to the fresh one. Figures are ratios measured in
one run on one machine, never asserts.

    .venv/bin/python bench/controller_sync.py [--objects 1000]
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plinth.localenv.controlplane import LocalControlPlane  # noqa: E402
from plinth.localenv.gitdaemon import GitDaemon  # noqa: E402
from plinth.localenv.tools import find_tool  # noqa: E402
from tests.controller.harness import (ControllerProcess, GitOpsRepo, Kube,  # noqa: E402
                                      Scenario, api_requests, wait_for)
from tests.gitops_repos import configmap, kustomization  # noqa: E402

TICKS = 100.0  # USER_HZ of /proc/<pid>/stat


def cpu_seconds(pid: int) -> float:
    """The controller's CPU, with that of the children it waited for (kustomize, git): the
    peer does both in its own process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def requests(kube: Kube) -> int:
    """The requests the API server counted on ConfigMaps (the benchmark's objects; watches
    aside): O(objects) or O(kinds), without the benchmark's own polling of the status."""
    return int(sum(n for verb, n in api_requests(kube, "configmaps").items()
                   if verb != "WATCH"))


def kubectl_apply(kube: Kube, manifest: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    kube.run("apply", "--server-side", "--field-manager=peer", "-f", str(manifest))
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1000)
    count = parser.parse_args().objects
    with tempfile.TemporaryDirectory(prefix="plinth-bench-") as tmp_name:
        tmp = Path(tmp_name)
        plane = LocalControlPlane(tmp / "plane", durable=False)
        daemon = GitDaemon(tmp / "git")
        plane.start()
        daemon.start()
        try:
            results = run(count, tmp, plane, daemon)
        finally:
            daemon.stop()
            plane.stop()
    print(json.dumps(results, indent=2))


def run(count: int, tmp: Path, plane: LocalControlPlane, daemon: GitDaemon) -> dict[str, object]:
    kube = Kube(find_tool("kubectl"), plane.kubeconfig)
    crds = ROOT / "sync_controller" / "crds"
    kube.run("apply", "--server-side", "-f", str(crds))
    kube.run("wait", "--for=condition=Established", "-f", str(crds))
    for ns in ("bench-ctl", "bench-peer"):
        kube.run("create", "namespace", ns)
    daemon.create_repository("bench.git")
    repo = GitOpsRepo(daemon.url("bench.git"), tmp / "work")
    names = [f"cm-{i:04d}" for i in range(count)]
    objects = [configmap(n, {"index": n, "payload": "x" * 200}, namespace="bench-ctl")
               for n in names]
    sha = repo.commit({"app/kustomization.yaml": kustomization("objects.yaml"),
                       "app/objects.yaml": objects})
    peer_manifest = tmp / "peer.yaml"
    rendered = kube.run("kustomize", str(repo.work / "app")).stdout
    peer_manifest.write_text(rendered.replace("namespace: bench-ctl", "namespace: bench-peer"))

    controller = ControllerProcess(plane.kubeconfig, tmp / "controller", ["bench-*"])
    controller.start()
    assert controller.proc is not None
    pid = controller.proc.pid
    scenario = Scenario(kube, "bench-ctl", repo)
    scenario.git_repository(interval="1s")
    wait_for(lambda: scenario.status("repo", "gitrepositories.plinth.dev").get("artifact"), 60,
             "the source artifact")
    cpu0, calls0 = cpu_seconds(pid), requests(kube)
    started = time.monotonic()
    scenario.kustomization("app", "./app", interval="1h")
    scenario.wait_applied("app", sha, timeout=900)
    fresh_wall = time.monotonic() - started
    fresh_cpu = cpu_seconds(pid) - cpu0
    fresh_calls = requests(kube) - calls0

    cpu0, calls0 = cpu_seconds(pid), requests(kube)
    started = time.monotonic()
    scenario.kustomization("app", "./app", interval="59m")  # a new generation: reconcile now

    def reconciled() -> bool:
        obj = kube.get("kustomizations.plinth.dev", "app", "bench-ctl") or {}
        ready = next((c for c in obj.get("status", {}).get("conditions", [])
                      if c["type"] == "Ready"), {})
        return ready.get("status") == "True" and \
            ready.get("observedGeneration") == obj["metadata"]["generation"]
    wait_for(reconciled, 900, "the no-change reconcile", every=0.05)
    noop_wall = time.monotonic() - started
    noop_cpu = cpu_seconds(pid) - cpu0
    noop_calls = requests(kube) - calls0

    objects[0] = configmap(names[0], {"index": "changed", "payload": "y"}, namespace="bench-ctl")
    one = repo.commit({"app/objects.yaml": objects})
    cpu0, calls0 = cpu_seconds(pid), requests(kube)
    started = time.monotonic()
    scenario.git_repository(interval="1s")
    scenario.wait_applied("app", one, timeout=900)
    one_wall = time.monotonic() - started
    one_cpu = cpu_seconds(pid) - cpu0
    one_calls = requests(kube) - calls0
    peak = peak_rss_mib(pid)
    controller.stop()

    peer_fresh_wall, peer_fresh_cpu = kubectl_apply(kube, peer_manifest)
    peer_noop_wall, peer_noop_cpu = kubectl_apply(kube, peer_manifest)
    return {
        "objects": count,
        "fresh": {"controller_wall_s": round(fresh_wall, 2), "controller_cpu_s": round(fresh_cpu, 2),
                  "kubectl_wall_s": round(peer_fresh_wall, 2),
                  "kubectl_cpu_s": round(peer_fresh_cpu, 2),
                  "wall_ratio": round(fresh_wall / peer_fresh_wall, 2)},
        "no_change": {"controller_wall_s": round(noop_wall, 2),
                      "controller_cpu_s": round(noop_cpu, 2),
                      "kubectl_wall_s": round(peer_noop_wall, 2),
                      "kubectl_cpu_s": round(peer_noop_cpu, 2),
                      "wall_ratio": round(noop_wall / peer_noop_wall, 2),
                      "to_fresh_wall": round(noop_wall / fresh_wall, 3),
                      "to_fresh_cpu": round(noop_cpu / max(fresh_cpu, 0.01), 3)},
        "one_object_change": {"controller_wall_s": round(one_wall, 2),
                              "controller_cpu_s": round(one_cpu, 2)},
        "api_requests": {"fresh": fresh_calls, "no_change": noop_calls,
                         "one_object_change": one_calls},
        "controller_peak_rss_mib": round(peak, 1),
    }


if __name__ == "__main__":
    main()
