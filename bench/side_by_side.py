"""Benchmark: Plinth's sync controller, Flux (source-controller + kustomize-controller v1.9.6)
and `kubectl apply --server-side`, on the same API server, the same git repository over
smart HTTP with the same credentials, the same objects.

For each workload (N ConfigMaps for each N of --objects; a mix of Deployments, Services and
ConfigMaps), each round runs every peer in turn, the order rotating from round to round:
 - start-up: from spawn to every readiness probe answering 200, then idle memory;
 - fresh sync: a new Kustomization (targetNamespace: a namespace of its own) until Ready at the
   commit;
 - no-change reconcile: a reconcile asked by annotation, until handled and Ready;
 - one-object change: a commit that changes one object, fetched on request, until Ready at it;
and, for kubectl, the same three as applies of the rendered objects. Each step records wall time,
the peer's CPU (its processes and the children they waited for), the API requests the API
server counted on the workload's kinds, and the machine's other CPU meanwhile; each round the
peak memory of the peer's process tree. The report gives medians and the ratios Plinth / Flux and
Plinth / kubectl. Figures measured in one run on one machine, never asserts.

    scripts/setup --only flux-bench     # once: builds Flux v1.9.6 from its Go modules
    .venv/bin/python bench/side_by_side.py [--objects 100,1000,10000] [--mix 300] [--rounds 3]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import git  # noqa: E402
import yaml  # noqa: E402

from bench.measure import (RssSampler, StepMeter, control_plane, load_average,  # noqa: E402
                           rss_mib)
from bench.peers import (Controller, Flux, Plinth, StatusReader, flux_installed,  # noqa: E402
                         install_flux_crds)
from plinth.localenv.githttp import GitHttpServer  # noqa: E402
from tests.controller.harness import Kube  # noqa: E402

TIMEOUT = 1800.0


def configmaps(count: int, changed: bool = False) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:05d}"},
             "data": {"index": "changed" if changed and i == 0 else str(i),
                      "payload": "x" * 200}} for i in range(count)]


def mix(count: int, changed: bool = False) -> list[dict[str, Any]]:
    """A third each of Deployments, the Services in front of them and their ConfigMaps.

    Each use of the labels is a mapping of its own, as people write them: one dict shared by
    several fields would be dumped as a YAML anchor and aliases, which manifests rarely hold."""
    objects: list[dict[str, Any]] = []
    for i in range(count // 3):
        name = f"web-{i:04d}"

        def labels(name: str = name) -> dict[str, str]:
            return {"app": name}
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "labels": labels()},
                        "data": {"LOG_LEVEL": "debug" if changed and i == 0 else "info"}})
        objects.append({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": name, "labels": labels()},
                        "spec": {"selector": labels(),
                                 "ports": [{"port": 80, "targetPort": 8080}]}})
        objects.append({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": name, "labels": labels()},
                        "spec": {"replicas": 2, "selector": {"matchLabels": labels()},
                                 "template": {"metadata": {"labels": labels()}, "spec": {
                                     "containers": [{
                                         "name": "web", "image": "registry.invalid/web:1.0.0",
                                         "ports": [{"containerPort": 8080}],
                                         "envFrom": [{"configMapRef": {"name": name}}],
                                         "resources": {"requests": {"cpu": "10m",
                                                                    "memory": "16Mi"}}}]}}}})
    return objects


class Workload:
    def __init__(self, name: str, make: Callable[..., list[dict[str, Any]]], count: int,
                 resources: tuple[str, ...]) -> None:
        self.name, self.make, self.count, self.resources = name, make, count, resources
        self.base = self.changed = ""

    def files(self, changed: bool) -> dict[str, str]:
        return {f"{self.name}/kustomization.yaml": yaml.safe_dump(
                    {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": ["objects.yaml"]}),
                f"{self.name}/objects.yaml": yaml.safe_dump_all(self.make(self.count, changed))}


class Repository:
    """The one repository every peer reads: a commit per workload state; each peer and round
    gets a branch of its own, moved from the base commit to the changed one by a push."""

    def __init__(self, server: GitHttpServer, work: Path) -> None:
        server.create_repository("bench.git")
        user, password = server.credentials()
        self.url = server.url("bench.git")
        self.push_url = self.url.replace("://", f"://{user}:{password}@", 1)
        self.repo = git.Repo.init(work, initial_branch="main")
        with self.repo.config_writer() as config:
            config.set_value("user", "name", "bench")
            config.set_value("user", "email", "bench@plinth.invalid")
        (work / "README").write_text("bench\n")
        self.repo.git.add(A=True)
        self.root = self.repo.index.commit("root").hexsha

    def add(self, workload: Workload) -> None:
        for changed in (False, True):
            self.repo.git.checkout(workload.base or self.root, detach=True)
            for rel, text in workload.files(changed).items():
                path = Path(self.repo.working_tree_dir or ".") / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            self.repo.git.add(A=True)
            sha = self.repo.index.commit(f"{workload.name} changed={changed}").hexsha
            if changed:
                workload.changed = sha
            else:
                workload.base = sha

    def point(self, branch: str, sha: str) -> None:
        self.repo.git.push("--force", self.push_url, f"{sha}:refs/heads/{branch}")

    def render(self, sha: str, path: str, kube: Kube) -> str:
        self.repo.git.checkout(sha, detach=True)
        return kube.run("kustomize", str(Path(self.repo.working_tree_dir or ".") / path)).stdout


def wait(check: Callable[[], bool], what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


def run_controller(peer: Controller, workload: Workload, namespace: str, repo: Repository,
                   kube: Kube, secret: dict[str, Any]) -> dict[str, Any]:
    kube.run("create", "namespace", namespace)
    kube.apply({**secret, "metadata": {"name": "git", "namespace": namespace}})
    repo.point(namespace, workload.base)
    startup = peer.start()
    time.sleep(1.0)
    idle = rss_mib(*peer.pids)
    sampler = RssSampler(*peer.pids)
    meter = StepMeter(kube, workload.resources, peer.pids)
    try:
        peer.source(namespace, repo.url, namespace, "git")
        wait(lambda: peer.artifact_revision(namespace).endswith(workload.base), "the artifact")
        meter.start()
        peer.kustomization(namespace, f"./{workload.name}")
        wait(lambda: peer.applied(namespace, workload.base), f"{peer.name}: fresh sync")
        fresh = meter.stop()
        meter.start()
        token = peer.request_reconcile("Kustomization", namespace, "app")
        wait(lambda: peer.applied(namespace, workload.base, token), f"{peer.name}: no-change")
        no_change = meter.stop()
        repo.point(namespace, workload.changed)
        meter.start()
        peer.request_reconcile("GitRepository", namespace, "repo")
        wait(lambda: peer.applied(namespace, workload.changed), f"{peer.name}: one-object")
        one = meter.stop()
        peer.suspend(namespace)
    finally:
        peak = sampler.stop()
        peer.stop()
    return {"startup_s": round(startup, 3), "idle_rss_mib": round(idle, 1),
            "peak_rss_mib": round(peak, 1), "fresh": fresh.as_dict(),
            "no_change": no_change.as_dict(), "one_object": one.as_dict()}


def run_kubectl(workload: Workload, namespace: str, repo: Repository, kube: Kube,
                tmp: Path) -> dict[str, Any]:
    kube.run("create", "namespace", namespace)
    base, changed = tmp / f"{namespace}-base.yaml", tmp / f"{namespace}-changed.yaml"
    base.write_text(repo.render(workload.base, workload.name, kube))
    changed.write_text(repo.render(workload.changed, workload.name, kube))
    meter = StepMeter(kube, workload.resources, ())
    steps = {}
    for step, manifest in (("fresh", base), ("no_change", base), ("one_object", changed)):
        meter.start()
        subprocess.run([str(kube.kubectl), "--kubeconfig", str(kube.kubeconfig), "apply",
                        "--server-side", "--field-manager=peer", "-n", namespace, "-f",
                        str(manifest)], check=True, capture_output=True)
        steps[step] = meter.stop().as_dict()
    return steps


def median(runs: list[dict[str, Any]], *keys: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            values.append(float(value))
    return round(statistics.median(values), 3) if values else None


MEASURES = [("startup_s",), ("idle_rss_mib",), ("peak_rss_mib",),
            *((step, m) for step in ("fresh", "no_change", "one_object")
              for m in ("wall_s", "cpu_s", "requests"))]


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {peer: {"/".join(m): median(r, *m) for m in MEASURES} for peer, r in runs.items()}
    ratios: dict[str, dict[str, float | None]] = {}
    for peer in ("flux", "kubectl"):
        if peer in medians and "plinth" in medians:
            ratios[f"plinth/{peer}"] = {
                k: (round(v / medians[peer][k], 3) if v is not None and medians[peer][k] else None)
                for k, v in medians["plinth"].items() if medians[peer].get(k) is not None}
    medians_plinth = medians.get("plinth", {})
    fresh_wall, fresh_cpu = medians_plinth.get("fresh/wall_s"), medians_plinth.get("fresh/cpu_s")
    if fresh_wall and fresh_cpu:
        ratios["plinth no-change/fresh"] = {
            "wall_s": round((medians_plinth["no_change/wall_s"] or 0) / fresh_wall, 3),
            "cpu_s": round((medians_plinth["no_change/cpu_s"] or 0) / fresh_cpu, 3)}
    return {"medians": medians, "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", default="100,1000,10000",
                        help="ConfigMap counts, comma separated")
    parser.add_argument("--mix", type=int, default=300,
                        help="objects of the mixed workload (0: none)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rounds-above", type=int, default=1000,
                        help="workloads larger than this run one round")
    parser.add_argument("--peers", default="plinth,flux,kubectl")
    parser.add_argument("--kubectl-max", type=int, default=1000,
                        help="kubectl runs on workloads up to this size (it applies ~30 "
                             "objects a second)")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    peers = args.peers.split(",")
    if "flux" in peers and (why := flux_installed()):
        sys.exit(f"side_by_side: {why}; or run with --peers plinth,kubectl")
    workloads = [Workload(f"cm-{n}", configmaps, n, ("configmaps",))
                 for n in (int(x) for x in args.objects.split(",") if x)]
    if args.mix:
        workloads.append(Workload(f"mix-{args.mix}", mix, args.mix,
                                  ("configmaps", "services", "deployments")))
    report: dict[str, Any] = {"machine": {"cpus": len(os.sched_getaffinity(0)),
                                          "load_at_start": load_average()},
                              "workloads": {}}
    with control_plane() as (tmp, plane, kube):
        if "flux" in peers:
            install_flux_crds(kube)
        server = GitHttpServer(tmp / "git")
        server.start()
        reader = StatusReader(plane.kubeconfig, tmp / "reader")
        user, password = server.credentials()
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "data": {"username": base64.b64encode(user.encode()).decode(),
                           "password": base64.b64encode(password.encode()).decode()}}
        try:
            repo = Repository(server, tmp / "work")
            for workload in workloads:
                repo.add(workload)
            for workload in workloads:
                rounds = args.rounds if workload.count <= args.rounds_above else 1
                runs: dict[str, list[dict[str, Any]]] = {p: [] for p in peers}
                for n in range(rounds):
                    order = peers[n % len(peers):] + peers[:n % len(peers)]
                    for name in order:
                        if name == "kubectl" and workload.count > args.kubectl_max:
                            continue
                        namespace = f"{workload.name}-{name}-{n}"
                        load = load_average()
                        print(f"{workload.name} round {n + 1}/{rounds}: {name} "
                              f"(load {load})", file=sys.stderr, flush=True)
                        if name == "kubectl":
                            result = run_kubectl(workload, namespace, repo, kube, tmp)
                        else:
                            peer = {"plinth": Plinth, "flux": Flux}[name](
                                kube, reader, tmp / name / namespace)
                            result = run_controller(peer, workload, namespace, repo, kube,
                                                    secret)
                        runs[name].append({**result, "load_at_start": load})
                report["workloads"][workload.name] = {
                    "objects": workload.count, "rounds": rounds, "runs": runs,
                    **summarise({p: r for p, r in runs.items() if r})}
                print(json.dumps({workload.name: report["workloads"][workload.name]["ratios"]}),
                      file=sys.stderr, flush=True)
                if args.output:  # what is measured stays, should a later workload not end
                    args.output.write_text(json.dumps(report, indent=2) + "\n")
        finally:
            reader.stop()
            server.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
