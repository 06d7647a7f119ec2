"""An OCI image from layers and a runtime config: config and manifest blobs, the image digest,
and an OCI archive (`oci-layout` + `index.json` + blobs) that `ctr images import` loads.

JSON is written with sorted keys and no timestamps, so the same layers and config give the
same digest on any machine.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from plinth.oci.layers import Layer

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class RuntimeConfig:
    """What `docker inspect` shows under Config: how the container starts."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    user: str = ""
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    workdir: str = ""
    exposed_ports: tuple[str, ...] = ()  # "8080/tcp"
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        config: dict[str, object] = {"Entrypoint": list(self.entrypoint), "Env": list(self.env)}
        if self.cmd:
            config["Cmd"] = list(self.cmd)
        if self.user:
            config["User"] = self.user
        if self.workdir:
            config["WorkingDir"] = self.workdir
        if self.exposed_ports:
            config["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.labels:
            config["Labels"] = dict(self.labels)
        return config


def _blob(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _json(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Image:
    layers: tuple[Layer, ...]
    config: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return _blob(self.manifest)

    @property
    def config_digest(self) -> str:
        return _blob(self.config)

    @classmethod
    def assemble(cls, layers: tuple[Layer, ...], runtime: RuntimeConfig) -> Image:
        config = _json({
            "architecture": "amd64", "os": "linux", "config": runtime.to_dict(),
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        })
        manifest = _json({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": _blob(config), "size": len(config)},
            "layers": [{"mediaType": LAYER_TYPE, "digest": layer.digest, "size": layer.size}
                       for layer in layers],
        })
        return cls(layers, config, manifest)

    def write_archive(self, ref: str, dest: Path) -> None:
        """An OCI image layout as one tar, its index naming the image `ref`."""
        index = _json({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [{
            "mediaType": MANIFEST_TYPE, "digest": self.digest, "size": len(self.manifest),
            "annotations": {"io.containerd.image.name": ref,
                            "org.opencontainers.image.ref.name": ref}}]})
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
            def add(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))

            add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            add("index.json", index)
            add(f"blobs/sha256/{self.digest.split(':')[1]}", self.manifest)
            add(f"blobs/sha256/{self.config_digest.split(':')[1]}", self.config)
            for layer in self.layers:
                tar.add(str(layer.path), arcname=f"blobs/sha256/{layer.digest.split(':')[1]}")
