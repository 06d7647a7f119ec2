"""A non-editable install works like the checkout: the wheel carries the GitOps repo template and
the controller's CRDs as package data, and scaffolding from it writes the very same files.

Built from a copy of the project, so no build/ or egg-info lands in the checkout and no stale
build output of an earlier run can stand in for a missing file."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plinth.schemas import load_crds
from plinth.scaffold import render_template
from tests.test_scaffold import spec

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("pyproject.toml", "README.md", "plinth", "components", "sync_controller")
TEMPLATE = ROOT / "plinth" / "gitops_repo_template"
CRDS = ROOT / "sync_controller" / "crds"

# Run inside the installed copy: scaffold with the same RepoSpec as tests/test_scaffold.py.
SCAFFOLD = """
import json, sys
from pathlib import Path
import plinth
from plinth.repospec import AppSpec, EnvironmentSpec, RepoSpec
from plinth.scaffold import render_template, write
from plinth.schemas import load_crds
assert plinth.__file__.startswith(sys.argv[1]), plinth.__file__  # not the checkout's plinth
spec = RepoSpec.model_validate({
    "cluster": "local",
    "environments": [EnvironmentSpec.named("dev"), EnvironmentSpec.named("prod")],
    "apps": [AppSpec.parse("web=ghcr.io/acme/web:1.2.3"), AppSpec.parse("api=acme/api")],
    "registry": "127.0.0.1:5000",
})
write(Path(sys.argv[2]), render_template(spec))
print(json.dumps(sorted(c["metadata"]["name"] for c in load_crds())))
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    site: Path  # what `pip install --target` laid out


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check",
                           "--no-input", *args], capture_output=True, text=True)
    assert proc.returncode == 0, f"pip {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in PROJECT:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copyfile(ROOT / name, source / name)
    _pip("wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(tmp / "dist"),
         str(source))
    (wheel,) = (tmp / "dist").glob("plinth-*.whl")
    _pip("install", "--no-deps", "--no-compile", "--quiet", "--target", str(tmp / "site"),
         str(wheel))
    yield Installed(wheel, tmp / "site")


def _scaffold_from(site: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """Run SCAFFOLD with only the install (and the venv's dependencies) importable as plinth."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-c", SCAFFOLD, str(site), str(target)],
                          capture_output=True, text=True, env=env, cwd=target.parent)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_wheel_carries_every_template_file_and_crd(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    template = [f"plinth/gitops_repo_template/{rel}" for rel in _files(TEMPLATE)]
    crds = [f"sync_controller/crds/{p.name}" for p in sorted(CRDS.glob("*.yaml"))]
    assert len(template) > 10 and len(crds) >= 5
    assert [n for n in [*template, *crds] if n not in names] == []


def test_scaffold_from_the_installed_wheel_writes_what_the_checkout_does(
        installed: Installed, tmp_path: Path) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    proc = _scaffold_from(installed.site, target)
    assert proc.returncode == 0, proc.stderr
    written = _files(target)
    written.pop(".plinth/scaffold.json")
    assert written == render_template(spec())
    assert json.loads(proc.stdout) == sorted(c["metadata"]["name"] for c in load_crds())


def test_install_without_its_package_data_fails_loudly(installed: Installed,
                                                       tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(installed.site, site)
    target = tmp_path / "repo"
    target.mkdir()

    shutil.rmtree(site / "plinth" / "gitops_repo_template")
    proc = _scaffold_from(site, target)
    assert proc.returncode != 0 and _files(target) == {}
    assert "ScaffoldError: template folder" in proc.stderr
    assert "missing or empty" in proc.stderr

    (site / "plinth" / "gitops_repo_template").mkdir()
    shutil.rmtree(site / "sync_controller" / "crds")
    proc = _scaffold_from(site, target)
    assert proc.returncode != 0 and _files(target) == {}
    assert "missing or empty" in proc.stderr  # an empty template is no better

    shutil.copytree(installed.site / "plinth" / "gitops_repo_template",
                    site / "plinth" / "gitops_repo_template", dirs_exist_ok=True)
    proc = _scaffold_from(site, target)
    assert proc.returncode != 0 and _files(target) == {}
    assert "SchemasNotInstalled: no Plinth CRDs" in proc.stderr
