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

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "sync_controller" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def test_every_copied_path_exists() -> None:
    for op, args in _instructions():
        if op == "COPY" and "--from=" not in args:
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_runs_as_non_root_with_a_version_arg() -> None:
    ops = _instructions()
    users = [args for op, args in ops if op == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert ("ARG", "VERSION=dev") in ops
    assert any(op == "LABEL" and "${VERSION}" in args for op, args in ops)


def test_entry_point_starts_the_controller() -> None:
    (entry,) = [args for op, args in _instructions() if op == "ENTRYPOINT"]
    argv = ast.literal_eval(entry)
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
    (install,) = [args for op, args in _instructions() if op == "RUN" and "-c requirements" in args]
    listed = {re.sub(r"[-_.]+", "-", word).lower()
              for word in install.split("requirements.lock", 1)[1].split()}
    distributions = packages_distributions()
    needed = set()
    for top in _imported_modules():
        if top in sys.stdlib_module_names or top in ("plinth", "sync_controller"):
            continue
        needed |= {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(top, [top])}
    assert needed <= listed, f"the image lacks {sorted(needed - listed)}"
    assert not any(name.startswith("pulumi") for name in needed)
