"""The images Plinth builds without a Docker engine, by name:

- `pause`: the first process of every pod sandbox of the local node (images/pause);
- `coredns`: the local node's cluster DNS;
- `sample-app`: the `web` app of the local stack (images/sample-app), one image per version;
- `controller`: the sync controller, from the definition in sync_controller/Dockerfile.

Layers are cached on disk by what goes into them, so a rebuild costs the hashing of its inputs,
and the same inputs give the same digest. The Python images share one base layer: the Debian
root filesystem the setup builds (`.tools/rootfs/python-base`).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from plinth.localenv.tools import REPO_ROOT, find_tool, tools_bin
from plinth.oci import dockerfile
from plinth.oci.image import Image, RuntimeConfig
from plinth.oci.layers import File, Layer, layer_from_files, layer_from_tree

NAMES = ("pause", "coredns", "sample-app", "controller")
DOCKERFILE = REPO_ROOT / "sync_controller" / "Dockerfile"
SAMPLE_APP = REPO_ROOT / "images" / "sample-app" / "app.py"
# The controller's sources: what `pip install .` puts in the image.
_PROJECT_FILES = ("pyproject.toml", "README.md")
_PROJECT_PACKAGES = ("plinth", "components", "sync_controller")
_RECIPE = "1"  # bump when a layer recipe here changes, so cached layers are rebuilt
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageBuildError(Exception):
    """An image cannot be built here; the message says what is missing."""


def cache_dir() -> Path:
    return Path(os.environ.get("PLINTH_IMAGE_CACHE",
                               Path.home() / ".cache" / "plinth" / "images"))


def build(name: str, version: str) -> Image:
    """Build (or take from the cache) image `name` at `version`."""
    if name == "pause":
        return Image.assemble((_binary_layer("pause"),), RuntimeConfig(
            entrypoint=("/pause",), user="65535:65535"))
    if name == "coredns":
        return Image.assemble((_binary_layer("coredns"),), RuntimeConfig(
            entrypoint=("/coredns",), exposed_ports=("53/udp", "53/tcp", "9153/tcp")))
    if name == "sample-app":
        app = layer_from_files([File("app/app.py", SAMPLE_APP.read_bytes())],
                               _layer_path("sample-app", _digest(SAMPLE_APP.read_bytes())))
        return Image.assemble((_base_layer(), app), RuntimeConfig(
            entrypoint=("python3", "/app/app.py"), user="65532:65532", exposed_ports=("8080/tcp",),
            env=(f"PATH={_PATH}", f"APP_VERSION={version}", "PYTHONUNBUFFERED=1",
                 "PYTHONDONTWRITEBYTECODE=1"),
            labels={"org.opencontainers.image.title": "plinth-sample-app",
                    "org.opencontainers.image.version": version}))
    if name == "controller":
        runtime = dockerfile.runtime_config(DOCKERFILE, {"VERSION": version})
        return Image.assemble((_base_layer(), _controller_layer()), runtime)
    raise ImageBuildError(f"no image named {name!r}; known: {', '.join(NAMES)}")


def _digest(*parts: bytes) -> str:
    sha = hashlib.sha256(_RECIPE.encode())
    for part in parts:
        sha.update(hashlib.sha256(part).digest())
    return sha.hexdigest()[:24]


def _layer_path(name: str, key: str) -> Path:
    return cache_dir() / "layers" / f"{name}-{key}.tar.gz"


def _cached(name: str, key: str, make: Callable[[Path], Layer]) -> Layer:
    """The layer `name` for inputs `key`, made once: written aside, then renamed into place."""
    path = _layer_path(name, key)
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return Layer.load(path, meta.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per call: two images of one `pulumi up` (threads of one process) share layers.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    partial = Path(name)
    try:
        layer = make(partial)
        partial.replace(path)  # the same bytes whoever wins: reproducible layers
    finally:
        partial.unlink(missing_ok=True)
    layer = Layer(path, layer.digest, layer.diff_id, layer.size)
    meta.write_text(layer.to_json())
    return layer


def _binary_layer(tool: str) -> Layer:
    binary = find_tool(tool).read_bytes()
    return _cached(tool, _digest(binary), lambda dest: layer_from_files(
        [File(tool, binary, mode=0o755)], dest))


def _base_layer() -> Layer:
    base = tools_bin().parent / "rootfs" / "python-base"
    if not (base / "rootfs" / "usr" / "bin" / "python3").exists():
        raise ImageBuildError(f"no base root filesystem at {base}: run scripts/setup (as root)")
    key = _digest(str(base.resolve()).encode(), (base / "packages.txt").read_bytes())
    return _cached("python-base", key, lambda dest: layer_from_tree(base / "rootfs", dest))


def _project_sources() -> list[Path]:
    files = [REPO_ROOT / name for name in _PROJECT_FILES]
    for package in _PROJECT_PACKAGES:
        files += sorted(p for p in (REPO_ROOT / package).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts)
    return files


def _controller_layer() -> Layer:
    """/opt/plinth: kustomize, the pinned dependencies and Plinth itself, as the Dockerfile's
    build stage lays them out."""
    kustomize = find_tool("kustomize").read_bytes()
    lock = (REPO_ROOT / "requirements.lock").read_bytes()
    packages = dockerfile.pip_packages(DOCKERFILE)
    sources = _project_sources()
    key = _digest(kustomize, lock, " ".join(packages).encode(),
                  *(str(p.relative_to(REPO_ROOT)).encode() + p.read_bytes() for p in sources))

    def make(dest: Path) -> Layer:
        with tempfile.TemporaryDirectory(prefix="plinth-controller-") as tmp:
            opt = Path(tmp) / "opt" / "plinth"
            (opt / "bin").mkdir(parents=True)
            shutil.copyfile(find_tool("kustomize"), opt / "bin" / "kustomize")
            (opt / "bin" / "kustomize").chmod(0o755)
            project = Path(tmp) / "project"
            for source in sources:
                target = project / source.relative_to(REPO_ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            site = opt / "site-packages"
            _pip("--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                 "--abi", "cp311", "--platform", "manylinux2014_x86_64",
                 "-c", str(REPO_ROOT / "requirements.lock"), *packages, target=site)
            _pip("--no-deps", str(project), target=site)
            for url_file in site.glob("*.dist-info/direct_url.json"):
                url_file.unlink()  # names the folder it was built in
            _compile(site, "/opt/plinth/site-packages")
            return layer_from_tree(Path(tmp) / "opt", dest, prefix="opt", owner=(0, 0))

    return _cached("controller-app", key, make)


def _compile(site: Path, path_in_image: str) -> None:
    """Bytecode for every module, as the Dockerfile compiles it: hash-based and unchecked (the
    image's files never change), naming the files where the image has them."""
    argv = [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
            "unchecked-hash", "-d", path_in_image, str(site)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"compiling the controller image's modules failed:\n"
                              f"{(proc.stdout + proc.stderr).strip()[-2000:]}")


def _pip(*args: str, target: Path) -> None:
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--target", str(target), *args]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"pip install for the controller image failed:\n"
                              f"{proc.stderr.strip()[-2000:]}")
