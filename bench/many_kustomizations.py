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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import RssSampler, Step, StepMeter, control_plane  # noqa: E402
from plinth.localenv.gitdaemon import GitDaemon  # noqa: E402
from tests.controller.harness import (ControllerProcess, GitOpsRepo, Kube,  # noqa: E402
                                      Scenario, wait_for)
from tests.gitops_repos import configmap, kustomization  # noqa: E402

NS = "bench-many"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kustomizations", type=int, default=50)
    parser.add_argument("--objects", type=int, default=20, help="per Kustomization")
    args = parser.parse_args()
    with control_plane() as (tmp, _, kube):
        daemon = GitDaemon(tmp / "git")
        daemon.start()
        try:
            results = run(args.kustomizations, args.objects, tmp, kube, daemon)
        finally:
            daemon.stop()
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


def run(count: int, per: int, tmp: Path, kube: Kube, daemon: GitDaemon) -> dict[str, object]:
    kube.run("create", "namespace", NS)
    daemon.create_repository("many.git")
    repo = GitOpsRepo(daemon.url("many.git"), tmp / "work")
    sha = repo.commit(files(count, per))
    controller = ControllerProcess(kube.kubeconfig, tmp / "controller", ["bench-*"],
                                   ("--log-level", "info"))
    controller.start()
    assert controller.proc is not None
    sampler = RssSampler(controller.proc.pid)
    meter = StepMeter(kube, ("configmaps",), (controller.proc.pid,))
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

    def step(action: Callable[[], object], done: Callable[[], bool]) -> dict[str, float | int]:
        meter.start()
        action()
        wait_for(done, 1800, "the step", every=0.2)
        measured: Step = meter.stop()
        return measured.as_dict()

    fresh = step(lambda: [scenario.kustomization(n, f"./apps/{n}", interval="1h")
                          for n in names], lambda: all_ready(sha))
    no_change = step(lambda: [scenario.kustomization(n, f"./apps/{n}", interval="59m")
                              for n in names], lambda: all_ready(sha, 2))
    one = repo.commit(files(count, per, changed=0))
    one_change = step(lambda: None, lambda: all_ready(one))
    peak = sampler.stop()
    controller.stop()
    return {"kustomizations": count, "objects": count * per, "fresh": fresh,
            "no_change": no_change, "one_object_change": one_change,
            "controller_peak_rss_mib": round(peak, 1)}


if __name__ == "__main__":
    main()
