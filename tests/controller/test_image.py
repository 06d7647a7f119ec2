"""The controller image, checked without a Docker engine: every file it copies exists, it runs
as non-root, its entry point starts the controller, and it installs every third-party package
the controller imports (and nothing of Pulumi's)."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from plinth.oci import dockerfile

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "sync_controller" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    return [i for stage in dockerfile.stages(DOCKERFILE) for i in stage.instructions]


def test_every_copied_path_exists() -> None:
    for op, args in _instructions():
        if op == "COPY" and "--from=" not in args:
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_runs_as_non_root_with_a_version_arg() -> None:
    runtime = dockerfile.runtime_config(DOCKERFILE, {})
    uid = runtime.user.split(":")[0]
    assert uid.isdigit() and uid != "0"
    assert dockerfile.stages(DOCKERFILE)[-1].args["VERSION"] == "dev"
    assert runtime.labels["org.opencontainers.image.version"] == "dev"


def test_entry_point_starts_the_controller() -> None:
    argv = list(dockerfile.runtime_config(DOCKERFILE, {}).entrypoint)
    assert argv[:4] == ["python3", "-m", "sync_controller", "run"]  # Debian names it so
    proc = subprocess.run([sys.executable, *argv[1:], "--help"], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "--cache-dir" in proc.stdout and "--kubeconfig" in proc.stdout


def _imported_modules() -> set[str]:
    """Top-level modules imported by the controller and the plinth modules it reaches."""
    seen: set[Path] = set()
    todo = sorted((ROOT / "sync_controller").glob("*.py"))
    tops: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and \
                node.level == 0 else []
            for name in names:
                tops.add(name.split(".")[0])
                if name.startswith("plinth"):
                    module = ROOT.joinpath(*name.split("."))
                    for candidate in (module.with_suffix(".py"), module / "__init__.py"):
                        if candidate.exists():
                            todo.append(candidate)
    return tops


def test_image_installs_every_package_the_controller_imports() -> None:
    listed = {re.sub(r"[-_.]+", "-", word).lower()
              for word in dockerfile.pip_packages(DOCKERFILE)}
    distributions = packages_distributions()
    needed = set()
    for top in _imported_modules():
        if top in sys.stdlib_module_names or top in ("plinth", "sync_controller"):
            continue
        needed |= {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(top, [top])}
    assert needed <= listed, f"the image lacks {sorted(needed - listed)}"
    assert not any(name.startswith("pulumi") for name in needed)
