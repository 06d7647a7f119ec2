"""Images built without Docker: reproducible, pushed to the real registry with its auth, loadable
as OCI archives, and the controller image laid out as sync_controller/Dockerfile says."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from plinth.cli import cli
from plinth.localenv.registry import LocalRegistry
from plinth.localenv.tools import REPO_ROOT, tools_bin
from plinth.oci import builds, dockerfile
from plinth.oci.image import Image, RuntimeConfig
from plinth.oci.layers import File, layer_from_files, layer_from_tree
from plinth.oci.push import Registry, RegistryError
from tests.fixtures.servers import require_tools


def _require_base() -> None:
    base = tools_bin().parent / "rootfs" / "python-base" / "rootfs" / "usr" / "bin" / "python3"
    if not base.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the base root filesystem ({base}): run scripts/setup")
        pytest.skip(f"no base root filesystem at {base} (scripts/setup builds it, as root)")


def _members(layer_path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(layer_path, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_same_files_give_the_same_digest_and_a_changed_byte_another(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    (tree / "bin" / "tool").chmod(0o755)
    (tree / "link").symlink_to("bin/tool")
    first = layer_from_tree(tree, tmp_path / "a.tar.gz", owner=(0, 0))
    os.utime(tree / "bin" / "tool", (1, 1))  # times never count
    second = layer_from_tree(tree, tmp_path / "b.tar.gz", owner=(0, 0))
    assert (first.digest, first.diff_id) == (second.digest, second.diff_id)
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    members = _members(first.path)
    assert members["bin/tool"].mode == 0o755 and members["link"].linkname == "bin/tool"
    assert {m.mtime for m in members.values()} == {0}
    (tree / "bin" / "tool").write_bytes(b"#!/bin/sh\necho bye\n")
    assert layer_from_tree(tree, tmp_path / "c.tar.gz", owner=(0, 0)).digest != first.digest


def test_digests_are_of_the_compressed_and_the_plain_layer(tmp_path: Path) -> None:
    layer = layer_from_files([File("app/x", b"x" * 1000)], tmp_path / "l.tar.gz")
    blob = layer.path.read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    assert layer.size == len(blob)


def test_the_node_images_are_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    require_tools("pause", "coredns")
    before = {name: builds.build(name, "1").digest for name in ("pause", "coredns")}
    monkeypatch.setenv("PLINTH_IMAGE_CACHE", str(tmp_path / "fresh-cache"))
    assert {name: builds.build(name, "1").digest for name in ("pause", "coredns")} == before
    config = json.loads(builds.build("pause", "1").config)
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert config["config"]["User"] == "65535:65535"
    assert "created" not in config


def test_each_sample_app_version_is_its_own_image_on_one_base() -> None:
    _require_base()
    one, two = builds.build("sample-app", "1.0.0"), builds.build("sample-app", "1.0.1")
    assert one.digest != two.digest
    assert one.layers == two.layers  # only the config (APP_VERSION) differs
    env = json.loads(two.config)["config"]["Env"]
    assert "APP_VERSION=1.0.1" in env


def test_push_to_the_registry_with_its_credentials(oci_registry: LocalRegistry,
                                                   tmp_path: Path) -> None:
    require_tools("pause")
    image = builds.build("pause", "1")
    user, password = oci_registry.credentials()
    registry = Registry(oci_registry.host, "oci-test/pause", user, password, insecure=True)
    assert registry.digest("1.0") is None
    assert registry.push(image, "1.0") == image.digest
    assert registry.digest("1.0") == image.digest
    assert registry.push(image, "1.0") == image.digest  # blobs exist: only the tag again
    wrong = Registry(oci_registry.host, "oci-test/pause", user, "not-the-password",
                     insecure=True)
    with pytest.raises(RegistryError, match="HTTP 401") as refused:
        wrong.push(image, "1.1")
    assert "not-the-password" not in str(refused.value) and password not in str(refused.value)


def test_push_image_command_builds_and_pushes_without_docker(oci_registry: LocalRegistry
                                                             ) -> None:
    """`plinth local push-image`, as CI runs it: the password only from the environment,
    never echoed, a refusal one line with exit 2."""
    _require_base()
    user, password = oci_registry.credentials()
    args = ["local", "push-image", "sample-app", "1.0.7", f"{oci_registry.host}/oci-test/web",
            "--insecure", "--username", user, "--password-env", "REGISTRY_PASSWORD"]
    pushed = CliRunner(env={"REGISTRY_PASSWORD": password}).invoke(cli, args)
    assert pushed.exit_code == 0, pushed.output
    digest = builds.build("sample-app", "1.0.7").digest
    assert pushed.output == f"{oci_registry.host}/oci-test/web:1.0.7@{digest}\n"
    assert Registry(oci_registry.host, "oci-test/web", user, password,
                    insecure=True).digest("1.0.7") == digest
    refused = CliRunner(env={"REGISTRY_PASSWORD": "wrong-password"}).invoke(cli, args)
    assert refused.exit_code == 2 and "HTTP 401" in refused.output, refused.output
    assert "wrong-password" not in refused.output and len(refused.output.splitlines()) == 1
    unset = CliRunner(env={"REGISTRY_PASSWORD": ""}).invoke(cli, args)
    assert unset.exit_code == 2 and "set its password in REGISTRY_PASSWORD" in unset.output


def test_the_archive_is_an_oci_layout_naming_the_image(tmp_path: Path) -> None:
    layer = layer_from_files([File("hello", b"hi\n")], tmp_path / "l.tar.gz")
    image = Image.assemble((layer,), RuntimeConfig(entrypoint=("/hello",)))
    image.write_archive("plinth.local/hello:1", tmp_path / "hello.tar")
    with tarfile.open(tmp_path / "hello.tar") as tar:
        files = {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                 for m in tar.getmembers() if m.isfile()}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["digest"] == image.digest
    assert entry["annotations"]["io.containerd.image.name"] == "plinth.local/hello:1"
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(files[f"blobs/sha256/{image.digest.split(':')[1]}"])
    assert [lay["digest"] for lay in manifest["layers"]] == [layer.digest]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[name.lower().replace("_", "-")] = version.split(";")[0].strip()
    return pins


def test_the_controller_image_is_what_the_dockerfile_defines() -> None:
    _require_base()
    require_tools("kustomize")
    image = builds.build("controller", "9.9.9")
    config = json.loads(image.config)["config"]
    # Runtime settings: the Dockerfile's final stage, with the version filled in.
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["python3", "-m", "sync_controller", "run", "--cache-dir",
                                    "/tmp/plinth-controller"]
    assert "PLINTH_VERSION=9.9.9" in config["Env"]
    assert "PYTHONPATH=/opt/plinth/site-packages" in config["Env"]
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert config["Labels"]["org.opencontainers.image.version"] == "9.9.9"
    base, app = (_members(layer.path) for layer in image.layers)
    # The Dockerfile's base: Debian's python3, git, ssh, CA certificates, and its user.
    for path in ("usr/bin/python3", "usr/bin/git", "usr/bin/ssh",
                 "etc/ssl/certs/ca-certificates.crt"):
        assert path in base, path
    with tarfile.open(image.layers[0].path, "r:gz") as tar:
        passwd = tar.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
    assert "plinth:x:65532:65532::/tmp:" in passwd
    # The build stage's files: kustomize, the controller's packages, each at the locked version.
    assert app["opt/plinth/bin/kustomize"].mode & 0o111
    assert all(m.uid == 0 and m.gid == 0 for m in app.values())
    assert "opt/plinth/site-packages/sync_controller/__main__.py" in app
    assert "opt/plinth/site-packages/plinth/render.py" in app
    dist_infos = [name.split("/")[3].removesuffix(".dist-info").rsplit("-", 1)
                  for name in app if name.count("/") == 3 and name.endswith(".dist-info")]
    installed = {dist.lower().replace("_", "-"): version for dist, version in dist_infos}
    lock = _lock()
    for package in dockerfile.pip_packages(builds.DOCKERFILE):
        key = package.lower().replace("_", "-")
        assert installed.get(key) == lock[key], (package, installed.get(key), lock.get(key))
    assert not [n for n in app if n.endswith("direct_url.json")]
    # Compiled at build (the root filesystem is read-only): unchecked hash-based bytecode that
    # names the file where the image has it.
    with tarfile.open(image.layers[1].path, "r:gz") as tar:
        pyc = tar.extractfile("opt/plinth/site-packages/sync_controller/__pycache__/"
                              "operator.cpython-311.pyc").read()  # type: ignore[union-attr]
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, source not checked
    assert b"/opt/plinth/site-packages/sync_controller/operator.py" in pyc


def test_the_dockerfile_names_its_packages_once_and_its_runtime_in_exec_form() -> None:
    packages = dockerfile.pip_packages(builds.DOCKERFILE)
    assert "kopf" in packages and "aiohttp" in packages
    assert len(packages) == len(set(packages))
    runtime = dockerfile.runtime_config(builds.DOCKERFILE, {"VERSION": "1.2.3"})
    assert runtime.entrypoint[0] == "python3"
    assert dict(e.split("=", 1) for e in runtime.env)["PLINTH_VERSION"] == "1.2.3"
