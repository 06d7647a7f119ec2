"""Benchmark: `plinth render` (kustomize + strict schema validation of every object) against
`kubectl kustomize` on the same directories, and `plinth --help`. Each command runs --runs
times, alternating; the report gives the median wall time of each and the ratio, and, apart,
the standalone `kustomize build` that `plinth render` runs (what is left is Plinth's own
cost: Python, the bounds, validation). Figures measured in one run on one machine, never
asserts.

Directories: the overlay `plinth new` scaffolds (3 objects), and generated overlays of a
Deployment/Service/ConfigMap mix (300 objects) and of 1,000 ConfigMaps.

    .venv/bin/python bench/cli_render.py [--runs 15]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.side_by_side import configmaps, mix  # noqa: E402
from plinth.localenv.tools import find_tool, tool_env  # noqa: E402

PLINTH = str(Path(sys.executable).parent / "plinth")


def timed(argv: list[str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=tool_env())
    return time.monotonic() - started


def overlay(root: Path, name: str, objects: list[dict[str, object]]) -> str:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "objects.yaml").write_text(yaml.safe_dump_all(objects))
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "namespace": "bench", "resources": ["objects.yaml"]}))
    return name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    kubectl, kustomize = str(find_tool("kubectl")), str(find_tool("kustomize"))
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="plinth-bench-") as tmp_name:
        repo = Path(tmp_name) / "gitops"
        subprocess.run([PLINTH, "new", str(repo), "--cluster", "local", "--env", "dev",
                        "--app", "web=ghcr.io/acme/web:1.2.3"], check=True,
                       stdout=subprocess.DEVNULL, env=tool_env())
        dirs = {"scaffolded overlay (3 objects)": "apps/overlays/dev",
                "mix (300 objects)": overlay(repo, "mix", mix(300)),
                "1,000 ConfigMaps": overlay(repo, "cms", configmaps(1000))}
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        for what, rel in dirs.items():
            plinth_s, kubectl_s, kustomize_s = [], [], []
            for _ in range(runs):
                plinth_s.append(timed([PLINTH, "render", rel], repo))
                kubectl_s.append(timed([kubectl, "kustomize", rel], repo))
                kustomize_s.append(timed([kustomize, "build", rel], repo))
            p, k = statistics.median(plinth_s), statistics.median(kubectl_s)
            report[what] = {"plinth_render_s": round(p, 3), "kubectl_kustomize_s": round(k, 3),
                            "ratio": round(p / k, 2),
                            "kustomize_build_s": round(statistics.median(kustomize_s), 3)}
            print(json.dumps({what: report[what]}), file=sys.stderr, flush=True)
        helps = [timed([PLINTH, "--help"], repo) for _ in range(runs)]
        report["plinth --help"] = {"s": round(statistics.median(helps), 3)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
