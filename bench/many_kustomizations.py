"""Benchmark: one repository, many Kustomizations (a path of its own each), and how each measure
grows with the number of objects. For every size: the fresh sync of all Kustomizations, then a
no-change reconcile of all of them (a new generation each), then a commit that changes one
object of one Kustomization; wall time, controller CPU, the API requests on the objects' kind
(the API server's counters) and the controller's peak RSS. Figures, never asserts.

    .venv/bin/python bench/many_kustomizations.py [--kustomizations 50] [--objects 20]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.controller_sync import cpu_seconds, peak_rss_mib, requests  # noqa: E402
from plinth.localenv.controlplane import LocalControlPlane  # noqa: E402
from plinth.localenv.gitdaemon import GitDaemon  # noqa: E402
from plinth.localenv.tools import find_tool  # noqa: E402
from tests.controller.harness import (ControllerProcess, GitOpsRepo, Kube,  # noqa: E402
                                      Scenario, wait_for)
from tests.gitops_repos import configmap, kustomization  # noqa: E402

NS = "bench-many"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kustomizations", type=int, default=50)
    parser.add_argument("--objects", type=int, default=20, help="per Kustomization")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plinth-bench-") as tmp_name:
        tmp = Path(tmp_name)
        plane = LocalControlPlane(tmp / "plane", durable=False)
        daemon = GitDaemon(tmp / "git")
        plane.start()
        daemon.start()
        try:
            results = run(args.kustomizations, args.objects, tmp, plane, daemon)
        finally:
            daemon.stop()
            plane.stop()
    print(json.dumps(results, indent=2))


def files(count: int, per: int, changed: int | None = None) -> dict[str, object]:
    out: dict[str, object] = {}
    for k in range(count):
        objects = [configmap(f"k{k:03d}-{i:03d}", {"v": "changed" if k == changed and i == 0
                                                       else "1", "payload": "x" * 200},
                             namespace=NS) for i in range(per)]
        out[f"apps/k{k:03d}/kustomization.yaml"] = kustomization("objects.yaml")
        out[f"apps/k{k:03d}/objects.yaml"] = objects
    return out


def run(count: int, per: int, tmp: Path, plane: LocalControlPlane, daemon: GitDaemon
        ) -> dict[str, object]:
    kube = Kube(find_tool("kubectl"), plane.kubeconfig)
    crds = ROOT / "sync_controller" / "crds"
    kube.run("apply", "--server-side", "-f", str(crds))
    kube.run("wait", "--for=condition=Established", "-f", str(crds))
    kube.run("create", "namespace", NS)
    daemon.create_repository("many.git")
    repo = GitOpsRepo(daemon.url("many.git"), tmp / "work")
    sha = repo.commit(files(count, per))
    controller = ControllerProcess(plane.kubeconfig, tmp / "controller", ["bench-*"])
    controller.start()
    assert controller.proc is not None
    pid = controller.proc.pid
    scenario = Scenario(kube, NS, repo)
    scenario.git_repository(interval="1s")
    wait_for(lambda: scenario.status("repo", "gitrepositories.plinth.dev").get("artifact"), 60,
             "the source artifact")
    names = [f"k{k:03d}" for k in range(count)]

    def all_ready(revision: str, generation: int | None = None) -> bool:
        out = kube.run("get", "kustomizations.plinth.dev", "-n", NS, "-o", "json").stdout
        items = json.loads(out)["items"]
        return len(items) == count and all(
            str((i.get("status") or {}).get("lastAppliedRevision", "")).endswith(revision)
            and any(c["type"] == "Ready" and c["status"] == "True" and (
                generation is None or c.get("observedGeneration") == generation)
                for c in (i.get("status") or {}).get("conditions", []))
            for i in items)

    def step(action: Callable[[], object], done: Callable[[], bool]) -> dict[str, float]:
        cpu0, calls0, started = cpu_seconds(pid), requests(kube), time.monotonic()
        action()
        wait_for(done, 1800, "the step", every=0.2)
        return {"wall_s": round(time.monotonic() - started, 2),
                "cpu_s": round(cpu_seconds(pid) - cpu0, 2),
                "requests": requests(kube) - calls0}

    fresh = step(lambda: [scenario.kustomization(n, f"./apps/{n}", interval="1h")
                          for n in names], lambda: all_ready(sha))
    no_change = step(lambda: [scenario.kustomization(n, f"./apps/{n}", interval="59m")
                              for n in names], lambda: all_ready(sha, 2))
    one = repo.commit(files(count, per, changed=0))
    one_change = step(lambda: None, lambda: all_ready(one))
    peak = peak_rss_mib(pid)
    controller.stop()
    return {"kustomizations": count, "objects": count * per, "fresh": fresh,
            "no_change": no_change, "one_object_change": one_change,
            "controller_peak_rss_mib": round(peak, 1)}


if __name__ == "__main__":
    main()
