"""Push minimal OCI images to the registry fixture through the registry v2 HTTP API."""
from __future__ import annotations

import base64
import hashlib
import json
import urllib.request

from plinth.localenv.registry import LocalRegistry


def _call(registry: LocalRegistry, method: str, url: str, body: bytes = b"",
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    user, password = registry.credentials()
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, data=body if method != "POST" else b"",
                                     method=method,
                                     headers={"Authorization": f"Basic {auth}", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers)


def push_image(registry: LocalRegistry, repository: str, tag: str, content: str = "") -> str:
    """An image whose config carries `content` (so contents differ); returns its digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {
        "Labels": {"content": content or tag}}, "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    base = f"{registry.url}/v2/{repository}"
    _, headers = _call(registry, "POST", f"{base}/blobs/uploads/")
    location = headers["Location"]
    location = location if location.startswith("http") else registry.url + location
    separator = "&" if "?" in location else "?"
    _call(registry, "PUT", f"{location}{separator}digest={config_digest}", config,
          {"Content-Type": "application/octet-stream"})
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": []}).encode()
    _, headers = _call(registry, "PUT", f"{base}/manifests/{tag}", manifest,
                       {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    return headers["Docker-Content-Digest"]
